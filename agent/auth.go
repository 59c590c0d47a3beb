package agent

// The API's authentication (issue 10): NewAuthHandler in front of
// everything the agent serves, with an Authenticator on the cluster CA:
// API bearer tokens signed by the CA key, agent certificates chained to
// the CA. In insecure mode there is none and every request passes.

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// agentAuth is the agent's apiserver.Authenticator.
type agentAuth struct{ a *Agent }

var _ apiserver.Authenticator = agentAuth{}

// Token verifies an API token's signature by the cluster CA and its
// validity now.
func (x agentAuth) Token(raw string) (apiserver.Identity, error) {
	c, err := pki.VerifyToken(x.a.tls.CACert(), raw, time.Now())
	if err != nil {
		return apiserver.Identity{}, err
	}
	return apiserver.Identity{User: c.Name, Role: c.Role, Namespaces: c.Namespaces}, nil
}

// Peer is the agent of a client certificate the listener verified against
// the cluster CA.
func (x agentAuth) Peer(cs *tls.ConnectionState) (apiserver.Identity, bool) {
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
		cfg.Auth = agentAuth{a}
	}
	return apiserver.NewAuthHandler(h, cfg)
}
