package agent

import (
	"errors"
	"strings"
	"testing"
)

// Insecure mode is refused unless every bind is loopback (issue 10).
func TestInsecureOnlyOnLoopback(t *testing.T) {
	base := DevConfig()
	base.NodeName = "n1"
	base.Insecure = true
	if err := base.Validate(); err != nil {
		t.Fatalf("loopback insecure: %v", err)
	}
	for _, c := range []struct {
		flag string
		set  func(*Config)
	}{
		{"http-addr", func(c *Config) { c.HTTPAddr = "0.0.0.0:7070" }},
		{"raft-addr", func(c *Config) { c.RaftAddr = "10.0.0.1:7071" }},
		{"bind", func(c *Config) { c.GossipAddr = "0.0.0.0:7946" }},
		{"advertise", func(c *Config) { c.Advertise = "10.0.0.1" }},
	} {
		cfg := base
		c.set(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("insecure with a non-loopback %s: %v, want an error naming it", c.flag, err)
		}
		cfg.Insecure = false
		if err := cfg.Validate(); err != nil {
			t.Errorf("secure with a non-loopback %s: %v", c.flag, err)
		}
	}
}

// A secure agent with no identity on disk and nothing to make or fetch one
// with refuses to start, saying what to pass.
func TestNoCredentialsRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeName = "n1"
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	_, err := New(cfg)
	if !errors.Is(err, errNoCredentials) {
		t.Fatalf("New without credentials: %v, want errNoCredentials", err)
	}
	for _, want := range []string{"--token", "--bootstrap", "--insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s: %v", want, err)
		}
	}
}
