package consensus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/store"
)

// Many concurrent callers share entries; each gets exactly its own results,
// in its own order, and every op lands once.
//
// Under load (2 cores shared with other builds, -race) the leader can lose
// its lease in the middle of the test and an election follows, so each
// caller, like cluster.propose, retries on whoever leads next while
// leadership moves, within a deadline sized for a loaded machine.
func TestProposalsBatchWithoutMixingResults(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	const callers, perCaller = 48, 20
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perCaller; i++ {
				// Two ops per call: a create that succeeds and one that
				// fails (duplicate), so a result shifted between callers
				// would show.
				name := fmt.Sprintf("w%d-%d", w, i)
				res, unknown, err := proposeWhileLeadershipMoves(c, deadline, []store.Op{
					createOp(configMap("default", name, 32)),
					createOp(configMap("default", name, 32)),
				})
				// After an attempt of unknown outcome the first create may
				// have landed then: a duplicate is its success.
				firstOK := len(res) == 2 && (res[0].Err == nil && res[0].Object.GetObjectMeta().Name == name ||
					unknown && errors.Is(res[0].Err, store.ErrAlreadyExists))
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				case len(res) != 2:
					errs <- fmt.Errorf("%s: %d results", name, len(res))
					return
				case !firstOK:
					errs <- fmt.Errorf("%s: first result %+v", name, res[0])
					return
				case !errors.Is(res[1].Err, store.ErrAlreadyExists):
					errs <- fmt.Errorf("%s: second result should be a duplicate, got %v", name, res[1].Err)
					return
				}
			}
		}(w)
	}
	// Move leadership once mid-load, as a loaded machine does: callers
	// must carry on with the new leader.
	moved := make(chan error, 1)
	go func() {
		for i := 0; i < 2000 && lead.Store().Revision() < callers*perCaller/4; i++ {
			time.Sleep(5 * time.Millisecond) // polling, bounded to 10 s
		}
		moved <- lead.LeadershipTransfer(ctxTimeout(t, 20*time.Second))
	}()
	wg.Wait()
	if err := <-moved; err != nil {
		t.Logf("leadership transfer: %v (the test still ran under one leader)", err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	lead = c.leader()
	c.converged(lead.Store().Revision())
	objs, _, err := lead.Store().List("ConfigMap", "default", store.Selector{})
	if err != nil || len(objs) != callers*perCaller {
		t.Fatalf("store holds %d config maps (%v), want %d", len(objs), err, callers*perCaller)
	}
	// Fewer entries than calls: the batcher did gather.
	if st := lead.Status(); st.LastIndex >= uint64(callers*perCaller) {
		t.Logf("note: %d calls took %d log entries (no batching happened under this load)", callers*perCaller, st.LastIndex)
	}
}

// proposeWhileLeadershipMoves proposes ops through whichever node leads,
// retrying while the error only says leadership moved, until deadline. It
// reports whether an earlier attempt ended with an unknown outcome. Safe
// from any goroutine (it never calls t.Fatal).
func proposeWhileLeadershipMoves(c *cluster, deadline time.Time, ops []store.Op) (res []store.Result, unknown bool, err error) {
	for {
		for _, nd := range c.live() {
			if nd.IsLeader() {
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				res, err = nd.Propose(ctx, ops)
				cancel()
				break
			}
		}
		if res != nil && err == nil {
			return res, unknown, nil
		}
		if err != nil && !retryable(err) {
			return nil, unknown, err
		}
		unknown = unknown || errors.Is(err, ErrOutcomeUnknown)
		if time.Now().After(deadline) {
			return nil, unknown, fmt.Errorf("no proposal committed before the deadline, last error: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // polling for a leader, as waitFor does
	}
}

// A caller whose context has already ended proposes nothing.
func TestProposeWithEndedContext(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := lead.Propose(ctx, []store.Op{createOp(configMap("default", "never", 8))})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// Let a later write through, then check the first never landed.
	propose(t, lead, createOp(configMap("default", "later", 8)))
	if _, err := lead.Store().Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "never"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the cancelled proposal was applied: %v", err)
	}
}

// After Shutdown, Propose fails fast instead of hanging.
func TestProposeAfterShutdown(t *testing.T) {
	c := newInmemCluster(t, 1)
	lead := c.leader()
	lead.Shutdown()
	_, err := lead.Propose(ctxTimeout(t, 5*time.Second), []store.Op{createOp(configMap("default", "x", 8))})
	if err == nil {
		t.Fatal("Propose after Shutdown succeeded")
	}
}

// An urgent proposal (the leader's controllers) does not wait behind
// regular ones: with every regular slot in raft taken and a regular write
// queued, an urgent one still commits; the regular one goes once a slot
// frees. Leadership is retried as in cluster.propose.
func TestUrgentProposalsPassRegularQueue(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	// Take every regular slot, as entries stuck in raft would.
	for range cap(lead.regular.inflight) {
		lead.regular.inflight <- struct{}{}
	}
	released := false
	release := func() {
		if !released {
			released = true
			for range cap(lead.regular.inflight) {
				<-lead.regular.inflight
			}
		}
	}
	defer release()
	regular := make(chan error, 1)
	go func() {
		_, err := lead.Propose(ctxTimeout(t, 60*time.Second), []store.Op{createOp(configMap("default", "regular", 32))})
		regular <- err
	}()
	res, err := lead.ProposeUrgent(ctxTimeout(t, 30*time.Second), []store.Op{createOp(configMap("default", "urgent", 32))})
	var nl *ErrNotLeader
	if errors.As(err, &nl) {
		t.Skip("leadership moved under load before the urgent write; nothing to compare")
	}
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("urgent proposal: %v %+v", err, res)
	}
	select {
	case err := <-regular:
		if errors.As(err, &nl) {
			t.Skip("leadership moved under load before the regular write was queued; nothing to compare")
		}
		t.Fatalf("the regular proposal finished (%v) while every regular slot was taken", err)
	default:
	}
	release()
	if err := <-regular; err != nil && !errors.As(err, &nl) {
		t.Fatalf("regular proposal after the slots freed: %v", err)
	}
}

// Urgent proposals queued one after another by one caller return at once
// and apply in the order they were queued: a create, then an update of the
// same object, then its delete, all queued while raft's urgent slots are
// taken, all succeed.
func TestUrgentQueuedProposalsKeepTheirOrder(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	for range cap(lead.urgent.inflight) {
		lead.urgent.inflight <- struct{}{}
	}
	ctx := ctxTimeout(t, 30*time.Second)
	upd := configMap("default", "q", 64)
	upd.Data["more"] = "yes"
	var waits []func() ([]store.Result, error)
	for _, op := range []store.Op{
		createOp(configMap("default", "q", 32)),
		{Type: store.OpUpdate, Object: upd},
		{Type: store.OpDelete, Key: store.Key{Kind: "ConfigMap", Namespace: "default", Name: "q"}},
	} {
		w, err := lead.ProposeUrgentQueued(ctx, []store.Op{op})
		var nl *ErrNotLeader
		if errors.As(err, &nl) {
			t.Skip("leadership moved under load; nothing to compare")
		}
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	for range cap(lead.urgent.inflight) {
		<-lead.urgent.inflight
	}
	for i, w := range waits {
		res, err := w()
		var nl *ErrNotLeader
		if errors.As(err, &nl) {
			t.Skip("leadership moved under load; nothing to compare")
		}
		if err != nil || len(res) != 1 || res[0].Err != nil {
			t.Fatalf("queued proposal %d: %v %+v", i, err, res)
		}
	}
}
