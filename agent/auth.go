package agent

// The API's authentication (issue 10): NewAuthHandler in front of
// everything the agent serves, with an Authenticator on the cluster CA:
// API bearer tokens signed by the CA key, agent certificates chained to
// the CA. In insecure mode there is none and every request passes.

import (
	"crypto/tls"
	"errors"
	"net/http"

	"github.com/shoal-dev/shoal/agent/apiserver"
)

// agentAuth is the agent's apiserver.Authenticator.
type agentAuth struct{ a *Agent }

var _ apiserver.Authenticator = agentAuth{}

func (x agentAuth) Token(raw string) (apiserver.Identity, error) {
	return apiserver.Identity{}, errors.New("API tokens are not accepted yet")
}

func (x agentAuth) Peer(cs *tls.ConnectionState) (apiserver.Identity, bool) {
	node := peerNodeOf(cs)
	if node == "" {
		return apiserver.Identity{}, false
	}
	return apiserver.Identity{Node: node, Voter: true}, true
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
