package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/consensus/store"
)

// Node is one Raft voter holding a replica of the store.
type Node struct {
	cfg    Config
	logger hclog.Logger
	raft   *raft.Raft
	fsm    *fsm
	st     *store.Store

	logs    raft.LogStore // what raft reads; ReadBarrier reads entry terms from it
	closers []io.Closer   // owned resources, closed after raft stops

	shutdownCh   chan struct{}
	shutdownOnce sync.Once
	shutdownErr  error

	// Proposals go through one of two batchers (batch.go): urgent, for
	// the leader's own controllers, and regular, for everything else.
	regular, urgent *batcher
	snapsDone       chan struct{} // closed when runSnapshots ends

	leaderMu   sync.Mutex
	leaderNow  bool
	leaderSubs []chan bool
	leaderDone chan struct{}
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string
	Addr     string
	Suffrage string // "Voter", "Nonvoter", "Staging"
}

// Status is a point-in-time view of the node, for /v1/cluster/raft and
// `shoal status`.
type Status struct {
	ID           string
	State        string // "Follower", "Candidate", "Leader", "Shutdown"
	LeaderID     string
	LeaderAddr   string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64 // the last entry the local store reflects
	LastIndex    uint64
	LastContact  time.Time // last time a follower heard from the leader
	Voters       []Server  // every server in the latest configuration
	// SkippedEntries counts the log entries this replica could not apply
	// (undecodable, or of a command type this binary does not know) and
	// skipped since it started; each is logged with its index. Anything
	// but 0 needs an operator's look.
	SkippedEntries uint64
}

// NewNode starts a Raft node that applies committed entries to st. st
// should be empty: on start the node restores the latest snapshot into it
// and replays the log after it.
func NewNode(cfg Config, st *store.Store) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("consensus: NewNode: nil store")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	}
	n := &Node{
		cfg:        cfg,
		logger:     logger,
		st:         st,
		fsm:        newFSM(st, logger.Named("fsm")),
		shutdownCh: make(chan struct{}),
		leaderDone: make(chan struct{}),
		regular:    newBatcher(maxInflightBatches),
		urgent:     newBatcher(maxInflightUrgentBatches),
		snapsDone:  make(chan struct{}),
	}
	n.fsm.bytes = newLogBytes(cfg)
	ok := false
	defer func() {
		if !ok {
			n.closeOwned()
		}
	}()

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.InMemory {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("consensus: DataDir: %w", err)
		}
		d, err := openDisk(cfg.DataDir, logStoreKind(cfg.LogStore), cfg.SnapshotRetain, logger)
		if err != nil {
			return nil, err
		}
		n.closers = append(n.closers, closerFunc(d.close))
		logs, stable, snaps = d.logs, d.stable, d.snaps
	}
	// Recent entries are read back when replicating and applying; keep
	// them in memory instead of going to the log store each time, within
	// a count and a byte bound (logcache.go). A follower further behind
	// reads the store: bolt's mmap or raft-wal's segment files.
	cached, err := newLogCache(logs, logCacheEntries, logCacheBytes)
	if err != nil {
		return nil, err
	}
	n.logs = cached

	trans := cfg.Transport
	if trans == nil {
		tcp, err := newTCPTransport(cfg, logger)
		if err != nil {
			return nil, err
		}
		n.closers = append([]io.Closer{tcp}, n.closers...)
		trans = tcp
	}

	rc := cfg.raftConfig(logger)
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	if cfg.Bootstrap {
		has, err := raft.HasExistingState(n.logs, stable, snaps)
		if err != nil {
			return nil, fmt.Errorf("consensus: read raft state: %w", err)
		}
		if !has {
			conf := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr(),
			}}}
			if err := raft.BootstrapCluster(rc, n.logs, stable, snaps, trans, conf); err != nil {
				return nil, fmt.Errorf("consensus: bootstrap: %w", err)
			}
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, n.logs, stable, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}
	n.raft = r
	n.fsm.bytes.raft.Store(r)
	ok = true
	go n.runSnapshots(n.shutdownCh, n.snapsDone)
	go n.fanOutLeadership(r.LeaderCh())
	n.observeLeaders()
	go n.runBatcher(n.regular)
	go n.runBatcher(n.urgent)
	return n, nil
}

// Store returns the local replica. Reads from it are possibly stale unless
// preceded by ReadBarrier on the leader.
func (n *Node) Store() *store.Store { return n.st }

// IsLeader reports whether this node currently believes it is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's ID and address, empty if unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Term is the current Raft term as this node knows it.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// HasState reports whether this node has Raft state: it was bootstrapped or
// has received entries from a cluster. Gossip advertises it so that a node
// with state is joined, never bootstrapped again.
func (n *Node) HasState() bool { return n.raft.LastIndex() > 0 }

// Bootstrap makes this node the single voter of a new cluster. It fails with
// ErrAlreadyBootstrapped if the node has any Raft state.
func (n *Node) Bootstrap(ctx context.Context) error {
	if n.closed() {
		return ErrShutdown
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.ID), Address: n.localAddr(),
	}}}
	err := n.await(ctx, n.raft.BootstrapCluster(conf))
	if errors.Is(err, raft.ErrCantBootstrap) {
		return ErrAlreadyBootstrapped
	}
	return n.translate(err)
}

func (n *Node) localAddr() raft.ServerAddress {
	if n.cfg.Transport != nil {
		return n.cfg.Transport.LocalAddr()
	}
	for _, c := range n.closers {
		if t, ok := c.(*raft.NetworkTransport); ok {
			return t.LocalAddr()
		}
	}
	return ""
}

// Propose replicates ops in one Raft entry (which may also carry other
// callers' ops, see batch.go) and returns the FSM's result of
// each op, in order. Each op succeeds or fails on its own (see store.Op);
// the error is about the entry: *ErrNotLeader on a follower, ErrShutdown,
// or ErrOutcomeUnknown (joined with ctx.Err() when ctx ended first) when the
// entry left this node but its fate is not known.
func (n *Node) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	return n.propose(ctx, ops, n.regular)
}

// ProposeUrgent is Propose for the leader's own controllers: its entries
// are formed and handed to raft by a batcher of their own, with a slot in
// raft of their own, so that they do not queue behind the writes of every
// node (pod statuses, forwarded by the hundred while a Deployment scales
// up). Raft still commits entries in log order; what is saved is the wait
// for a place in an entry and for one of the regular batcher's slots.
func (n *Node) ProposeUrgent(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	return n.propose(ctx, ops, n.urgent)
}

// ProposeUrgentQueued is ProposeUrgent in two steps: it returns once the
// ops are queued for the urgent batcher, and wait gives their results.
// Proposals queued one after another by one caller go into raft in that
// order, so a caller can have several in flight (the controllers' plan of
// thousands of pods in entries that follow each other through raft)
// without changing the order in which they apply.
func (n *Node) ProposeUrgentQueued(ctx context.Context, ops []store.Op) (wait func() ([]store.Result, error), err error) {
	p, err := n.enqueue(ctx, ops, n.urgent)
	if err != nil || p == nil {
		return func() ([]store.Result, error) { return nil, err }, err
	}
	return func() ([]store.Result, error) { return n.awaitProposal(ctx, p, n.urgent) }, nil
}

func (n *Node) propose(ctx context.Context, ops []store.Op, b *batcher) ([]store.Result, error) {
	p, err := n.enqueue(ctx, ops, b)
	if err != nil || p == nil {
		return nil, err
	}
	return n.awaitProposal(ctx, p, b)
}

// enqueue hands ops to batcher b; a nil proposal (and no error) means
// there was nothing to propose.
func (n *Node) enqueue(ctx context.Context, ops []store.Op, b *batcher) (*proposal, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	if n.closed() {
		return nil, ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	body, err := encodeOpsBody(ops)
	if err != nil {
		return nil, err
	}
	p := &proposal{ctx: ctx, body: body, count: len(ops), done: make(chan proposalResult, 1)}
	select {
	case b.ch <- p:
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.shutdownCh:
		return nil, ErrShutdown
	}
}

// awaitProposal waits for the results of a proposal enqueue handed to b.
func (n *Node) awaitProposal(ctx context.Context, p *proposal, b *batcher) ([]store.Result, error) {
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-ctx.Done():
		// The ops may be in an entry already: their fate is unknown.
		return nil, submitted(ctx.Err())
	case <-b.done:
		// The batcher stopped; it answers what it took before stopping.
		select {
		case r := <-p.done:
			return r.res, r.err
		default:
			return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ErrShutdown)
		}
	}
}

// ReadBarrier returns once the local store reflects every write committed
// before the call, and this node was still the leader after the call began:
// reads from Store() that follow are linearizable. On a follower it returns
// *ErrNotLeader.
//
// It is the read-index method: note the commit index, confirm leadership
// with a round of heartbeats (VerifyLeader), then wait for the FSM to apply
// up to that index. The commit index only covers every earlier write once
// the leader has committed an entry of its own term (its first no-op);
// until then a full Raft barrier is used instead.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if n.closed() {
		return ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	term := n.raft.CurrentTerm()
	commit := n.raft.CommitIndex()
	target, ok := n.readTarget(term, commit)
	if !ok {
		return n.translate(n.await(ctx, n.raft.Barrier(n.enqueueTimeout(ctx))))
	}
	if err := n.await(ctx, n.raft.VerifyLeader()); err != nil {
		return n.translate(err)
	}
	return n.fsm.waitApplied(ctx, target, n.shutdownCh)
}

// readTarget returns the index the FSM must reach to reflect everything up
// to commit, or false when commit is not known to be complete (the entry at
// commit is not of the current term) or the log cannot tell.
//
// Raft hands the FSM only command and configuration entries, so after a
// trailing no-op or barrier the FSM's applied index stays below commit; the
// target is the last entry at or below commit that the FSM will see.
func (n *Node) readTarget(term, commit uint64) (uint64, bool) {
	var l raft.Log
	if commit == 0 || n.logs.GetLog(commit, &l) != nil || l.Term != term {
		return 0, false
	}
	applied := n.fsm.AppliedIndex()
	for idx := commit; idx > applied; idx-- {
		if idx != commit && n.logs.GetLog(idx, &l) != nil {
			return 0, false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return idx, true
		}
	}
	return applied, true
}

// AddVoter adds a voter to the cluster, or updates its address. Leader only.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if n.closed() {
		return ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.enqueueTimeout(ctx))
	return submitted(n.translate(n.await(ctx, f)))
}

// AddNonvoter adds a server that receives the log but does not vote, or
// updates its address; a voter stays a voter. Leader only. A new voter is
// staged this way until its log has caught up, then promoted by AddVoter.
func (n *Node) AddNonvoter(ctx context.Context, id, addr string) error {
	if n.closed() {
		return ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	f := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.enqueueTimeout(ctx))
	return submitted(n.translate(n.await(ctx, f)))
}

// RemoveServer removes a server from the cluster. Leader only. A leader that
// removes itself steps down.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if n.closed() {
		return ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, n.enqueueTimeout(ctx))
	return submitted(n.translate(n.await(ctx, f)))
}

// Status returns a point-in-time view of the node.
func (n *Node) Status() Status {
	id, addr := n.Leader()
	s := Status{
		ID:           n.cfg.ID,
		State:        n.raft.State().String(),
		LeaderID:     id,
		LeaderAddr:   addr,
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.AppliedIndex(),
		LastIndex:    n.raft.LastIndex(),
		LastContact:  n.raft.LastContact(),

		SkippedEntries: n.fsm.SkippedEntries(),
	}
	// GetConfiguration reads raft's copy without a round trip through its
	// main loop, so this stays cheap and works after shutdown.
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			s.Voters = append(s.Voters, Server{ID: string(sv.ID), Addr: string(sv.Address), Suffrage: sv.Suffrage.String()})
		}
	}
	return s
}

// LeaderCh returns a new channel that reports this node's leadership: true
// when it becomes the leader, false when it stops. Every call returns its
// own channel, so several consumers can watch. The channel holds only the
// latest value: a consumer that falls behind sees the current state, not
// every transition, so treat each value as "the state is now X" (a
// true→false→true that was missed arrives as one true). If the node is the
// leader when LeaderCh is called, the channel starts with true. It is
// closed on Shutdown.
func (n *Node) LeaderCh() <-chan bool {
	ch := make(chan bool, 1)
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	select {
	case <-n.leaderDone:
		close(ch)
		return ch
	default:
	}
	if n.leaderNow {
		ch <- true
	}
	n.leaderSubs = append(n.leaderSubs, ch)
	return ch
}

// fanOutLeadership is the only reader of raft's leadership channel. It
// never blocks: each subscriber's one-slot channel is overwritten with the
// latest value.
func (n *Node) fanOutLeadership(raftCh <-chan bool) {
	defer func() {
		n.leaderMu.Lock()
		for _, ch := range n.leaderSubs {
			close(ch)
		}
		n.leaderSubs = nil
		close(n.leaderDone)
		n.leaderMu.Unlock()
	}()
	for {
		select {
		case v := <-raftCh:
			n.leaderMu.Lock()
			n.leaderNow = v
			for _, ch := range n.leaderSubs {
				overwrite(ch, v)
			}
			n.leaderMu.Unlock()
		case <-n.shutdownCh:
			return
		}
	}
}

// overwrite leaves v as the only value in a one-slot channel. Only one
// goroutine sends on ch, so after draining, the send cannot block.
func overwrite(ch chan bool, v bool) {
	select {
	case <-ch:
	default:
	}
	ch <- v
}

// Shutdown stops the node: raft (which closes its transport, including one
// passed in Config), then the log store. It is idempotent and returns the first
// call's error.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		close(n.shutdownCh)
		<-n.regular.done
		<-n.urgent.done
		err := n.raft.Shutdown().Error()
		<-n.leaderDone
		<-n.snapsDone
		n.shutdownErr = errors.Join(err, n.closeOwned())
	})
	return n.shutdownErr
}

func (n *Node) closeOwned() error {
	var errs []error
	for _, c := range n.closers {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.closers = nil
	return errors.Join(errs...)
}

func (n *Node) closed() bool {
	select {
	case <-n.shutdownCh:
		return true
	default:
		return false
	}
}

func (n *Node) notLeader() error {
	id, addr := n.Leader()
	return &ErrNotLeader{LeaderID: id, LeaderAddr: addr}
}

// enqueueTimeout bounds how long raft may take to accept an entry:
// ApplyTimeout, or less if ctx ends sooner.
func (n *Node) enqueueTimeout(ctx context.Context) time.Duration {
	t := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < t {
			t = max(left, time.Millisecond)
		}
	}
	return t
}

// await waits for a raft future, or for ctx (returning ctx.Err()). Raft futures have no channel,
// so with a cancellable ctx the wait runs in a goroutine that ends when raft
// resolves the future (raft resolves every future, at the latest on
// shutdown).
func (n *Node) await(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// submitted marks an error from waiting on an entry already handed to raft:
// if the wait ended with ctx, the entry may still commit.
func submitted(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// translate maps raft's errors to ours.
func (n *Node) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		// The entry never reached raft's queue: nothing was proposed.
		return fmt.Errorf("consensus: raft did not accept the entry within %v: %w", n.cfg.ApplyTimeout, context.DeadlineExceeded)
	}
	return err
}

// Addr is the Raft address this node listens on (what others dial).
func (n *Node) Addr() string { return string(n.localAddr()) }

// LeadershipTransfer hands leadership to another voter (raft picks the most
// up-to-date one) and returns once the transfer is done. Leader only. A
// leader that stops on purpose calls it first, so that the cluster does not
// wait an election timeout to notice.
func (n *Node) LeadershipTransfer(ctx context.Context) error {
	if n.closed() {
		return ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	return n.translate(n.await(ctx, n.raft.LeadershipTransfer()))
}

// closerFunc adapts a close function to io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }
