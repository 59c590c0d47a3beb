package agent

// Manual voter changes (POST /v1/cluster/raft/voters, DELETE
// /v1/cluster/raft/voters/{id}, `shoal raft add-voter|remove`) pass the
// voter manager's own quorum check (voters.Check, with each server's Raft
// health), a new voter is staged as a non-voter until its log has caught
// up, and the answer says what the voter manager will do next. A change
// the voter manager would undo at once is refused: the operator is told to
// run the agents with --manual-voters (the manager then never changes the
// configuration by itself) or to change --voters.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/voters"
)

// refused is the answer to a manual change that must not be made.
func refused(format string, args ...any) error {
	return api.NewStatusError(http.StatusConflict, api.ReasonConflict, nil, "voter change refused: "+format, args...)
}

// leaderNode is this agent's Raft node if it is the leader, else the error
// that names the leader.
func (a *Agent) leaderNode() (*consensus.Node, error) {
	n := a.Node()
	if n == nil {
		return nil, a.notVoter()
	}
	if !n.IsLeader() {
		id, _ := n.Leader()
		return nil, &consensus.ErrNotLeader{LeaderID: id, LeaderAddr: a.memberAPI(id)}
	}
	return n, nil
}

// manualInput is Plan's input as the voter manager would see it now, with
// fresh judgements (an unhealthy server counts as unhealthy from now on).
func (a *Agent) manualInput(ctx context.Context, n *consensus.Node) voters.Input {
	js := a.judgeServers(ctx, n, n.Status().Voters)
	since := map[string]time.Time{}
	now := a.cfg.Clock.Now()
	for id, j := range js {
		if j.why != "" {
			since[id] = now
		}
	}
	return a.voterInput(n, js, since)
}

// withCandidate adds id to in's members if gossip sees it alive and in no
// cluster yet (an agent run with --bootstrap-expect 0 waits with Raft
// running to be added by hand); the voter manager itself only considers
// agents that have joined this cluster.
func (a *Agent) withCandidate(in voters.Input, id string) voters.Input {
	if a.gossip == nil || slices.ContainsFunc(in.Members, func(m voters.Member) bool { return m.ID == id }) {
		return in
	}
	for _, m := range a.gossip.Members() {
		if m.Name == id && m.State == gossip.Alive && m.MetaErr == "" && m.Meta.ClusterID == "" {
			in.Members = append(in.Members, voters.Member{ID: id, RaftAddr: m.Meta.RaftAddr, Zone: m.Meta.Zone,
				Alive: true, Since: m.Since, Eligible: !m.Meta.Leaving && !m.Meta.Worker})
		}
	}
	return in
}

// nextStep says in a sentence what the voter manager will do after a
// manual change that leaves the configuration as in.
func (a *Agent) nextStep(in voters.Input) string {
	if a.cfg.ManualVoters {
		return "the voter manager is off (--manual-voters): the configuration stays as it is until it is changed by hand"
	}
	c, ok := voters.Plan(in)
	if ok {
		return "the voter manager will next: " + c.String()
	}
	return "the voter manager will change nothing for now: " + c.Reason
}

// undoneBy says how the voter manager would undo change c at once, "" if
// it would not (or is off).
func (a *Agent) undoneBy(after voters.Input, c voters.Change) string {
	if a.cfg.ManualVoters {
		return ""
	}
	next, ok := voters.Plan(after)
	if !ok || next.ID != c.ID {
		return ""
	}
	undo := (c.Type == voters.RemoveServer && next.Type != voters.RemoveServer) ||
		(c.Type != voters.RemoveServer && next.Type == voters.RemoveServer)
	if !undo {
		return ""
	}
	return fmt.Sprintf("the voter manager would undo it at once (%s); to choose the voters by hand, run the agents with --manual-voters, or change --voters (now %d)",
		next, a.cfg.Voters)
}

// manualRemoveServer removes id from the configuration if that keeps a
// healthy quorum and the voter manager would not put it back.
func (a *Agent) manualRemoveServer(ctx context.Context, id string) (string, error) {
	n, err := a.leaderNode()
	if err != nil {
		return "", err
	}
	in := a.manualInput(ctx, n)
	c := voters.Change{Type: voters.RemoveServer, ID: id}
	if why := voters.Check(in, c); why != "" {
		return "", refused("removing %s: %s", id, why)
	}
	after := voters.After(in, c)
	if why := a.undoneBy(after, c); why != "" {
		return "", refused("removing %s: %s", id, why)
	}
	a.log.Info("manual voter change: RemoveServer", "id", id)
	if err := n.RemoveServer(ctx, id); err != nil {
		return "", err
	}
	return a.nextStep(after), nil
}

// manualAddVoter stages id as a non-voter, waits (within ctx) until its
// log has caught up, then gives it a vote; each step passes the same
// checks as the voter manager's changes.
func (a *Agent) manualAddVoter(ctx context.Context, id, addr string) (string, error) {
	n, err := a.leaderNode()
	if err != nil {
		return "", err
	}
	in := a.withCandidate(a.manualInput(ctx, n), id)
	c := voters.Change{Type: voters.AddVoter, ID: id, Addr: addr}
	if why := voters.Check(in, c); why != "" {
		return "", refused("adding %s: %s", id, why)
	}
	apiAddr := a.memberAPI(id)
	if apiAddr == "" {
		return "", api.NewStatusError(http.StatusUnprocessableEntity, api.ReasonInvalid, nil,
			"id: %q is not an alive agent in gossip: the leader checks through its API that a new voter's log has caught up before giving it a vote", id)
	}
	after := voters.After(in, c)
	if why := a.undoneBy(after, c); why != "" {
		return "", refused("adding %s: %s", id, why)
	}
	// An agent of this cluster that is a non-voter runs no Raft: ask it
	// to start (an agent run with --bootstrap-expect 0 already runs it).
	if err := a.callPeer(ctx, apiAddr, "/v1/cluster/promote", nil); err != nil {
		a.log.Debug("manual voter change: asking to start raft", "id", id, "err", err)
	}
	a.log.Info("manual voter change: AddNonvoter, then AddVoter once caught up", "id", id, "addr", addr)
	if err := n.AddNonvoter(ctx, id, addr); err != nil {
		return "", err
	}
	why := "not judged yet"
	for ctx.Err() == nil {
		if !slices.ContainsFunc(n.Status().Voters, func(s consensus.Server) bool { return s.ID == id }) {
			return "", refused("adding %s: the voter manager removed it while its log caught up; to choose the voters by hand, run the agents with --manual-voters", id)
		}
		j := a.judgeServers(ctx, n, []consensus.Server{{ID: id}})[id]
		if why = j.why; why == "" {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // polling interval
		}
	}
	if why != "" {
		return "", api.NewTimeout(fmt.Sprintf("%s was added as a non-voter, but its log has not caught up in time (%s); it stays a non-voter: ask again to give it a vote", id, why))
	}
	// Safe when staged is not safe when voting: check again.
	in = a.withCandidate(a.manualInput(ctx, n), id)
	if why := voters.Check(in, c); why != "" {
		return "", refused("adding %s: %s", id, why)
	}
	if err := n.AddVoter(ctx, id, addr); err != nil {
		return "", err
	}
	return a.nextStep(voters.After(in, c)), nil
}
