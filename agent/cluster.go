package agent

// Roles. An agent is in no cluster (RoleNone) until the bootstrap decision
// (consensus/voters.DecideBootstrap, fed from gossip) tells it to form one
// or to join one. It is then a voter (it runs Raft and holds a replica of
// the store) or a non-voter (no Raft at all). The leader's voter manager
// moves agents between the two: it asks an agent to start Raft
// (POST /v1/cluster/promote) before adding it as a voter, and an agent
// removed from the Raft configuration stops Raft, wipes its Raft directory
// and becomes a non-voter again (keeping its cluster id).
//
// Every transition runs on one goroutine, roleLoop, so there is never more
// than one Raft node per agent.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/consensus/voters"
)

func (a *Agent) raftDir() string { return filepath.Join(a.cfg.DataDir, "raft") }

// resolvePort returns addr with port 0 replaced by a port free right now,
// so that the address can be advertised before Raft listens on it and
// stays the same across promotions.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// advertised is addr with an unspecified host replaced by the address the
// others should dial: --advertise, else fallback, else the gossip address.
func (a *Agent) advertised(addr, fallback string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return addr
	}
	switch {
	case a.cfg.Advertise != "":
		host = a.cfg.Advertise
	case fallback != "":
		host = fallback
	default:
		gh, _, _ := net.SplitHostPort(a.cfg.GossipAddr)
		if ip := net.ParseIP(gh); ip != nil && !ip.IsUnspecified() {
			host = gh
		} else if a.gossip != nil {
			host = a.gossip.Local().Addr
		} else if ip, err := sockaddr.GetPrivateIP(); err == nil && ip != "" {
			// Before gossip runs (a voter restarting with Raft state),
			// pick the address memberlist itself would advertise.
			host = ip
		} else {
			return addr
		}
	}
	return net.JoinHostPort(host, port)
}

// startRaft starts this agent's Raft node on a fresh store and makes the
// agent a voter. bootstrap forms a one-voter cluster if there is no state.
func (a *Agent) startRaft(bootstrap bool) error {
	rc := a.raftConfig()
	rc.BindAddr = a.raftAddr
	if a.raftAdv != a.raftAddr {
		rc.AdvertiseAddr = a.raftAdv
	}
	rc.Bootstrap = bootstrap
	if a.tls != nil {
		// Mutual TLS, and only certificates that may vote get in.
		rc.TLS = a.tls.RaftConfig()
	}
	if rc.Logger == nil {
		rc.Logger = raftLogger(a.log)
	}
	rc.Observer = a.metrics.Raft
	st := store.New(store.DefaultConfig())
	n, err := consensus.NewNode(rc, st)
	if err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	a.mu.Lock()
	a.node, a.st, a.role, a.inConfig = n, st, gossip.RoleVoter, false
	a.mu.Unlock()
	return nil
}

// stopRaft shuts the Raft node down, if any, and returns its error.
func (a *Agent) stopRaft() error {
	a.mu.Lock()
	n := a.node
	a.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.Shutdown()
}

// becomeNonvoter stops Raft, wipes the Raft directory (this agent's log is
// of no use once it is out of the configuration: a later promotion starts
// empty and is sent a snapshot) and leaves an empty store.
func (a *Agent) becomeNonvoter(ctx context.Context, why string) {
	a.mu.Lock()
	n := a.node
	a.node, a.st, a.role, a.inConfig = nil, store.New(store.DefaultConfig()), gossip.RoleNonvoter, false
	a.mu.Unlock()
	if n != nil {
		if err := n.Shutdown(); err != nil {
			a.log.Warn("stopping raft", "err", err)
		}
		// Watches served from this replica would go silent: end them so
		// their clients resume on a voter.
		n.Store().CloseWatchers(fmt.Errorf("%w: this agent is no longer a voter; watch another agent", store.ErrTooOld))
		if err := os.RemoveAll(a.raftDir()); err != nil {
			a.log.Error("wiping the raft directory", "dir", a.raftDir(), "err", err)
		}
	}
	a.log.Info("now a non-voter", "reason", why)
	a.publishMeta()
	a.kicks.kick(kickRole)
}

// roleRequest asks roleLoop for a transition; the answer goes to reply.
type roleRequest struct {
	promote bool // else demote
	cluster string
	leader  string // the node name of the agent asking
	reply   chan error
}

// roleLoop owns every role transition: the bootstrap decision while in no
// cluster, promotion and demotion on request, and the check that a voter
// is still in the Raft configuration.
func (a *Agent) roleLoop(ctx context.Context) {
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	kick := a.kicks.sub(kickBootstrap)
	a.publishMeta()
	for {
		a.checkRole(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-kick:
		case req := <-a.roleReq:
			req.reply <- a.transition(ctx, req)
		}
	}
}

// transition applies a promotion or demotion request.
func (a *Agent) transition(ctx context.Context, req roleRequest) error {
	// Only the leader of this agent's own cluster changes its role: the
	// request must name the cluster, and a demotion (which wipes the Raft
	// log) must come from the leader this agent itself follows.
	cid := a.ClusterID()
	switch {
	case req.cluster == "":
		return errors.New("cluster: the request must name the cluster")
	case cid == "":
		return errors.New("this agent has not joined a cluster yet")
	case req.cluster != cid:
		return fmt.Errorf("this agent belongs to cluster %s, not %s", cid, req.cluster)
	}
	if !req.promote {
		n := a.Node()
		if n == nil {
			return nil
		}
		if n.IsLeader() {
			return errors.New("this agent is the leader; it is never demoted by request")
		}
		lead, _ := n.Leader()
		if lead != "" && lead != req.leader {
			return fmt.Errorf("only the leader (%s) may demote this agent, not %q", lead, req.leader)
		}
		// The Raft log is wiped only once a configuration shows the
		// removal (issue 10): a request alone never costs a vote.
		if err := a.confirmRemoved(ctx, n, req.leader); err != nil {
			return fmt.Errorf("not removed from the raft configuration: %w", err)
		}
		a.becomeNonvoter(ctx, "the leader removed this agent from the voters")
		return nil
	}
	if a.Node() != nil {
		return nil // a voter already: Raft is listening
	}
	if !a.mayVote() {
		return errors.New("this agent's certificate may not vote (it joined with a worker token)")
	}
	if err := a.startRaft(false); err != nil {
		return err
	}
	a.log.Info("promoted: raft started, waiting to be added as a voter", "raft", a.raftAdv)
	a.watchLeadership(a.Node())
	a.publishMeta()
	a.kicks.kick(kickRole)
	return nil
}

// checkRole is the periodic part of roleLoop.
func (a *Agent) checkRole(ctx context.Context) {
	if err := a.staleError(); err != nil {
		a.stopFatal(err)
		return
	}
	a.adoptEpoch()
	switch a.Role() {
	case gossip.RoleNone:
		a.decideBootstrap(ctx)
	case gossip.RoleVoter:
		a.checkVoter(ctx)
	}
}

// decideBootstrap runs voters.DecideBootstrap on the gossip view and acts.
func (a *Agent) decideBootstrap(ctx context.Context) {
	if a.cfg.BootstrapExpect == 0 || a.gossip == nil {
		return
	}
	var cands []voters.Candidate
	for _, m := range a.gossip.Members() {
		if m.MetaErr != "" {
			continue
		}
		cands = append(cands, voters.Candidate{ID: m.Name, Alive: m.State == gossip.Alive && !m.Meta.Leaving, ClusterID: m.Meta.ClusterID})
	}
	d := voters.DecideBootstrapFor(voters.BootstrapInput{
		Self: a.cfg.NodeName, Expect: a.cfg.BootstrapExpect, Candidates: cands,
		ClusterID: a.ClusterID(), Unreached: a.unreachedJoin(ctx),
	})
	switch d.Action {
	case voters.Wait:
		a.log.Debug("bootstrap: waiting", "reason", d.Reason)
	case voters.Bootstrap:
		a.log.Info("bootstrap: forming a new cluster", "reason", d.Reason)
		if err := a.startRaft(true); err != nil {
			a.log.Error("bootstrap: starting raft", "err", err)
			return
		}
		if err := a.setClusterID(newClusterID()); err != nil {
			// The cluster exists; only the file is missing. Adopted
			// again from gossip after a restart is not possible (this is
			// the first voter), so say it loudly.
			a.log.Error("bootstrap: recording the cluster id", "err", err)
		}
		a.watchLeadership(a.Node())
		a.publishMeta()
		a.kicks.kick(kickRole)
	case voters.Join:
		if d.Conflict {
			a.log.Error("bootstrap: more than one cluster is visible; an operator must merge them", "reason", d.Reason)
		}
		a.log.Info("bootstrap: joining an existing cluster as a non-voter", "cluster", d.ClusterID, "reason", d.Reason)
		if err := a.setClusterID(d.ClusterID); err != nil {
			a.log.Error("bootstrap", "err", err)
			return
		}
		a.mu.Lock()
		a.role = gossip.RoleNonvoter
		a.mu.Unlock()
		a.publishMeta()
		a.kicks.kick(kickRole)
	}
}

// checkVoter demotes a voter that the Raft configuration no longer holds
// (after having held it: a new voter catching up first sees configurations
// from before it was added), and adopts the cluster id of a leader when this
// voter has none (one added by hand).
func (a *Agent) checkVoter(ctx context.Context) {
	n := a.Node()
	if n == nil {
		return
	}
	st := n.Status()
	in := slices.ContainsFunc(st.Voters, func(s consensus.Server) bool { return s.ID == a.cfg.NodeName })
	a.mu.Lock()
	was := a.inConfig
	if in {
		a.inConfig = true
	}
	a.mu.Unlock()
	if !in && was && len(st.Voters) > 0 {
		a.becomeNonvoter(ctx, "this agent is no longer in the raft configuration")
		return
	}
	if a.ClusterID() == "" && st.LeaderID != "" && st.LeaderID != a.cfg.NodeName && a.gossip != nil {
		for _, m := range a.gossip.Members() {
			if m.Name == st.LeaderID && m.Meta.ClusterID != "" {
				a.log.Info("adopting the leader's cluster id", "cluster", m.Meta.ClusterID)
				if err := a.setClusterID(m.Meta.ClusterID); err == nil {
					a.publishMeta()
				}
			}
		}
	}
}

// requestRole hands a transition to roleLoop and waits for it.
func (a *Agent) requestRole(ctx context.Context, promote bool, cluster, leader string) error {
	req := roleRequest{promote: promote, cluster: cluster, leader: leader, reply: make(chan error, 1)}
	select {
	case a.roleReq <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.runCtx.Done():
		return errors.New("the agent is stopping")
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gossipConfig is this agent's gossip configuration.
func (a *Agent) gossipConfig() gossip.Config {
	gc := gossip.DefaultConfig()
	if a.cfg.Gossip != nil {
		gc = *a.cfg.Gossip
	}
	host, port, _ := net.SplitHostPort(a.cfg.GossipAddr)
	gc.NodeName = a.cfg.NodeName
	gc.BindAddr = host
	gc.BindPort, _ = strconv.Atoi(port)
	gc.AdvertiseAddr = a.cfg.Advertise
	gc.Join = a.cfg.Join
	gc.GossipKey, gc.GossipKeys = a.gossipKeyring()
	gc.CheckCluster = a.checkCluster
	gc.Logger = a.cfg.Logger
	if gc.Logger == nil {
		gc.Logger = a.log
	}
	return gc
}

// startGossip creates this agent's gossip member; joinLoop joins.
func (a *Agent) startGossip() error {
	g, err := gossip.New(a.gossipConfig(), a.meta())
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	a.gossip = g
	// The advertised addresses may only be known now (binding 0.0.0.0).
	a.raftAdv = a.advertised(a.raftAddr, g.Local().Addr)
	a.apiAdv = a.advertised(a.ln.Addr().String(), g.Local().Addr)
	if err := g.UpdateMeta(func(m *gossip.Meta) { *m = a.meta() }); err != nil && !errors.Is(err, gossip.ErrBroadcastTimeout) {
		g.Shutdown()
		return err
	}
	return nil
}

// meta is what this agent advertises now.
func (a *Agent) meta() gossip.Meta {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := gossip.Meta{
		APIAddr:   a.apiAdv,
		RaftAddr:  a.raftAdv,
		Zone:      a.cfg.Zone,
		Role:      a.role,
		ClusterID: a.clusterID,
		Version:   a.cfg.Version,
		Worker:    !a.mayVote(),
		Keyring:   a.keyringStateLocked(),
	}
	// A voter that has just been demoted may still hold the term for a
	// moment: it is not advertised with another role.
	if a.role == gossip.RoleVoter && a.mayVote() {
		m.LeaderTerm = a.leaderTerm
	}
	return m
}

// advertiseLeadership records the term in which this agent leads (0: it
// does not) and has metaLoop gossip it, without waiting for the gossip.
func (a *Agent) advertiseLeadership(term uint64) {
	a.mu.Lock()
	changed := a.leaderTerm != term
	a.leaderTerm = term
	a.mu.Unlock()
	if changed {
		a.kicks.kick(kickMeta)
	}
}

// metaLoop publishes the metadata whenever advertiseLeadership changed
// it. Leadership changes on Raft's schedule and a broadcast may wait
// seconds for memberlist's confirmation: the watcher of leadership must
// not wait with it, and publishes must not overtake each other.
func (a *Agent) metaLoop(ctx context.Context) {
	kick := a.kicks.sub(kickMeta)
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			a.publishMeta()
		}
	}
}

// publishMeta gossips the current role, cluster id and leadership. The
// metadata is read under gossip's update lock, so of two publishes the
// later one carries the later state.
func (a *Agent) publishMeta() {
	if a.gossip == nil {
		return
	}
	err := a.gossip.UpdateMeta(func(old *gossip.Meta) { *old = a.meta() })
	if err != nil && !errors.Is(err, gossip.ErrBroadcastTimeout) && !errors.Is(err, gossip.ErrShutdown) && !errors.Is(err, gossip.ErrLeft) {
		a.log.Warn("gossip: updating metadata", "err", err)
	}
}

// joinLoop joins gossip through --join, retrying with back-off (gossip.Join
// logs each attempt). A failure that retrying cannot fix (a name clash, a
// wrong key) stops the agent: Run returns it.
func (a *Agent) joinLoop(ctx context.Context) {
	err := a.joinGossip(ctx)
	if err == nil {
		// Keep knocking on the doors of members seen dead: after a
		// partition heals, or a stall that made this agent look dead,
		// the two views merge again.
		a.gossip.Reconnect(ctx)
		return
	}
	if ctx.Err() != nil {
		return
	}
	var clash *gossip.NameClashError
	var refused *gossip.ClusterRefusedError
	if errors.As(err, &clash) || errors.Is(err, gossip.ErrGossipKey) ||
		(errors.As(err, &refused) && (errors.Is(err, errForeignCluster) || errors.Is(err, errStaleEpoch))) {
		a.log.Error("cannot join the cluster; stopping", "err", err)
		a.stopFatal(err)
		return
	}
	a.log.Error("join", "err", err)
	if refused != nil {
		// The member at --join is the stale one: keep knocking, others
		// of this cluster may come.
		a.gossip.Reconnect(ctx)
	}
}

// pumpEvents turns gossip events into kicks for the loops that re-plan on
// membership changes. It never blocks on a loop.
func (a *Agent) pumpEvents(ctx context.Context) {
	evs := a.gossip.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-evs:
			if !ok {
				return
			}
			a.kicks.kick(kickBootstrap, kickVoters, kickReady, kickLeader)
		}
	}
}

// Kinds of kicks: each loop waits on its own.
const (
	kickBootstrap = iota
	kickVoters
	kickReady
	kickLeader
	kickRole       // this agent's role changed: register the Node again
	kickRegistered // the Node was written: waitPodCIDR reads it again
	kickMeta       // this agent's leadership changed: gossip it (metaLoop)
	numKicks
)

// kickers are one-slot channels: a kick that finds the slot full is
// merged with the pending one.
type kickers [numKicks]chan struct{}

func newKickers() kickers {
	var k kickers
	for i := range k {
		k[i] = make(chan struct{}, 1)
	}
	return k
}

func (k *kickers) sub(kind int) <-chan struct{} { return k[kind] }

func (k *kickers) kick(kinds ...int) {
	for _, kind := range kinds {
		select {
		case k[kind] <- struct{}{}:
		default:
		}
	}
}

// urgentProposer is the controllers' way into Raft: their proposals go
// ahead of the nodes' writes (consensus.Node.ProposeUrgent).
type urgentProposer struct{ n *consensus.Node }

func (p urgentProposer) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	return p.n.ProposeUrgent(ctx, ops)
}

func (p urgentProposer) ProposeQueued(ctx context.Context, ops []store.Op) (func() ([]store.Result, error), error) {
	return p.n.ProposeUrgentQueued(ctx, ops)
}

// roleBackend is the API server's Backend: the current Raft node, or, on a
// non-voter, an answer that there is no local leader (the forwarder sends
// such requests elsewhere before they get here).
type roleBackend struct{ a *Agent }

func (b roleBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	n := b.a.Node()
	if n == nil {
		return nil, b.a.notVoter()
	}
	res, err := n.Propose(ctx, ops)
	return res, b.a.leaderAPIError(err)
}

func (b roleBackend) ReadBarrier(ctx context.Context) error {
	n := b.a.Node()
	if n == nil {
		return b.a.notVoter()
	}
	return b.a.leaderAPIError(n.ReadBarrier(ctx))
}

// roleVoters serves the manual voter API from the current Raft node,
// through the voter manager's safety check (cluster_voters_manual.go).
type roleVoters struct{ a *Agent }

func (v roleVoters) AddVoter(ctx context.Context, id, addr string) (string, error) {
	msg, err := v.a.manualAddVoter(ctx, id, addr)
	return msg, v.a.leaderAPIError(err)
}

func (v roleVoters) RemoveServer(ctx context.Context, id string) (string, error) {
	msg, err := v.a.manualRemoveServer(ctx, id)
	return msg, v.a.leaderAPIError(err)
}

func (a *Agent) notVoter() error {
	id, _ := a.nonvoterLeader()
	return &consensus.ErrNotLeader{LeaderID: id, LeaderAddr: a.memberAPI(id)}
}

// roleReader reads the current store.
type roleReader struct{ a *Agent }

func (r roleReader) Get(key store.Key) (api.Object, error) { return r.a.Store().Get(key) }

func (r roleReader) List(kind, namespace string, sel store.Selector) ([]api.Object, int64, error) {
	return r.a.Store().List(kind, namespace, sel)
}

func (r roleReader) Watch(kind, namespace string, from int64, sel store.Selector) (*store.Watcher, error) {
	return r.a.Store().Watch(kind, namespace, from, sel)
}

// ListAt serves later pages of a paginated list at the first page's
// revision (apiserver's pagedReader).
func (r roleReader) ListAt(kind, namespace string, sel store.Selector, rev int64) ([]api.Object, error) {
	return r.a.Store().ListAt(kind, namespace, sel, rev)
}

// Revision is the local replica's revision, which watch bookmarks carry.
func (r roleReader) Revision() int64 { return r.a.Store().Revision() }

// AgentStatus is served at /v1/cluster/raft: the Raft view of a voter, or
// what a non-voter knows.
// LeaderAddr is the leader's Raft address, LeaderAPI its API address (the
// one clients use).
type AgentStatus struct {
	consensus.Status
	LeaderAPI string
	Role      string
	ClusterID string
}

func (a *Agent) statusView() any {
	s := AgentStatus{Role: roleName(a.Role()), ClusterID: a.ClusterID()}
	if n := a.Node(); n != nil {
		s.Status = n.Status()
	} else {
		s.ID = a.cfg.NodeName
		s.State = "NonVoter"
		s.LeaderID, _ = a.nonvoterLeader()
		s.LeaderAddr = a.memberRaft(s.LeaderID)
	}
	s.LeaderAPI = a.memberAPI(s.LeaderID)
	return s
}

func roleName(r string) string {
	if r == "" {
		return "none"
	}
	return r
}
