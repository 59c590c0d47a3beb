package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestAgentFlagHostPathAllow(t *testing.T) {
	parse := func(args ...string) []string {
		t.Helper()
		cfg, err := agentConfigOf(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.HostPathAllow
	}
	if got := parse(); len(got) != 0 {
		t.Errorf("default: %q, want none", got)
	}
	if got := parse("--host-path-allow", "/data, /srv/logs", "--host-path-allow", "/mnt"); !slices.Equal(got, []string{"/data", "/srv/logs", "/mnt"}) {
		t.Errorf("set: %q", got)
	}
}

func TestAgentFlagHostPathAllowChecked(t *testing.T) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f agentFlags
	f.register(fs)
	if err := fs.Parse([]string{"--host-path-allow", "/etc", "--node-name", "n1"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "host-path-allow") {
		t.Errorf("--host-path-allow /etc: %v, want an error naming the flag", err)
	}
}
