package agent

import (
	"strings"
	"testing"
)

// An agent that runs pods checks its OCI runtime at start (the runtime
// package tests the PATH lookup and the cgroup layout).
func TestOCIRuntimeValidated(t *testing.T) {
	c := DefaultConfig()
	c.NodeName = "n1"
	c.Host.Enabled, c.Host.OCIRuntime = true, "youki"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "oci-runtime") {
		t.Errorf("OCIRuntime youki: %v, want an error naming oci-runtime", err)
	}
	c.Host.Enabled = false // control plane only: no runtime to check
	if err := c.Validate(); err != nil {
		t.Errorf("without pods: %v", err)
	}
}
