package identity

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// Cluster is what the server needs of the control plane: the record in the
// replicated store, a compare-and-swap update of it through Raft, the KEK
// (nil on an agent that holds none) and whether this agent leads.
type Cluster interface {
	// Record reads the cluster record.
	Record(ctx context.Context) (Record, error)
	// Update replaces old by new if the store still holds old (compare
	// and swap on old.ResourceVersion).
	Update(ctx context.Context, old, new Record) error
	KEK() []byte
	IsLeader() bool
}

// ServerConfig configures NewServer.
type ServerConfig struct {
	// Cluster is the control plane. Required.
	Cluster Cluster
	// CertTTL is the life of the certificates issued; 0 means DefaultCertTTL.
	CertTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PeerOf returns the agent identity a request comes with; nil means
	// the verified TLS client certificate (pki.PeerFromState). The wiring
	// may substitute the identity a trusted forwarding agent vouches for.
	PeerOf func(r *http.Request) (pki.Peer, bool)
	// SourceOf names the address a join comes from, for the failed-join
	// limit and the logs; nil means the host of r.RemoteAddr. Behind the
	// forwarder that is the forwarding agent: the wiring should return the
	// client address the forwarder passes on, so that one client's
	// failures do not throttle every join relayed by that agent.
	SourceOf func(r *http.Request) string
	// Logger receives refused joins; nil means slog.Default().
	Logger *slog.Logger
	// FailureLimit is how many failed joins one source address may make
	// per FailureWindow before it is answered 429 until the window ends;
	// 0 means DefaultFailureLimit.
	FailureLimit int
	// FailureWindow: see FailureLimit; 0 means DefaultFailureWindow.
	FailureWindow time.Duration
	// Members lists the gossip members with the keyrings they advertise,
	// for the gossip key rotation (AdvanceRotation, GET PathGossip); nil
	// means none known, and a rotation then never moves on.
	Members func() []MemberKeys
}

// Defaults of ServerConfig.
const (
	DefaultFailureLimit  = 10
	DefaultFailureWindow = time.Minute
	// maxFailureSources bounds the source addresses the rate limiter
	// remembers.
	maxFailureSources = 4096
)

// Validate reports the first configuration error, naming the field.
func (c ServerConfig) Validate() error {
	switch {
	case c.Cluster == nil:
		return errors.New("ServerConfig.Cluster: must not be nil")
	case c.CertTTL < 0:
		return fmt.Errorf("ServerConfig.CertTTL: %v must not be negative", c.CertTTL)
	case c.CertTTL > 0 && (c.CertTTL < pki.MinCertTTL || c.CertTTL > pki.MaxCertTTL):
		return fmt.Errorf("ServerConfig.CertTTL: %v is outside [%v, %v]", c.CertTTL, pki.MinCertTTL, pki.MaxCertTTL)
	case c.FailureLimit < 0:
		return fmt.Errorf("ServerConfig.FailureLimit: %d must not be negative", c.FailureLimit)
	case c.FailureWindow < 0:
		return fmt.Errorf("ServerConfig.FailureWindow: %v must not be negative", c.FailureWindow)
	}
	return nil
}

// Server serves the join, certificate and token endpoints (see doc.go).
type Server struct {
	cluster Cluster
	ttl     time.Duration
	now     func() time.Time
	peerOf  func(r *http.Request) (pki.Peer, bool)
	srcOf   func(r *http.Request) string
	log     *slog.Logger
	limiter *failureLimiter
	mux     *http.ServeMux
	// membersOf is ServerConfig.Members.
	membersOf func() []MemberKeys
}

// NewServer returns the server; its ServeHTTP answers the paths of this
// package (PathJoinCA, PathJoin, PathCertificate, PathTokens*) and 404s
// any other.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cluster: cfg.Cluster, ttl: cfg.CertTTL, now: cfg.Now, peerOf: cfg.PeerOf, srcOf: cfg.SourceOf, log: cfg.Logger, membersOf: cfg.Members}
	if s.ttl == 0 {
		s.ttl = DefaultCertTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.peerOf == nil {
		s.peerOf = func(r *http.Request) (pki.Peer, bool) { return pki.PeerFromState(r.TLS) }
	}
	if s.srcOf == nil {
		s.srcOf = remoteHost
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	limit, window := cfg.FailureLimit, cfg.FailureWindow
	if limit == 0 {
		limit = DefaultFailureLimit
	}
	if window == 0 {
		window = DefaultFailureWindow
	}
	s.limiter = newFailureLimiter(limit, window)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+PathJoinCA, s.serveCA)
	s.mux.HandleFunc("POST "+PathJoin, s.serveJoin)
	s.mux.HandleFunc("POST "+PathCertificate, s.serveCertificate)
	s.mux.HandleFunc("GET "+PathTokens, s.serveTokens)
	s.mux.HandleFunc("POST "+PathTokensRotate, s.serveRotate)
	s.mux.HandleFunc("POST "+PathTokensAPI, s.serveAPIToken)
	s.mux.HandleFunc("POST "+PathRevoke, s.serveRevoke)
	s.mux.HandleFunc("GET "+PathGossip, s.serveGossipStatus)
	s.mux.HandleFunc("POST "+PathGossipRotate, s.serveGossipRotate)
	s.mux.HandleFunc("POST "+PathGossipKeys, s.serveGossipKeys)
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// Answer as a Status, like the rest of the API.
		switch r.URL.Path {
		case PathJoinCA, PathJoin, PathCertificate, PathTokens, PathTokensRotate, PathTokensAPI, PathRevoke,
			PathGossip, PathGossipRotate, PathGossipKeys:
			writeStatus(w, api.NewStatusError(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, nil, "%s is not allowed on %s", r.Method, r.URL.Path))
		default:
			writeStatus(w, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil, "%s is not an identity endpoint", r.URL.Path))
		}
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Statuses of this package's answers.
func unauthorized(format string, args ...any) *api.StatusError {
	return api.NewStatusError(http.StatusUnauthorized, "Unauthorized", nil, format, args...)
}

func forbidden(format string, args ...any) *api.StatusError {
	return api.NewStatusError(http.StatusForbidden, "Forbidden", nil, format, args...)
}

func tooMany(retry time.Duration) *api.StatusError {
	return api.NewStatusError(http.StatusTooManyRequests, "TooManyRequests", nil,
		"too many failed joins from this address; retry in %v", retry.Round(time.Second))
}

func badRequest(err error) *api.StatusError {
	if errors.Is(err, errTooLarge) {
		return api.NewStatusError(http.StatusRequestEntityTooLarge, api.ReasonRequestEntityTooLarge, nil, "%v", err)
	}
	return api.NewBadRequest("%v", err)
}

// notLeader is the answer of an agent that cannot serve a request that
// needs the CA key or a current read of the record: the forwarder retries
// a 503 on the leader.
func notLeader() *api.StatusError {
	return api.NewServiceUnavailable("this agent is not the leader: the cluster's identity requests are served by the leader; retry shortly")
}

func writeStatus(w http.ResponseWriter, se *api.StatusError) {
	st := se.Status()
	if st.Code == http.StatusTooManyRequests || st.Code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, int(st.Code), st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// opened returns the record, opened, on the leader; a StatusError else.
func (s *Server) opened(ctx context.Context) (Record, *Opened, *api.StatusError) {
	if !s.cluster.IsLeader() || len(s.cluster.KEK()) == 0 {
		return Record{}, nil, notLeader()
	}
	rec, err := s.cluster.Record(ctx)
	if err != nil {
		return Record{}, nil, api.NewServiceUnavailable(fmt.Sprintf("reading the cluster identity: %v", err))
	}
	o, err := rec.Open(s.cluster.KEK())
	if err != nil {
		return Record{}, nil, api.NewInternalError(err)
	}
	return rec, o, nil
}

// serveCA answers GET /v1/join/ca: the CA certificate, and with ?nonce=HEX
// the proof that this agent knows the bootstrap token's secret (only when
// the cluster came from one, and only on the leader).
func (s *Server) serveCA(w http.ResponseWriter, r *http.Request) {
	nonceHex := r.URL.Query().Get("nonce")
	if nonceHex == "" {
		rec, err := s.cluster.Record(r.Context())
		if err != nil {
			writeStatus(w, api.NewServiceUnavailable(fmt.Sprintf("this agent has no cluster identity yet: %v", err)))
			return
		}
		writeJSON(w, http.StatusOK, CAResponse{CA: string(rec.CACert)})
		return
	}
	if len(nonceHex) > maxNonceHexLength {
		writeStatus(w, api.NewBadRequest("nonce: %d characters, more than the %d allowed", len(nonceHex), maxNonceHexLength))
		return
	}
	nonce, err := hex.DecodeString(nonceHex)
	if err != nil || len(nonce) < nonceBytes {
		writeStatus(w, api.NewBadRequest("nonce: must be at least %d bytes in hex", nonceBytes))
		return
	}
	rec, o, se := s.opened(r.Context())
	if se != nil {
		writeStatus(w, se)
		return
	}
	resp := CAResponse{CA: string(rec.CACert)}
	if rec.Bootstrap {
		resp.Proof = pki.BootstrapProof(o.VoterSecret, nonce, o.CA.Cert.Raw)
	}
	writeJSON(w, http.StatusOK, resp)
}

// remoteHost is the host of the request's peer address.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// serveJoin answers POST /v1/join: a certificate for a valid join token.
func (s *Server) serveJoin(w http.ResponseWriter, r *http.Request) {
	src := s.srcOf(r)
	now := s.now()
	if wait, ok := s.limiter.allow(src, now); !ok {
		writeStatus(w, tooMany(wait))
		return
	}
	var req JoinRequest
	if err := decodeBody(r.Body, &req); err != nil {
		s.failedJoin(src, now, "", err)
		writeStatus(w, badRequest(err))
		return
	}
	tok, err := pki.ParseJoinToken(req.Token)
	if err != nil {
		s.failedJoin(src, now, req.Node, err)
		writeStatus(w, unauthorized("token: %v", err))
		return
	}
	csr, ips, se := parseCertRequest(req.Node, req.CSR, req.IPs)
	if se != nil {
		s.failedJoin(src, now, req.Node, se)
		writeStatus(w, se)
		return
	}
	rec, o, se := s.opened(r.Context())
	if se != nil {
		writeStatus(w, se)
		return
	}
	role, ok := matchToken(tok, rec, o)
	if !ok {
		err := errors.New("the join token is not one of this cluster's current tokens (wrong, or rotated)")
		s.failedJoin(src, now, req.Node, err)
		writeStatus(w, unauthorized("%v", err))
		return
	}
	s.issue(w, &rec, o, pki.NodeRequest{Node: req.Node, Role: role, IPs: ips, PublicKey: csr.PublicKey}, now)
	s.log.Info("identity: node joined", "node", req.Node, "role", role, "from", src)
}

// matchToken says which role tok grants: its secret must equal a current
// join secret (constant time) and its pin, if any, the CA's fingerprint. A
// bootstrap token (no pin) is valid only as long as the voter secret is
// still the one the cluster was bootstrapped with.
func matchToken(tok pki.JoinToken, rec Record, o *Opened) (pki.Role, bool) {
	if tok.Fingerprint == "" && !rec.Bootstrap {
		return "", false
	}
	if tok.Fingerprint != "" && subtle.ConstantTimeCompare([]byte(tok.Fingerprint), []byte(o.CA.Fingerprint())) != 1 {
		return "", false
	}
	voter := subtle.ConstantTimeCompare([]byte(tok.Secret), []byte(o.VoterSecret)) == 1
	worker := subtle.ConstantTimeCompare([]byte(tok.Secret), []byte(o.WorkerSecret)) == 1
	switch {
	case voter:
		return pki.RoleVoter, true
	case worker && tok.Fingerprint != "":
		return pki.RoleWorker, true
	}
	return "", false
}

func (s *Server) failedJoin(src string, now time.Time, node string, err error) {
	n := s.limiter.fail(src, now)
	s.log.Warn("identity: refused a join", "from", src, "node", truncate(node), "failures", n, "err", err)
}

// parseCertRequest validates the parts of a certificate request.
func parseCertRequest(node, csrPEM string, ipStrs []string) (csr *x509.CertificateRequest, ips []net.IP, se *api.StatusError) {
	if err := validNodeName(node); err != nil {
		return nil, nil, api.NewBadRequest("node: %v", err)
	}
	ips, err := parseIPs("ips", ipStrs)
	if err != nil {
		return nil, nil, api.NewBadRequest("%v", err)
	}
	c, err := pki.ParseCSR([]byte(csrPEM))
	if err != nil {
		return nil, nil, api.NewBadRequest("csr: %v", err)
	}
	if c.Subject.CommonName != node {
		return nil, nil, api.NewBadRequest("csr: names node %q, the request %q", truncate(c.Subject.CommonName), node)
	}
	return c, ips, nil
}

// issue signs a certificate and writes the JoinResponse.
func (s *Server) issue(w http.ResponseWriter, rec *Record, o *Opened, req pki.NodeRequest, now time.Time) {
	cert, err := o.CA.Issue(req, rec.issueTime(req.Node, now), s.ttl)
	if err != nil {
		writeStatus(w, api.NewBadRequest("csr: %v", err))
		return
	}
	resp := JoinResponse{CA: string(o.CA.CertPEM), Cert: string(cert), GossipKey: o.GossipKey, GossipKeys: o.GossipKeys}
	if req.Role == pki.RoleVoter {
		resp.KEK = s.cluster.KEK()
	}
	writeJSON(w, http.StatusOK, resp)
}
