package consensus

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/store"
)

func diskConfig(t testing.TB, id, dir, bind string) Config {
	cfg := TestConfig()
	cfg.ID = id
	cfg.DataDir = dir
	cfg.BindAddr = bind
	cfg.Logger = testLogger(id)
	return cfg
}

// A single voter on disk recovers everything from its snapshot plus the log
// after it, and leads again; with either log store.
func TestDiskRestart(t *testing.T) {
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(kind, func(t *testing.T) { testDiskRestart(t, kind) })
	}
}

func testDiskRestart(t *testing.T, kind string) {
	dir := t.TempDir()
	cfg := diskConfig(t, "solo", dir, "127.0.0.1:0")
	cfg.LogStore = kind
	cfg.Bootstrap = true
	cfg.TrailingLogs = 5 // the snapshot truncates the log: recovery needs both
	nd, err := NewNode(cfg, newStore())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "solo to lead", nd.IsLeader)
	for i := 0; i < 30; i++ {
		propose(t, nd, createOp(configMap("default", fmt.Sprintf("before-%d", i), 128)))
	}
	if err := nd.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(snaps) != 1 {
		t.Fatalf("snapshot files: %v", snaps)
	}
	if first, err := nd.logs.FirstIndex(); err != nil || first <= 1 {
		t.Fatalf("log not truncated by the snapshot: first index %d, %v", first, err)
	}
	for i := 0; i < 30; i++ {
		propose(t, nd, createOp(configMap("default", fmt.Sprintf("after-%d", i), 128)))
	}
	propose(t, nd, store.Op{Type: store.OpDelete, Key: store.Key{Kind: "ConfigMap", Namespace: "default", Name: "before-0"}})
	want := dump(t, nd.Store())
	_, addr := nd.Leader()
	if err := nd.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if got, err := detectLogStore(dir); got != kind || err != nil {
		t.Fatalf("data dir holds a %q log (%v), want %q", got, err, kind)
	}
	if has, err := HasState(dir); !has || err != nil {
		t.Fatalf("HasState after shutdown: %v, %v", has, err)
	}

	// Same directory and address; Bootstrap set again must not reset state.
	cfg.BindAddr = addr
	again, err := NewNode(cfg, newStore())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = again.Shutdown() })
	waitFor(t, 10*time.Second, "solo to lead after restart", again.IsLeader)
	if err := again.ReadBarrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, again.Store()); got != want {
		t.Fatalf("after restart:\n got %s\nwant %s", got, want)
	}
	propose(t, again, createOp(configMap("default", "after-restart", 8)))
}

// Three voters over TCP on loopback, each with its own directory; the same
// over mutual TLS; and over mutual TLS with raft-wal logs.
func TestTCPCluster(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { testTCPCluster(t, nil, "") })
	t.Run("mtls", func(t *testing.T) { testTCPCluster(t, testTLS(t), "") })
	t.Run("mtls-wal", func(t *testing.T) { testTCPCluster(t, testTLS(t), LogStoreWAL) })
}

func testTCPCluster(t *testing.T, tlsConfig *tls.Config, kind string) {
	c := &cluster{t: t}
	for i := 0; i < 3; i++ {
		cfg := diskConfig(t, fmt.Sprintf("tcp%d", i), t.TempDir(), "127.0.0.1:0")
		cfg.Bootstrap = i == 0
		cfg.TLS = tlsConfig
		cfg.LogStore = kind
		c.start(cfg)
	}
	c.join()
	for i := 0; i < 10; i++ {
		c.propose(createOp(configMap("default", fmt.Sprintf("cm-%d", i), 256)))
	}
	lead := c.leader()
	key := store.Key{Kind: "ConfigMap", Namespace: "default", Name: "cm-9"}
	for _, f := range c.followers() {
		waitFor(t, 10*time.Second, "the write on "+f.cfg.ID, func() bool {
			_, err := f.Store().Get(key)
			return err == nil
		})
	}
	c.converged(c.leader().Store().Revision())
	for _, sv := range lead.Status().Voters {
		if sv.Suffrage != "Voter" || sv.Addr == "" {
			t.Fatalf("configuration: %+v", lead.Status().Voters)
		}
	}
}
