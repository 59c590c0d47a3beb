package agent

// The API's authentication (issue 10): NewAuthHandler in front of
// everything the agent serves, with an Authenticator on the cluster CA:
// API bearer tokens signed by the CA key, agent certificates chained to
// the CA. In insecure mode there is none and every request passes.

import (
	"crypto/sha256"
	"crypto/tls"
	"net/http"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// maxVerifiedTokens bounds the cache of verified API tokens; when it is
// full it starts over.
const maxVerifiedTokens = 4096

// agentAuth is the agent's apiserver.Authenticator.
type agentAuth struct {
	a *Agent
	// verified caches tokens whose signature checked out, by their hash:
	// a token is immutable, so only its expiry needs checking again. This
	// spares a signature verification per request (two for a forwarded
	// write) on the write path.
	mu       sync.Mutex
	verified map[[32]byte]pki.Claims
}

var _ apiserver.Authenticator = (*agentAuth)(nil)

// Token verifies an API token's signature by the cluster CA and its
// validity now.
func (x *agentAuth) Token(raw string) (apiserver.Identity, error) {
	now := time.Now()
	sum := sha256.Sum256([]byte(raw))
	x.mu.Lock()
	c, ok := x.verified[sum]
	x.mu.Unlock()
	if !ok || !now.Before(c.ExpiresAt) {
		var err error
		if c, err = pki.VerifyToken(x.a.tls.CACert(), raw, now); err != nil {
			return apiserver.Identity{}, err
		}
		x.mu.Lock()
		if len(x.verified) >= maxVerifiedTokens {
			clear(x.verified)
		}
		x.verified[sum] = c
		x.mu.Unlock()
	}
	return apiserver.Identity{User: c.Name, Role: c.Role, Namespaces: c.Namespaces}, nil
}

// Peer is the agent of a client certificate the listener verified against
// the cluster CA.
func (x *agentAuth) Peer(cs *tls.ConnectionState) (apiserver.Identity, bool) {
	p, ok := pki.PeerFromState(cs)
	if !ok {
		return apiserver.Identity{}, false
	}
	return apiserver.Identity{Node: p.Node, Voter: p.Role == pki.RoleVoter}, true
}

// withAuth puts authentication and authorisation in front of h; insecure
// agents let everything through as an admin.
func (a *Agent) withAuth(h http.Handler) http.Handler {
	cfg := apiserver.AuthConfig{Logger: a.log}
	if a.tls != nil {
		cfg.Auth = &agentAuth{a: a, verified: map[[32]byte]pki.Claims{}}
	}
	return apiserver.NewAuthHandler(h, cfg)
}
