package agent

// Every link between agents, and the API itself, runs over TLS built from
// one source (issue 10): the API listener (client certificates optional, so
// that bearer tokens work, verified when given), the agent's own client to
// its API, the calls to other agents (promote, demote, replica, leader
// probes), the forwarder, follower watches, log and exec routing, and Raft
// (mutual, voter certificates only). In insecure mode (loopback only) the
// source is nil and every link is plain http.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// TLSSource gives the agent its TLS configurations. A *pki.Holder satisfies
// it; its configurations pick the current certificate at each handshake, so
// a renewed certificate is used without rebuilding them.
type TLSSource interface {
	// ServerConfig is the API listener's: client certificates are
	// verified against the cluster CA when given (required if asked).
	ServerConfig(requireClientCert bool) *tls.Config
	// ClientConfig presents this agent's certificate and verifies that the
	// server's chains to the cluster CA.
	ClientConfig() *tls.Config
	// RaftConfig is used at both ends of Raft connections: mutual, and
	// the peer's certificate must be allowed to vote.
	RaftConfig() *tls.Config
	// CACert is the cluster CA: API tokens are verified against it.
	CACert() *x509.Certificate
	// Peer is this agent's own identity (its node certificate's).
	Peer() pki.Peer
}

// Peer transport limits: agent-to-agent calls never go through an HTTP
// proxy, and a handshake or a connection attempt that hangs is cut.
const (
	peerDialTimeout      = 5 * time.Second
	peerHandshakeTimeout = 5 * time.Second
	peerIdleConns        = 32
)

// newPeerTransport is the transport of every request this agent sends to an
// agent (itself included): TLS with src's client configuration, or plain
// http when src is nil.
func newPeerTransport(src TLSSource) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = (&net.Dialer{Timeout: peerDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = peerHandshakeTimeout
	tr.MaxIdleConnsPerHost = peerIdleConns
	tr.ExpectContinueTimeout = 5 * time.Second
	if src != nil {
		tr.TLSClientConfig = src.ClientConfig()
		// Connections are http/1.1: the forwarder and exec rely on
		// one request per connection being cheap to cut.
		tr.ForceAttemptHTTP2 = false
	}
	return tr
}

// scheme is the URL scheme of every agent's API: https unless insecure.
func (a *Agent) scheme() string {
	if a.tls == nil {
		return "http"
	}
	return "https"
}

// agentURL is the URL of path on the agent whose API is at hostport (as
// gossip metadata and Node objects hold it: host:port, no scheme).
func (a *Agent) agentURL(hostport, path string) string {
	return a.scheme() + "://" + hostport + path
}

// apiClient is an API client for the agent at hostport (or several,
// comma-separated host:port) over the peer transport; timeout bounds each
// request that is not a watch (0: none).
func (a *Agent) apiClient(hostport string, timeout time.Duration) *api.Client {
	return a.apiClientVia(a.peerTr, hostport, timeout)
}

// apiClientVia is apiClient over the transport rt.
func (a *Agent) apiClientVia(rt http.RoundTripper, hostport string, timeout time.Duration) *api.Client {
	return api.NewClient(a.agentURL(hostport, ""), api.WithHTTPClient(&http.Client{Transport: rt}),
		api.WithRequestTimeout(timeout))
}

// setupTLS picks the agent's TLS source (none when insecure, Config.TLS
// when given, else its identity: see identity.go) and builds the transport
// of its requests to agents on it.
func (a *Agent) setupTLS(bootstrap, hasState bool, newClusterID string) error {
	var src TLSSource
	a.gossipKey = a.cfg.GossipKey
	switch {
	case a.cfg.Insecure:
	case a.cfg.TLS != nil:
		src = a.cfg.TLS
	default:
		h, err := a.loadOrMakeIdentity(bootstrap, hasState, newClusterID)
		if err != nil {
			return err
		}
		h.SetPeerCheck(a.revoked.check)
		src = h
	}
	a.tls = src
	a.peerTr = newPeerTransport(src)
	a.peers = &http.Client{Timeout: 30 * time.Second, Transport: a.peerTr}
	return nil
}

var errNoCredentials = errors.New("no cluster identity in the data dir: pass --token TOKEN (from `shoal token show` on a member) to join a cluster, --bootstrap (or -dev) to form a new one, or --insecure on an agent bound only to loopback")

// followClient is follow.Config.NewClient: a client of the agent at
// endpoint (host:port) over the peer transport.
func (a *Agent) followClient(endpoint string) *api.Client {
	return a.apiClient(endpoint, api.DefaultClientTimeout)
}

// peerNodeOf is the node named by the verified shoal certificate of a TLS
// connection's peer, "" if it presented none.
func peerNodeOf(cs *tls.ConnectionState) string {
	p, ok := pki.PeerFromState(cs)
	if !ok {
		return ""
	}
	return p.Node
}

// mayVote says whether this agent's certificate may hold a Raft vote
// (always, in insecure mode).
func (a *Agent) mayVote() bool {
	return a.tls == nil || a.tls.Peer().Role == pki.RoleVoter
}
