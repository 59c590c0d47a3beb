package agent

// The leader judges each server of the Raft configuration by asking its
// agent for its replica's state (GET /v1/cluster/replica), the way
// raft-autopilot's delegate fetches each server's stats: gossip says an
// agent is alive, only its replica says whether it can vote usefully.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/voters"
)

// Health limits. A follower hears from the leader every HeartbeatTimeout/10;
// one that heard nothing for several heartbeat timeouts is cut off. A
// replica trailing by more than maxTrailingLogs entries has not caught up
// (raft-autopilot's default).
const (
	lastContactFactor = 4
	maxTrailingLogs   = 250
	// replicaTimeout bounds one question to one agent.
	replicaTimeout = time.Second
)

// replicaAnswer is the answer to GET /v1/cluster/replica.
type replicaAnswer struct {
	Name     string `json:"name"`
	Cluster  string `json:"cluster"`
	RunsRaft bool   `json:"runsRaft"`
	Term     uint64 `json:"term"`
	// LastIndex is the last index of the local log.
	LastIndex uint64 `json:"lastIndex"`
	// LastContactMs: milliseconds since this replica last heard from a
	// leader; -1 if never (or if this agent is the leader).
	LastContactMs int64 `json:"lastContactMs"`
}

// serveReplica answers with this agent's own Raft replica state.
func (a *Agent) serveReplica(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		a.server.MethodNotAllowed(w, r, "GET")
		return
	}
	ans := replicaAnswer{Name: a.cfg.NodeName, Cluster: a.ClusterID(), LastContactMs: -1}
	if n := a.Node(); n != nil {
		st := n.Status()
		ans.RunsRaft, ans.Term, ans.LastIndex = true, st.Term, st.LastIndex
		if !st.LastContact.IsZero() {
			// Raft stamps LastContact with the wall clock.
			ans.LastContactMs = time.Since(st.LastContact).Milliseconds()
		}
	}
	a.server.WriteJSON(w, r, http.StatusOK, ans)
}

// healthLimits derives the thresholds from the Raft timings.
func (a *Agent) healthLimits() voters.Limits {
	rc := consensus.DefaultConfig()
	if a.cfg.Raft != nil {
		rc = *a.cfg.Raft
	}
	return voters.Limits{LastContact: lastContactFactor * rc.HeartbeatTimeout, MaxTrailingLogs: maxTrailingLogs}
}

// askReplica fetches one agent's replica state.
func (a *Agent) askReplica(ctx context.Context, id, apiAddr string) voters.Replica {
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.agentURL(apiAddr, "/v1/cluster/replica"), nil)
	if err != nil {
		return voters.Replica{Err: err.Error()}
	}
	resp, err := a.peers.Do(req)
	if err != nil {
		return voters.Replica{Err: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return voters.Replica{Err: fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
	var ans replicaAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ans); err != nil {
		return voters.Replica{Err: "decoding the answer: " + err.Error()}
	}
	if ans.Name != id {
		return voters.Replica{Err: fmt.Sprintf("the agent at %s is %q, not %q", apiAddr, ans.Name, id)}
	}
	rep := voters.Replica{Reached: true, RunsRaft: ans.RunsRaft, Term: ans.Term, LastIndex: ans.LastIndex,
		LastContact: time.Duration(ans.LastContactMs) * time.Millisecond}
	if ans.LastContactMs < 0 {
		rep.LastContact = -1
	}
	return rep
}

// judgeServers asks every server of the configuration but the leader about
// its replica, in parallel, and judges it against the leader's log. A
// server that is not alive in gossip is not asked: gossip's verdict and
// its grace already cover it.
func (a *Agent) judgeServers(ctx context.Context, n *consensus.Node, servers []consensus.Server) map[string]judgement {
	st := n.Status()
	lim := a.healthLimits()
	members := map[string]gossip.Member{}
	if a.gossip != nil {
		for _, m := range a.gossip.Members() {
			members[m.Name] = m
		}
	}
	out := make(map[string]judgement, len(servers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range servers {
		m, ok := members[s.ID]
		if s.ID == a.cfg.NodeName || !ok || m.State != gossip.Alive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rep voters.Replica
			if m.Meta.APIAddr == "" {
				rep.Err = "no API address in gossip"
			} else {
				rep = a.askReplica(ctx, s.ID, m.Meta.APIAddr)
			}
			if !rep.Reached && m.Meta.Role != gossip.RoleVoter {
				// It does not answer, and says in gossip that it
				// runs no Raft.
				rep = voters.Replica{Reached: true}
			}
			why, no := voters.Judge(rep, st.Term, st.LastIndex, lim)
			mu.Lock()
			out[s.ID] = judgement{why: why, noReplica: no}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// judgement is one server's verdict.
type judgement struct {
	why       string
	noReplica bool
}

// healthBook remembers since when each server has been unhealthy.
type healthBook struct {
	since map[string]time.Time
}

// record updates the book with this round's verdicts and returns the
// unhealthy spells' starts; servers judged healthy leave the book.
func (b *healthBook) record(now time.Time, js map[string]judgement) {
	if b.since == nil {
		b.since = map[string]time.Time{}
	}
	for id := range b.since {
		if j, ok := js[id]; !ok || j.why == "" {
			delete(b.since, id)
		}
	}
	for id, j := range js {
		if _, ok := b.since[id]; !ok && j.why != "" {
			b.since[id] = now
		}
	}
}
