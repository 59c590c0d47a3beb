package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/voters"
)

// voterManager runs on the leader: on every gossip event and every Interval
// it asks voters.Plan for the next change of the Raft configuration and
// applies it, one at a time (deciding apart from doing: Plan is pure).
// Plan sees gossip, the configuration, each server's Raft health (asked of
// its agent, see judgeServers) and how long ago gossip settled since this
// agent became the leader.
func (a *Agent) voterManager(ctx context.Context, n *consensus.Node) {
	if a.cfg.ManualVoters {
		a.log.Info("voter manager: off (--manual-voters); voters change only by hand")
		return
	}
	tick := time.NewTicker(a.cfg.Interval)
	defer tick.Stop()
	kick := a.kicks.sub(kickVoters)
	vm := &voterLoop{leaderSince: a.cfg.Clock.Now()}
	lastIdle := ""
	for {
		// A few changes in a row, re-planning after each: a successor's
		// promotion is followed at once by the removal it allows.
		for range 4 {
			c, ok := a.planVoters(ctx, n, vm)
			if !ok {
				if c.Reason != lastIdle {
					a.log.Debug("voter manager: no change", "reason", c.Reason)
					lastIdle = c.Reason
				}
				break
			}
			lastIdle = ""
			if err := a.applyVoterChange(ctx, n, c); err != nil {
				if ctx.Err() == nil {
					a.log.Warn("voter manager: change failed", "change", c.String(), "err", err)
				}
				break
			}
			a.voterEvent(c)
		}
		if ctx.Err() == nil {
			a.demoteStragglers(ctx, n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-kick:
		}
	}
}

// voterLoop is the voter manager's memory across rounds of one leadership.
type voterLoop struct {
	leaderSince time.Time
	// settledAt is when gossip was first seen settled since leaderSince.
	settledAt time.Time
	health    healthBook
	// The last round of judgements, for which configuration, and when:
	// reused for a short while when the configuration is the same, so
	// that a burst of gossip events does not question every agent each
	// time.
	lastJudged map[string]judgement
	lastKey    string
	lastAt     time.Time
}

// judgeEvery is how long one round of judgements is reused.
const judgeEvery = 250 * time.Millisecond

// judged returns this round's verdicts on the servers of the configuration.
func (vm *voterLoop) judged(ctx context.Context, a *Agent, n *consensus.Node) map[string]judgement {
	servers := n.Status().Voters
	var key strings.Builder
	for _, s := range servers {
		key.WriteString(s.ID + "=" + s.Suffrage + ",")
	}
	if vm.lastJudged != nil && key.String() == vm.lastKey && time.Since(vm.lastAt) < judgeEvery {
		return vm.lastJudged
	}
	js := a.judgeServers(ctx, n, servers)
	vm.health.record(a.cfg.Clock.Now(), js)
	vm.lastJudged, vm.lastKey, vm.lastAt = js, key.String(), time.Now()
	return js
}

// settle is the stabilisation period after gossip settled.
func (a *Agent) settle() time.Duration { return a.cfg.VoterSettle }

// observeSettled notes when gossip settles: it knows every server of the
// configuration (alive, or seen dead: DeadGrace then applies), or it has
// had a whole settle period since leadership began to show the ones it
// does not know (after which they are taken as really gone). After a full
// restart gossip starts empty, so a voter slow to come back is unknown
// rather than dead; after a leader's crash the others have seen it dead.
func (vm *voterLoop) observeSettled(in voters.Input, settle time.Duration) {
	if !vm.settledAt.IsZero() {
		return
	}
	known := map[string]bool{in.Leader: true}
	for _, m := range in.Members {
		known[m.ID] = true
	}
	all := true
	for _, s := range in.Servers {
		all = all && known[s.ID]
	}
	switch {
	case all:
		vm.settledAt = in.Now
	case in.Now.Sub(vm.leaderSince) >= settle:
		vm.settledAt = vm.leaderSince.Add(settle)
	}
}

// voterInput builds Plan's input from gossip, the Raft configuration with
// each server's health (health nil: all taken as healthy) and the clock.
func (a *Agent) voterInput(n *consensus.Node, health map[string]judgement, since map[string]time.Time) voters.Input {
	in := voters.Input{
		Now:       a.cfg.Clock.Now(),
		Leader:    a.cfg.NodeName,
		Target:    a.cfg.Voters,
		DeadGrace: a.cfg.DeadGrace,
		Stabilize: a.cfg.Stabilize,
		Settle:    a.settle(),
	}
	inConfig := map[string]bool{}
	for _, s := range n.Status().Voters {
		j := health[s.ID]
		in.Servers = append(in.Servers, voters.Server{ID: s.ID, Addr: s.Addr, Voter: s.Suffrage == "Voter",
			Unhealthy: j.why, NoReplica: j.noReplica, UnhealthySince: since[s.ID]})
		inConfig[s.ID] = true
	}
	cid := a.ClusterID()
	for _, m := range a.gossip.Members() {
		if m.MetaErr != "" {
			continue
		}
		ours := m.Meta.ClusterID == cid && cid != ""
		if !ours && !inConfig[m.Name] {
			continue // in another cluster, or in none yet
		}
		alive := m.State == gossip.Alive
		in.Members = append(in.Members, voters.Member{
			ID:       m.Name,
			RaftAddr: m.Meta.RaftAddr,
			Zone:     m.Meta.Zone,
			Alive:    alive,
			Since:    m.Since,
			Eligible: alive && ours && !m.Meta.Leaving && !m.Meta.Worker,
		})
	}
	return in
}

// planVoters judges every server afresh (a server staged a moment ago must
// not pass for caught up) and plans.
func (a *Agent) planVoters(ctx context.Context, n *consensus.Node, vm *voterLoop) (voters.Change, bool) {
	if !n.IsLeader() {
		return voters.Change{Reason: "not the leader"}, false
	}
	js := vm.judged(ctx, a, n)
	in := a.voterInput(n, js, vm.health.since)
	vm.observeSettled(in, in.Settle)
	in.LeaderSince, in.SettledAt = vm.leaderSince, vm.settledAt
	return voters.Plan(in)
}

// applyVoterChange makes one change. Staging first asks the agent to start
// Raft (it has none as a non-voter), then adds it as a non-voter; a
// promotion asks again (it is idempotent: the agent may have restarted)
// and gives it a vote; a removal tells the removed agent, if it is alive,
// to stop Raft.
func (a *Agent) applyVoterChange(ctx context.Context, n *consensus.Node, c voters.Change) error {
	a.log.Info("voter manager: "+c.Type.String(), "id", c.ID, "addr", c.Addr, "reason", c.Reason)
	switch c.Type {
	case voters.AddNonvoter, voters.AddVoter:
		apiAddr := a.memberAPI(c.ID)
		if apiAddr == "" {
			return fmt.Errorf("%s has no API address in gossip", c.ID)
		}
		var ans promoteAnswer
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.callPeer(pctx, apiAddr, "/v1/cluster/promote", &ans)
		cancel()
		if err != nil {
			return fmt.Errorf("asking %s to start raft: %w", c.ID, err)
		}
		addr := c.Addr
		if ans.RaftAddr != "" {
			addr = ans.RaftAddr
		}
		if c.Type == voters.AddNonvoter {
			return n.AddNonvoter(ctx, c.ID, addr)
		}
		return n.AddVoter(ctx, c.ID, addr)
	case voters.RemoveServer:
		if err := n.RemoveServer(ctx, c.ID); err != nil {
			return err
		}
		if apiAddr := a.memberAPI(c.ID); apiAddr != "" {
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := a.callPeer(dctx, apiAddr, "/v1/cluster/demote", nil); err != nil {
				a.log.Debug("voter manager: telling the removed server", "id", c.ID, "err", err)
			}
			cancel()
		}
		return nil
	}
	return fmt.Errorf("unknown change %v", c.Type)
}

// demoteStragglers tells alive agents of this cluster that advertise the
// voter role but are not in the Raft configuration to stop Raft: a voter
// removed while it was down, or one whose promotion did not complete.
func (a *Agent) demoteStragglers(ctx context.Context, n *consensus.Node) {
	inConfig := map[string]bool{}
	for _, s := range n.Status().Voters {
		inConfig[s.ID] = true
	}
	cid := a.ClusterID()
	for _, m := range a.gossip.Members() {
		if m.Name == a.cfg.NodeName || m.State != gossip.Alive || m.Meta.Role != gossip.RoleVoter ||
			m.Meta.ClusterID != cid || cid == "" || inConfig[m.Name] || m.Meta.APIAddr == "" {
			continue
		}
		a.log.Info("voter manager: asking a voter outside the raft configuration to step down", "id", m.Name)
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := a.callPeer(dctx, m.Meta.APIAddr, "/v1/cluster/demote", nil); err != nil {
			a.log.Debug("voter manager: demote", "id", m.Name, "err", err)
		}
		cancel()
	}
}

// callPeer POSTs this agent's cluster id to another agent's endpoint and
// decodes the JSON answer into out (if not nil).
func (a *Agent) callPeer(ctx context.Context, apiAddr, path string, out any) error {
	body, _ := json.Marshal(roleChange{Cluster: a.ClusterID(), Leader: a.cfg.NodeName})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.agentURL(apiAddr, path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s%s: HTTP %d: %s", apiAddr, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// leave hands this agent's duties over before it stops (SIGTERM): a leader
// transfers leadership; a voter then has the leader remove it and waits for
// the removal; every agent then leaves gossip. Bounded by LeaveTimeout; each
// step is logged.
func (a *Agent) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LeaveTimeout)
	defer cancel()
	start := time.Now()
	if a.gossip != nil {
		// First say so: the next leader must not promote this agent back
		// while it gives up its seat.
		if err := a.gossip.AnnounceLeaving(min(time.Second, a.cfg.LeaveTimeout/4)); err != nil {
			a.log.Debug("leave: announcing", "err", err)
		}
	}
	if n := a.Node(); n != nil {
		a.leaveVoters(ctx, n)
	}
	if a.gossip != nil {
		left := max(time.Until(deadlineOf(ctx)), 100*time.Millisecond)
		if err := a.gossip.Leave(min(left, 5*time.Second)); err != nil {
			a.log.Warn("leave: gossip", "err", err)
		} else {
			a.log.Info("leave: left gossip")
		}
	}
	a.log.Info("leave: done", "took", time.Since(start).Round(time.Millisecond))
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// leaveVoters gives up leadership and the voter seat. The only voter keeps
// its seat: removing it would leave no cluster.
func (a *Agent) leaveVoters(ctx context.Context, n *consensus.Node) {
	st := n.Status()
	voterCount := 0
	for _, s := range st.Voters {
		if s.Suffrage == "Voter" {
			voterCount++
		}
	}
	in := false
	for _, s := range st.Voters {
		in = in || s.ID == a.cfg.NodeName
	}
	if !in || voterCount <= 1 {
		a.log.Info("leave: keeping the voter seat", "voters", voterCount, "in_configuration", in)
		return
	}
	// Leaving must not cost the cluster its quorum: the voters that stay
	// and are alive in gossip must be a majority of the configuration
	// without this agent. (With a voter already dead, the last healthy
	// pair keeps their seats, and the change could not commit anyway.)
	if alive, rest := a.aliveOtherVoters(st.Voters), voterCount-1; alive < rest/2+1 {
		a.log.Warn("leave: keeping the voter seat: removing it would lose quorum", "alive_other_voters", alive, "remaining_voters", rest)
		return
	}
	if n.IsLeader() {
		a.log.Info("leave: transferring leadership")
		if err := n.LeadershipTransfer(ctx); err != nil {
			a.log.Warn("leave: leadership transfer failed; removing this voter from here", "err", err)
		}
	}
	for ctx.Err() == nil {
		var err error
		if n.IsLeader() {
			err = n.RemoveServer(ctx, a.cfg.NodeName)
		} else {
			_, err = a.client.RemoveServer(ctx, a.cfg.NodeName)
		}
		if err == nil {
			// The leader answers once the new configuration is
			// committed: this agent is a voter no more.
			a.log.Info("leave: removed from the voters")
			a.becomeNonvoter(ctx, "left the voters on shutdown")
			return
		}
		if errors.Is(err, consensus.ErrShutdown) {
			break
		}
		a.log.Warn("leave: asking the leader to remove this voter", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	a.log.Warn("leave: the removal was not confirmed in time", "err", ctx.Err())
}

// aliveOtherVoters counts the voters other than this agent that gossip sees
// alive.
func (a *Agent) aliveOtherVoters(servers []consensus.Server) int {
	alive := map[string]bool{}
	if a.gossip != nil {
		for _, m := range a.gossip.Members() {
			alive[m.Name] = m.State == gossip.Alive && !m.Meta.Leaving
		}
	}
	n := 0
	for _, s := range servers {
		if s.Suffrage == "Voter" && s.ID != a.cfg.NodeName && alive[s.ID] {
			n++
		}
	}
	return n
}
