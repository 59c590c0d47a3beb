package consensus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/store"
)

func propose(t testing.TB, nd *Node, ops ...store.Op) []store.Result {
	t.Helper()
	res, err := nd.Propose(ctxTimeout(t, 10*time.Second), ops)
	if err != nil {
		t.Fatalf("propose on %s: %v", nd.cfg.ID, err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("propose on %s: op %d: %v", nd.cfg.ID, i, r.Err)
		}
	}
	return res
}

func TestClusterReplicatesAndFailsOver(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	if st := lead.Status(); len(st.Voters) != 3 {
		t.Fatalf("leader's configuration has %d servers, want 3: %+v", len(st.Voters), st.Voters)
	}

	// A batch is one entry; its results come back in order.
	res := c.propose(createOp(configMap("default", "a", 64)), createOp(configMap("default", "b", 64)))
	if len(res) != 2 || res[0].Object.GetObjectMeta().Name != "a" || res[1].Object.GetObjectMeta().Name != "b" {
		t.Fatalf("results: %+v", res)
	}
	for i := 0; i < 20; i++ {
		c.propose(createOp(configMap("default", fmt.Sprintf("cm-%d", i), 64)))
	}
	c.converged(c.leader().Store().Revision())

	// A follower refuses writes and names the leader (retried: under load
	// an election may be in progress at the moment of the call).
	var err error
	waitFor(t, 10*time.Second, "a follower to refuse a write naming the leader", func() bool {
		lead = c.leader()
		_, err = c.followers()[0].Propose(ctxTimeout(t, time.Second), []store.Op{createOp(configMap("default", "x", 1))})
		var nl *ErrNotLeader
		return errors.As(err, &nl) && nl.LeaderID == lead.cfg.ID && nl.LeaderAddr != ""
	})

	// Kill the leader: another takes over with every write, and accepts new ones.
	before := dump(t, lead.Store())
	c.kill(lead)
	if _, err := lead.Propose(context.Background(), []store.Op{createOp(configMap("default", "y", 1))}); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Propose after Shutdown: %v, want ErrShutdown", err)
	}
	next := c.leader()
	if next == lead {
		t.Fatal("the dead node still leads")
	}
	if err := next.ReadBarrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("ReadBarrier on the new leader: %v", err)
	}
	if got := dump(t, next.Store()); got != before {
		t.Fatalf("new leader lost writes:\n got %s\nwant %s", got, before)
	}
	c.propose(createOp(configMap("default", "after-failover", 64)))
	next = c.leader()
	c.converged(next.Store().Revision())
	if _, err := next.Store().Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "after-failover"}); err != nil {
		t.Fatal(err)
	}
}

func TestReadBarrier(t *testing.T) {
	c := newInmemCluster(t, 3)
	key := store.Key{Kind: "ConfigMap", Namespace: "default", Name: "seen"}
	c.propose(createOp(configMap("default", "seen", 8)))
	lead := c.leader()
	if err := lead.ReadBarrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("ReadBarrier on leader: %v", err)
	}
	if _, err := lead.Store().Get(key); err != nil {
		t.Fatalf("after ReadBarrier the leader's store lacks the write: %v", err)
	}

	var err error
	waitFor(t, 10*time.Second, "followers' ReadBarrier to name the leader", func() bool {
		lead = c.leader()
		for _, f := range c.followers() {
			var nl *ErrNotLeader
			if err = f.ReadBarrier(ctxTimeout(t, time.Second)); !errors.As(err, &nl) || nl.LeaderID != lead.cfg.ID {
				t.Logf("ReadBarrier on follower %s: %v (leader %s)", f.cfg.ID, err, lead.cfg.ID)
				return false
			}
		}
		return true
	})

	// A context that has ended is honoured: either the read point was
	// already reached, or the call gives up with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := lead.ReadBarrier(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadBarrier with a cancelled context: %v", err)
	}
}

// A fresh single leader has committed only its bootstrap configuration and
// a no-op, entries the store never sees: ReadBarrier must still return.
func TestReadBarrierOnFreshLeader(t *testing.T) {
	c := newInmemCluster(t, 1)
	lead := c.leader()
	if err := lead.ReadBarrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("ReadBarrier on a fresh leader: %v", err)
	}
	// And again after a barrier entry (also invisible to the store) is the
	// last in the log.
	if err := lead.raft.Barrier(time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := lead.ReadBarrier(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("ReadBarrier after a raft barrier: %v", err)
	}
}

func TestLeaderCh(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	early := lead.LeaderCh()
	select {
	case v := <-early:
		if !v {
			t.Fatal("the leader's new LeaderCh reports false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a LeaderCh opened on the leader did not start with true")
	}
	fch := c.followers()[0].LeaderCh()
	select {
	case v := <-fch:
		t.Fatalf("a follower's LeaderCh reported %v with no change", v)
	default:
	}

	// Kill the leader: exactly one of the others reports true.
	subs := map[*Node]<-chan bool{}
	for _, f := range c.followers() {
		subs[f] = f.LeaderCh()
	}
	c.kill(lead)
	// Shutdown may still report the step-down before closing the channel.
	for v := range early {
		if v {
			t.Fatal("a shut-down node's LeaderCh reported true")
		}
	}
	next := c.leader()
	select {
	case v := <-subs[next]:
		if !v {
			t.Fatal("the new leader's LeaderCh reported false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the new leader's LeaderCh did not report true")
	}
	if err := next.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := next.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	for v := range subs[next] { // drains to close
		_ = v
	}
	if _, ok := <-next.LeaderCh(); ok {
		t.Fatal("LeaderCh after Shutdown is not closed")
	}
}

func TestMembershipChanges(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	victim := c.followers()[0]
	if err := victim.AddVoter(ctxTimeout(t, time.Second), "x", "y"); !errors.As(err, new(*ErrNotLeader)) {
		t.Fatalf("AddVoter on a follower: %v", err)
	}
	if err := lead.RemoveServer(ctxTimeout(t, 5*time.Second), victim.cfg.ID); err != nil {
		t.Fatal(err)
	}
	if st := lead.Status(); len(st.Voters) != 2 {
		t.Fatalf("after RemoveServer the configuration has %d servers: %+v", len(st.Voters), st.Voters)
	}
	propose(t, lead, createOp(configMap("default", "two-voters", 8)))
	if lead.HasState() == false {
		t.Fatal("HasState is false on a leader")
	}
	if err := lead.Bootstrap(ctxTimeout(t, time.Second)); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("Bootstrap on a running cluster: %v, want ErrAlreadyBootstrapped", err)
	}
}

// A leader cut off from its followers cannot commit: the proposal ends with
// ErrOutcomeUnknown (by the caller's deadline, or by the lost leadership),
// never with success.
func TestProposePartitionedLeader(t *testing.T) {
	c := newInmemCluster(t, 3)
	c.propose(createOp(configMap("default", "before", 8)))
	lead := c.leader()
	var li int
	for i, nd := range c.nodes {
		if nd == lead {
			li = i
		}
	}
	for j, tr := range c.trans {
		if j != li {
			c.trans[li].Disconnect(tr.LocalAddr())
			tr.Disconnect(c.trans[li].LocalAddr())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := lead.Propose(ctx, []store.Op{createOp(configMap("default", "lost", 8))})
	var nl *ErrNotLeader
	if !errors.Is(err, ErrOutcomeUnknown) && !errors.As(err, &nl) {
		t.Fatalf("Propose on a partitioned leader: %v, want ErrOutcomeUnknown (or ErrNotLeader if it stepped down first)", err)
	}
}
