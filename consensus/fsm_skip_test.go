package consensus

import (
	"errors"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/store"
)

// badEntry is an ApplyOpsType command whose object JSON is broken: what a
// codec bug would put in the log.
func badEntry(t testing.TB) []byte {
	t.Helper()
	good, err := EncodeApplyOps([]store.Op{createOp(configMap("default", "bad", 8))})
	if err != nil {
		t.Fatal(err)
	}
	return mustReplace(t, good, []byte(`"data"`), []byte(`"data `))
}

// TestBadEntryDoesNotStopVoters (issue 9, defect 7): an entry no replica can
// decode is skipped and counted on every voter; the proposer gets the error;
// the cluster keeps applying the entries after it. Before, the FSM
// panicked on every voter at that entry.
func TestBadEntryDoesNotStopVoters(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	f := lead.raft.Apply(badEntry(t), 10*time.Second)
	if err := f.Error(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err, _ := f.Response().(error); !errors.Is(err, ErrCorruptCommand) {
		t.Fatalf("the FSM answered %#v, want an error wrapping ErrCorruptCommand", f.Response())
	}
	c.propose(createOp(configMap("default", "after", 8)))
	c.converged(c.leader().Store().Revision())
	waitFor(t, 10*time.Second, "every voter to count the skipped entry", func() bool {
		for _, nd := range c.live() {
			if nd.Status().SkippedEntries != 1 {
				return false
			}
		}
		return true
	})
	for _, nd := range c.live() {
		if _, err := nd.Store().Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "bad"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: the skipped entry's object: %v, want not found", nd.cfg.ID, err)
		}
	}
}

// TestBadEntryReplaysWithoutPanic: a voter restarted over a log holding an
// undecodable entry starts, skips it again, and serves what follows.
func TestBadEntryReplaysWithoutPanic(t *testing.T) {
	dir := t.TempDir()
	cfg := diskConfig(t, "solo", dir, "127.0.0.1:0")
	cfg.Bootstrap = true
	nd, err := NewNode(cfg, newStore())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "solo to lead", nd.IsLeader)
	if err := nd.raft.Apply(badEntry(t), 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	propose(t, nd, createOp(configMap("default", "after", 8)))
	if err := nd.Shutdown(); err != nil {
		t.Fatal(err)
	}

	nd, err = NewNode(cfg, newStore())
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Shutdown()
	waitFor(t, 10*time.Second, "solo to lead again", nd.IsLeader)
	if err := nd.ReadBarrier(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := nd.Store().Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "after"}); err != nil {
		t.Fatalf("the entry after the bad one: %v", err)
	}
	if got := nd.Status().SkippedEntries; got != 1 {
		t.Fatalf("SkippedEntries after replay = %d, want 1", got)
	}
}
