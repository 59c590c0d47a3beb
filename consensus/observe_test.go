package consensus

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/consensus/store"
)

// countingObserver counts what a Node reports.
type countingObserver struct {
	applies, leaders atomic.Int64
	slowest          atomic.Int64 // nanoseconds
}

func (o *countingObserver) ApplyDone(d time.Duration) {
	o.applies.Add(1)
	if int64(d) > o.slowest.Load() {
		o.slowest.Store(int64(d))
	}
}

func (o *countingObserver) LeaderChanged() { o.leaders.Add(1) }

// A node tells its Observer of each entry it applied and of the leader it
// came to know (itself, once elected).
func TestObserver(t *testing.T) {
	_, tr := raft.NewInmemTransport(raft.NewInmemAddr())
	cfg := TestConfig()
	cfg.ID, cfg.InMemory, cfg.Transport, cfg.Bootstrap = "obs0", true, tr, true
	cfg.Logger = testLogger(cfg.ID)
	o := &countingObserver{}
	cfg.Observer = o
	nd, err := NewNode(cfg, newStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nd.Shutdown() })
	waitFor(t, 10*time.Second, "obs0 to lead", nd.IsLeader)
	waitFor(t, 10*time.Second, "the leader observed", func() bool { return o.leaders.Load() == 1 })
	before := o.applies.Load()
	for i := range 3 {
		if _, err := nd.Propose(ctxTimeout(t, 10*time.Second), []store.Op{createOp(configMap("default", "cm-"+string(rune('a'+i)), 16))}); err != nil {
			t.Fatal(err)
		}
	}
	if got := o.applies.Load() - before; got < 1 || got > 3 {
		t.Errorf("%d applies observed for 3 proposals, want 1 to 3 (batches may merge)", got)
	}
	if o.slowest.Load() <= 0 {
		t.Error("apply durations are not positive")
	}
	if got := o.leaders.Load(); got != 1 {
		t.Errorf("%d leader changes observed, want 1", got)
	}
}
