package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// Retry spacing of the Node's registration and of the wait for its pod
// CIDR (retryBackoff), and the bound of each of their requests.
//
// Both loops used to retry at a fixed pace (every 200 ms and every 500 ms,
// each request cut at 5 s). A hundred agents in one starved process (the
// hollow-node benchmark) showed what that does to a cluster under load: a
// request that outlived its 5 s cost its connection (and the forwarded
// one behind it), the retry paid new TLS handshakes, and these two loops
// made two fifths of all the dials while nodes joined. An agent among a
// thousand must retry less often the longer the control plane fails to
// answer, and give each request the time of a TLS handshake under load
// (peerHandshakeTimeout) on each of its two hops (this agent's own API,
// then the voter it forwards to).
const (
	registerFirstRetry = 200 * time.Millisecond
	registerMaxRetry   = 5 * time.Second
	podCIDRFirstPoll   = 500 * time.Millisecond
	podCIDRMaxPoll     = 5 * time.Second
	nodeRequestTimeout = 2 * peerHandshakeTimeout
)

// retryBackoff spaces the retries of a loop: the wait after the n-th
// failure in a row is drawn in [d/2, d] with d = first·2ⁿ⁻¹, at most limit.
// The jitter keeps agents that failed together (all of them, when the
// leader was away) from retrying together. The zero value is unusable:
// first and limit are required.
type retryBackoff struct {
	first, limit time.Duration
	// rand returns a number in [0, 1); nil means math/rand/v2's Float64.
	rand func() float64
	cur  time.Duration // the bound of the next wait; 0: back at first
}

// next returns the wait before the next attempt and lengthens the one
// after it.
func (b *retryBackoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.first
	}
	d := b.cur
	b.cur = min(2*b.cur, b.limit)
	r := rand.Float64
	if b.rand != nil {
		r = b.rand
	}
	return d/2 + time.Duration(r()*float64(d-d/2))
}

// reset starts the spacing again from first (after a success).
func (b *retryBackoff) reset() { b.cur = 0 }

// registerLoop keeps this agent's Node object current: once the agent is in
// a cluster, and again after each role change, it writes what BuildNode
// says through its own API (forwarded to the leader), retrying until the
// write lands, with a back-off (retryBackoff from registerFirstRetry to
// registerMaxRetry). Each write that lands kicks waitPodCIDR.
func (a *Agent) registerLoop(ctx context.Context) {
	facts, err := ReadHostFacts()
	if err != nil {
		a.log.Warn("reading host facts; the Node object will lack some", "err", err)
	}
	kick := a.kicks.sub(kickRole)
	retry := retryBackoff{first: registerFirstRetry, limit: registerMaxRetry}
	done := ""
	for {
		role := a.Role()
		wait := a.cfg.Interval
		if role != gossip.RoleNone && role != done {
			err := a.register(ctx, facts, role)
			switch {
			case err == nil:
				done = role
				retry.reset()
				a.kicks.kick(kickRegistered)
				a.log.Info("node registered", "role", role)
			case ctx.Err() == nil:
				wait = retry.next()
				a.log.Debug("registering the node; retrying", "err", err, "retry", wait)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
			t.Stop()
			done = "" // write again even if the role reads the same
		case <-t.C:
		}
	}
}

// register creates or updates this agent's Node.
func (a *Agent) register(ctx context.Context, facts HostFacts, role string) error {
	want := BuildNode(a.cfg.NodeName, facts, NodeInputs{
		Labels:     a.cfg.Labels,
		Zone:       a.cfg.Zone,
		InternalIP: a.hostIP(),
		APIAddr:    a.apiAdv,
		RaftAddr:   a.raftAdv,
		Role:       role,
		Version:    a.cfg.Version,
		NoPods:     !a.cfg.Host.Enabled,
	})
	rctx, cancel := context.WithTimeout(ctx, nodeRequestTimeout)
	defer cancel()
	var current *api.Node
	obj, err := a.client.Get(rctx, "Node", "", a.cfg.NodeName)
	switch {
	case err == nil:
		current = obj.(*api.Node)
	case api.IsNotFound(err):
	default:
		return err
	}
	out, metaChanged, statusChanged := MergeNode(current, want)
	if current == nil {
		_, err := a.client.Create(rctx, out)
		return err
	}
	if metaChanged {
		obj, err := a.client.Update(rctx, out)
		if err != nil {
			return err
		}
		out.ResourceVersion = obj.GetObjectMeta().ResourceVersion
	}
	if statusChanged {
		if _, err := a.client.UpdateStatus(rctx, out); err != nil {
			return err
		}
	}
	return nil
}

// readinessLoop runs on the leader: it derives each Node's Ready condition
// from gossip (placement decides, this loop writes the changes through the
// status subresource): dead (a failure verdict, after indirect probes and
// suspicion) and left (announced, most often a restart) are told apart,
// as node loss gives them different graces. No heartbeat goes through Raft: a write happens only
// when a node's liveness changes.
func (a *Agent) readinessLoop(ctx context.Context, n *consensus.Node) {
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	kick := a.kicks.sub(kickReady)
	for {
		a.syncReadiness(ctx, n)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-kick:
		}
	}
}

func (a *Agent) syncReadiness(ctx context.Context, n *consensus.Node) {
	objs, _, err := n.Store().List("Node", "", store.Selector{})
	if err != nil || len(objs) == 0 {
		return
	}
	nodes := make([]*api.Node, 0, len(objs))
	for _, o := range objs {
		if nd, ok := o.(*api.Node); ok {
			nodes = append(nodes, nd)
		}
	}
	live := map[string]placement.Liveness{}
	for _, m := range a.gossip.Members() {
		live[m.Name] = placement.Liveness{Known: true, Alive: m.State == gossip.Alive, Left: m.State == gossip.Left, Since: m.Since}
	}
	// This agent is the leader and alive, whatever its table says.
	self := live[a.cfg.NodeName]
	self.Known, self.Alive = true, true
	live[a.cfg.NodeName] = self
	for _, nd := range placement.NodeReadiness(nodes, live, a.cfg.Clock.Now()) {
		// Proposed directly, as the controllers write: the leader's own
		// agent certificate may write only its own Node through the API
		// (issue 10's node restriction), and this writes every node's.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := n.Propose(wctx, []store.Op{{Type: store.OpUpdateStatus, Object: nd}})
		cancel()
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				a.log.Debug("readiness: writing node status", "node", nd.Name, "err", err)
			}
			continue
		}
		c := api.FindCondition(nd.Status.Conditions, api.NodeReady)
		a.log.Info("readiness: node "+c.Status, "node", nd.Name, "reason", c.Reason)
	}
}
