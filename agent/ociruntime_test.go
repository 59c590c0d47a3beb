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
	c.Host.Fake = &FakeHost{} // a hollow node runs no container
	if err := c.Validate(); err != nil {
		t.Errorf("hollow node: %v", err)
	}
	c.Host.Enabled, c.Host.Fake = false, nil // control plane only
	if err := c.Validate(); err != nil {
		t.Errorf("without pods: %v", err)
	}
}
