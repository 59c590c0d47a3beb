package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// adminClient is a client of ta as a CLI on its host would be: the CA and
// the admin token from its data dir.
func adminClient(t *testing.T, ta *testAgent) *api.Client {
	t.Helper()
	return api.NewClient("https://"+ta.Addr(), api.WithTLSConfig(mustTLSFromFile(t, ta)), api.WithBearerToken(adminToken(t, ta)),
		api.WithRequestTimeout(5*time.Second))
}

// --bootstrap makes the cluster identity (files with their modes, the
// tokens printed), the admin token in the data dir works, and a restart
// keeps the identity: the same CA, the token still valid, the data there.
func TestBootstrapIdentityAndRestart(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := h.config("boot", "")
	cfg.Insecure = false
	cfg.Bootstrap = true
	out := &syncBuf{}
	cfg.Out = out
	ta := h.build(cfg)
	if err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(ta, nil)
	for name, mode := range map[string]os.FileMode{identity.CACertFile: 0o644, identity.NodeCertFile: 0o644, identity.NodeKeyFile: 0o600,
		identity.GossipKeyFile: 0o600, identity.KEKFile: 0o600, identity.AdminTokenFile: 0o600} {
		fi, err := os.Stat(filepath.Join(cfg.DataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	caPEM, _ := os.ReadFile(filepath.Join(cfg.DataDir, identity.CACertFile))
	caCert, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	fp := pki.Fingerprint(caCert.Raw)
	printed := out.String()
	for _, want := range []string{fp, filepath.Join(cfg.DataDir, identity.AdminTokenFile), "voter join token:  SHOAL-1-" + fp, "worker join token: SHOAL-1-" + fp} {
		if !strings.Contains(printed, want) {
			t.Errorf("the bootstrap output lacks %q:\n%s", want, printed)
		}
	}
	if len(ta.gossipKey) != 32 {
		t.Errorf("gossip key of %d bytes, want the identity's 32", len(ta.gossipKey))
	}
	ctx := context.Background()
	c := adminClient(t, ta)
	waitUntil(t, 20*time.Second, "a write with the admin token", func() string {
		if _, err := c.Create(ctx, configMap("before-restart")); err != nil && !api.IsAlreadyExists(err) {
			return err.Error()
		}
		return ""
	})
	if err := h.stop(ta); err != nil {
		t.Fatalf("stop: %v", err)
	}
	out2 := &syncBuf{}
	cfg.Out = out2
	again := h.build(cfg)
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(again, nil)
	if got := again.tls.CACert(); !got.Equal(caCert) {
		t.Fatal("a new CA after restart")
	}
	if out2.String() != "" {
		t.Errorf("the restart bootstrapped again:\n%s", out2.String())
	}
	c = adminClient(t, again)
	waitUntil(t, 20*time.Second, "the data after restart, with the same token", func() string {
		if _, err := c.Get(ctx, "ConfigMap", "default", "before-restart"); err != nil {
			return err.Error()
		}
		return ""
	})
	// Under another name, the identity on disk is refused.
	if err := h.stop(again); err != nil {
		t.Fatalf("stop: %v", err)
	}
	cfg.NodeName = "other"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "node-name") {
		t.Errorf("another node name on the same data dir: %v", err)
	}
}

// TestBootstrapRecordSurvivesEarlyStop: an agent that made a cluster's
// identity and stopped before its leadership stored the cluster record
// (the only copy of the sealed CA key) stores it on its next start, from
// the copy the bootstrap left in the data dir; the copy goes once stored.
func TestBootstrapRecordSurvivesEarlyStop(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := h.config("early", "")
	cfg.Insecure = false
	cfg.Bootstrap = true
	cfg.Out = &syncBuf{}
	first := h.build(cfg) // makes the identity and Raft state, never runs
	pending := filepath.Join(cfg.DataDir, identity.PendingRecordFile)
	if _, err := os.Stat(pending); err != nil {
		t.Fatalf("the bootstrap left no copy of the record: %v", err)
	}
	if err := first.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	again := h.build(cfg)
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(again, nil)
	c := adminClient(t, again)
	ctx := context.Background()
	waitUntil(t, 20*time.Second, "the join tokens, from the stored record", func() string {
		if _, err := c.JoinTokens(ctx); err != nil {
			return err.Error()
		}
		if _, err := os.Stat(pending); !errors.Is(err, os.ErrNotExist) {
			return fmt.Sprintf("the copy is still there (%v)", err)
		}
		return ""
	})
}
