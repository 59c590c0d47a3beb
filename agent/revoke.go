package agent

// Revoked nodes (POST /v1/cluster/revoke, `shoal revoke NODE`): the
// cluster record names them; every voter refuses their certificates in
// the TLS handshake of every link (API, forwarding, watches, Raft) from
// the moment its replica holds the revocation. Non-voters hold no replica
// and do not check; a revoked node's certificate also expires within its
// lifetime (24 h by default) and cannot be renewed.

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// revocations is the snapshot of the record's revoked nodes that TLS
// handshakes read (they must not block on the store or the agent's lock).
type revocations struct {
	rv  string
	rec atomic.Pointer[identity.Record]
}

// check is pki.Holder's peer check.
func (r *revocations) check(p pki.Peer) error {
	rec := r.rec.Load()
	if rec != nil && rec.Revoked(p) {
		return fmt.Errorf("node %q was revoked at %s", p.Node, rec.RevokedNodes[p.Node].Format(time.RFC3339))
	}
	return nil
}

// watchRevocations keeps a.revoked current from the local replica (empty
// on a non-voter) until ctx ends.
func (a *Agent) watchRevocations(ctx context.Context) {
	tick := time.NewTicker(revocationPoll)
	defer tick.Stop()
	for {
		a.refreshRevocations()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// revocationPoll is how soon a voter's handshakes see a revocation its
// replica applied.
const revocationPoll = 500 * time.Millisecond

func (a *Agent) refreshRevocations() {
	obj, err := a.Store().Get(recordKey)
	if err != nil {
		return
	}
	s, ok := obj.(*api.Secret)
	if !ok || s.ResourceVersion == a.revoked.rv {
		return
	}
	rec, err := identity.DecodeRecord(s)
	if err != nil {
		a.log.Warn("revocations: the cluster record cannot be read", "err", err)
		return
	}
	a.revoked.rv = s.ResourceVersion
	a.revoked.rec.Store(&rec)
}
