package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestAgentFlagOCIRuntime(t *testing.T) {
	parse := func(args ...string) (string, error) {
		t.Helper()
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f agentFlags
		f.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(io.Discard)
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
