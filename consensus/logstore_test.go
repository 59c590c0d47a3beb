package consensus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/shoal-dev/shoal/consensus/store"
)

// soloOnDisk bootstraps a single voter of the given kind in dir, writes n
// ConfigMaps, shuts it down and returns its Raft address and store dump.
func soloOnDisk(t *testing.T, dir, kind string, n int) (addr, want string) {
	t.Helper()
	cfg := diskConfig(t, "solo", dir, "127.0.0.1:0")
	cfg.LogStore = kind
	cfg.Bootstrap = true
	nd, err := NewNode(cfg, newStore())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "solo to lead", nd.IsLeader)
	for i := 0; i < n; i++ {
		propose(t, nd, createOp(configMap("default", fmt.Sprintf("cm-%d", i), 64)))
	}
	want = dump(t, nd.Store())
	_, addr = nd.Leader()
	if err := nd.Shutdown(); err != nil {
		t.Fatal(err)
	}
	return addr, want
}

// A data dir keeps the kind of log it was made with: NewNode and Recover
// with the other kind refuse, naming the field and the agent flag, and
// leave the dir as it was (no second, empty log beside the first).
func TestLogStoreMismatch(t *testing.T) {
	for _, tc := range []struct{ have, want string }{
		{LogStoreBolt, LogStoreWAL},
		{LogStoreWAL, LogStoreBolt},
		{LogStoreWAL, ""}, // "" is bolt
	} {
		t.Run(tc.have+"-as-"+tc.want, func(t *testing.T) {
			dir := t.TempDir()
			addr, _ := soloOnDisk(t, dir, tc.have, 1)
			cfg := diskConfig(t, "solo", dir, addr)
			cfg.LogStore = tc.want
			check := func(what string, err error) {
				t.Helper()
				var mm *LogStoreMismatchError
				if !errors.As(err, &mm) || mm.Have != tc.have {
					t.Fatalf("%s: got %v, want a LogStoreMismatchError finding %q", what, err, tc.have)
				}
				for _, s := range []string{"LogStore", "--raft-log-store=" + tc.have} {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("%s: %q does not name %s", what, err, s)
					}
				}
			}
			nd, err := NewNode(cfg, newStore())
			if err == nil {
				_ = nd.Shutdown()
			}
			check("NewNode", err)
			check("Recover", Recover(cfg))
			if got, err := detectLogStore(dir); got != tc.have || err != nil {
				t.Fatalf("after the refusals the dir holds %q (%v), want %q only", got, err, tc.have)
			}
			if has, err := HasState(dir); !has || err != nil {
				t.Fatalf("HasState: %v, %v", has, err)
			}
		})
	}
}

// HasState creates nothing in a dir without a log, whatever kind.
func TestHasStateEmpty(t *testing.T) {
	dir := t.TempDir()
	if has, err := HasState(dir); has || err != nil {
		t.Fatalf("HasState of an empty dir: %v, %v", has, err)
	}
	if got, err := detectLogStore(dir); got != "" || err != nil {
		t.Fatalf("HasState left a %q log (%v)", got, err)
	}
}

// A second open of a raft-wal dir (another agent on the same data dir) is
// refused at once instead of hanging on raft-wal's meta file.
func TestWALLocked(t *testing.T) {
	dir := t.TempDir()
	d, err := openDisk(dir, LogStoreWAL, 1, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	// openWithin opens dir from another goroutine and closes what it
	// opened: the error, or a failure saying what still waits after 10 s.
	openWithin := func(waiting string) error {
		done := make(chan error, 1)
		go func() {
			d, err := openDisk(dir, LogStoreWAL, 1, hclog.NewNullLogger())
			if err == nil {
				err = d.close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal(waiting + " still waiting after 10s")
			return nil
		}
	}
	if err := openWithin("second open of a locked wal dir"); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("second open: %v", err)
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
	// Closed, it opens again: the lock and raft-wal's meta file were
	// released (raft-wal's own Close leaves the meta file open and locked,
	// and a reopen waited on it for ever).
	if err := openWithin("reopen after close: the meta file was left locked;"); err != nil {
		t.Fatalf("reopen: %v", err)
	}
}

// Recover works on a raft-wal dir: a node under a new ID, which the old
// configuration does not know and so could never lead, becomes the only
// voter and serves all the data.
func TestRecoverWAL(t *testing.T) {
	dir := t.TempDir()
	addr, want := soloOnDisk(t, dir, LogStoreWAL, 20)
	cfg := diskConfig(t, "phoenix", dir, addr)
	cfg.LogStore = LogStoreWAL
	if err := Recover(cfg); err != nil {
		t.Fatalf("recover: %v", err)
	}
	nd, err := NewNode(cfg, newStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nd.Shutdown() })
	waitFor(t, 10*time.Second, "phoenix to lead", nd.IsLeader)
	if err := nd.ReadBarrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, nd.Store()); got != want {
		t.Fatalf("after recover:\n got %s\nwant %s", got, want)
	}
	propose(t, nd, store.Op{Type: store.OpDelete, Key: store.Key{Kind: "ConfigMap", Namespace: "default", Name: "cm-0"}})
}
