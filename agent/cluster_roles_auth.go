package agent

// Who may change this agent's role (issue 10). Promotion and demotion come
// only from the leader: in secure mode the caller is the node named by the
// verified agent certificate it connected with, and that node must be the
// leader as this agent knows it (from Raft on a voter, from the leader
// cache on a non-voter, from asking the voters when neither names one).
// A demotion, which wipes the Raft log, is carried out only once a Raft
// configuration confirms the removal: this voter's own, or the leader's,
// fetched from the leader over mutual TLS.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
)

// removalCheckTimeout bounds the question to the leader that confirms a
// demotion.
const removalCheckTimeout = 2 * time.Second

// forbidden is a 403 Status.
func forbidden(format string, args ...any) *api.StatusError {
	return api.NewStatusError(http.StatusForbidden, api.StatusReason("Forbidden"), nil, format, args...)
}

// peerNode is the node named by the verified agent certificate r came
// with, "" if none.
func (a *Agent) peerNode(r *http.Request) string {
	if r.TLS == nil {
		return ""
	}
	return peerNodeOf(r.TLS)
}

// roleCaller is the node asking for a role change: in insecure mode the
// one the body names; in secure mode the one the client certificate
// names, which must be the leader as this agent knows it (else 403).
func (a *Agent) roleCaller(ctx context.Context, r *http.Request, body roleChange) (string, *api.StatusError) {
	if a.tls == nil {
		return body.Leader, nil
	}
	caller := a.peerNode(r)
	if caller == "" {
		return "", forbidden("only the leader's agent certificate may change this agent's role; the request came with none")
	}
	lead := a.knownLeader(ctx)
	if lead == "" {
		return "", forbidden("this agent knows no leader; it accepts role changes only from the leader's agent certificate")
	}
	if caller != lead {
		return "", forbidden("only the leader (%s) may change this agent's role, not %s", lead, caller)
	}
	return caller, nil
}

// knownLeader is the leader as this agent knows it; when neither Raft nor
// the leader cache names one, it asks the voters (over mutual TLS).
func (a *Agent) knownLeader(ctx context.Context) string {
	if id := a.leaderID(); id != "" {
		return id
	}
	ctx, cancel := context.WithTimeout(ctx, removalCheckTimeout)
	defer cancel()
	id, _ := a.askLeader(ctx, &http.Client{Timeout: time.Second, Transport: a.peerTr})
	return id
}

// confirmRemoved returns nil once a Raft configuration shows this voter
// removed: its own, or that of leader, asked over the peer transport (and,
// in secure mode, answering with leader's own certificate).
func (a *Agent) confirmRemoved(ctx context.Context, n *consensus.Node, leader string) error {
	self := func(s consensus.Server) bool { return s.ID == a.cfg.NodeName }
	if st := n.Status(); len(st.Voters) > 0 && !slices.ContainsFunc(st.Voters, self) {
		return nil
	}
	addr := a.memberAPI(leader)
	if leader == "" || addr == "" {
		return fmt.Errorf("this agent is still in its own raft configuration and the leader %q is not alive in gossip to confirm the removal", leader)
	}
	ctx, cancel := context.WithTimeout(ctx, removalCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.agentURL(addr, "/v1/cluster/raft"), nil)
	if err != nil {
		return err
	}
	resp, err := a.peers.Do(req)
	if err != nil {
		return fmt.Errorf("asking the leader %s to confirm the removal: %w", leader, err)
	}
	defer resp.Body.Close()
	if a.tls != nil && (resp.TLS == nil || peerNodeOf(resp.TLS) != leader) {
		return fmt.Errorf("the agent at %s did not answer with %s's certificate", addr, leader)
	}
	var st AgentStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return fmt.Errorf("the leader's raft status: %w", err)
	}
	switch {
	case st.ID != leader || st.State != "Leader":
		return fmt.Errorf("%s is not the leader (state %q)", leader, st.State)
	case st.ClusterID != a.ClusterID():
		return fmt.Errorf("%s belongs to cluster %s, not %s", leader, st.ClusterID, a.ClusterID())
	case slices.ContainsFunc(st.Voters, self):
		return fmt.Errorf("the leader's raft configuration still holds this agent")
	}
	return nil
}
