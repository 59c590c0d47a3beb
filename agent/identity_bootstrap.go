package agent

// Forming a cluster with a bootstrap token (issue 10): every initial agent
// is started with --bootstrap-expect N and the same token from `shoal
// token generate`. Before the agent serves anything, it gossips with a key
// derived from the token (pki.GossipKeyFromSecret), so only holders of the
// token see each other; the lowest-named of the N makes the cluster
// identity (its voter join secret is the token's), and the others, once
// gossip shows a member of the new cluster, fetch their certificate from
// it with the token (the member proves it knows the secret). Each then
// stops this first gossip and starts as usual with its identity.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/pki"
	"github.com/shoal-dev/shoal/consensus/voters"
)

// Bootstrap-token limits: how long the initial agents may take to find
// each other, and how often the decision is made again.
const (
	DefaultBootstrapTokenTimeout = 10 * time.Minute
	bootstrapTokenPoll           = 200 * time.Millisecond
)

// bootstrapWithToken runs the first gossip of an agent started with a
// bootstrap token and no identity. It returns the cluster id when this
// agent made the cluster identity (it then bootstraps Raft), "" when it
// joined; either way the identity is saved in the data dir.
func (a *Agent) bootstrapWithToken(tok pki.JoinToken) (string, error) {
	if a.cfg.BootstrapExpect < 1 {
		return "", errors.New("token: a bootstrap token goes with --bootstrap-expect N (N at least 1): the agents wait until N of them see each other")
	}
	if a.gossipKey == nil {
		a.gossipKey = pki.GossipKeyFromSecret(tok.Secret)
	}
	timeout := a.cfg.JoinTimeout
	if timeout == 0 {
		timeout = DefaultBootstrapTokenTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	gc := a.gossipConfig()
	gc.CheckCluster = nil // nobody has an identity yet; the key keeps strangers out
	g, err := gossip.New(gc, gossip.Meta{Version: a.cfg.Version})
	if err != nil {
		return "", fmt.Errorf("bind: %w", err)
	}
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		if err := g.Join(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("bootstrap token: gossip join", "err", err)
		}
	}()
	made := false
	defer func() {
		cancel()
		<-joined
		// The agent that made the identity does not leave: the others
		// must keep seeing it alive and in no cluster (so none of them
		// counts enough agents without it to make a second identity)
		// until its own gossip, on the same address and name, takes over
		// and advertises the cluster.
		if !made {
			if err := g.Leave(time.Second); err != nil {
				a.log.Debug("bootstrap token: leaving the first gossip", "err", err)
			}
		}
		g.Shutdown()
	}()
	a.log.Info("bootstrap token: waiting for the initial agents", "expect", a.cfg.BootstrapExpect)
	for {
		var cands []voters.Candidate
		var cluster []string
		for _, m := range g.Members() {
			if m.MetaErr != "" {
				continue
			}
			alive := m.State == gossip.Alive && !m.Meta.Leaving
			cands = append(cands, voters.Candidate{ID: m.Name, Alive: alive, ClusterID: m.Meta.ClusterID})
			if alive && m.Meta.ClusterID != "" && m.Meta.APIAddr != "" {
				cluster = append(cluster, m.Meta.APIAddr)
			}
		}
		if len(cluster) > 0 {
			// The cluster exists: ask its members for a certificate.
			addrs := append(cluster, a.cfg.JoinAPI...)
			a.log.Info("bootstrap token: the cluster exists; asking for a certificate", "from", addrs)
			l, err := identity.Join(ctx, addrs, tok, a.cfg.NodeName, a.cfg.certIPs())
			if err != nil {
				return "", fmt.Errorf("token: joining with the bootstrap token: %w", err)
			}
			if err := l.Save(a.cfg.DataDir); err != nil {
				return "", fmt.Errorf("saving the identity: %w", err)
			}
			return "", nil
		}
		// As the plain bootstrap: nobody forms a cluster while a --join
		// address is unanswered (agents started together that see only
		// part of each other would make two cluster identities).
		d := voters.DecideBootstrapFor(voters.BootstrapInput{Self: a.cfg.NodeName, Expect: a.cfg.BootstrapExpect, Candidates: cands,
			Unreached: a.unreachedJoinOf(ctx, g)})
		if d.Action == voters.Bootstrap {
			made = true
			cid := newClusterID()
			a.log.Info("bootstrap token: making the cluster identity", "cluster", cid, "reason", d.Reason)
			l, rec, _, err := identity.Bootstrap(cid, &tok, a.cfg.NodeName, a.cfg.certIPs(), time.Now())
			if err != nil {
				return "", fmt.Errorf("bootstrap: making the cluster identity: %w", err)
			}
			// The record first: it holds the only copy of the sealed CA key, and
			// an identity on disk without it could never be completed.
			if err := identity.SavePendingRecord(a.cfg.DataDir, rec); err != nil {
				return "", fmt.Errorf("bootstrap: saving the cluster record: %w", err)
			}
			if err := l.Save(a.cfg.DataDir); err != nil {
				return "", fmt.Errorf("bootstrap: saving the cluster identity: %w", err)
			}
			a.pendingRecord = &rec
			if err := a.announceBootstrap(rec, l); err != nil {
				return "", err
			}
			return cid, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("token: the initial agents did not find each other within %v (%s)", timeout, d.Reason)
		case <-time.After(bootstrapTokenPoll):
		}
	}
}
