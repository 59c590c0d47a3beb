package main

import (
	"strings"
	"testing"
)

func TestAgentFlagOCIRuntime(t *testing.T) {
	parse := func(args ...string) (string, error) {
		t.Helper()
		cfg, err := agentConfigOf(t, args...)
		return cfg.Host.OCIRuntime, err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "runc"},
		{[]string{"--oci-runtime", "auto"}, "auto"},
		{[]string{"--oci-runtime", "runc"}, "runc"},
		{[]string{"--oci-runtime", "crun"}, "crun"},
	} {
		if got, err := parse(tc.args...); err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
	if _, err := parse("--oci-runtime", "youki"); err == nil || !strings.Contains(err.Error(), "oci-runtime") {
		t.Errorf("--oci-runtime youki: %v, want an error naming the flag", err)
	}
}
