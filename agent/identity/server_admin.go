package identity

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// serveCertificate answers POST /v1/cluster/certificate: a new certificate
// for an agent that presents its current one, for the same node name and
// role, unless the node was revoked.
func (s *Server) serveCertificate(w http.ResponseWriter, r *http.Request) {
	peer, ok := s.peerOf(r)
	if !ok {
		writeStatus(w, unauthorized("a certificate renewal needs the agent's current certificate (TLS client certificate)"))
		return
	}
	var req CertificateRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeStatus(w, badRequest(err))
		return
	}
	if req.Node != peer.Node {
		writeStatus(w, forbidden("node: %q, but the certificate presented is node %q's: an agent renews only its own", truncate(req.Node), peer.Node))
		return
	}
	csr, ips, se := parseCertRequest(req.Node, req.CSR, req.IPs)
	if se != nil {
		writeStatus(w, se)
		return
	}
	rec, o, se := s.opened(r.Context())
	if se != nil {
		writeStatus(w, se)
		return
	}
	if rec.Revoked(peer) {
		s.log.Warn("identity: refused the renewal of a revoked node", "node", peer.Node, "serial", peer.Serial)
		writeStatus(w, forbidden("node %q was revoked at %s: join again with a token", peer.Node, rec.RevokedNodes[peer.Node].Format(time.RFC3339)))
		return
	}
	s.issue(w, &rec, o, pki.NodeRequest{Node: peer.Node, Role: peer.Role, IPs: ips, PublicKey: csr.PublicKey}, s.now())
}

// admin checks the request's bearer token: signed by the cluster's CA,
// unexpired, with role admin.
func (s *Server) admin(r *http.Request, rec Record) *api.StatusError {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return unauthorized("this endpoint needs an admin API token (Authorization: Bearer ...)")
	}
	caCert, err := pki.ParseCertPEM(rec.CACert)
	if err != nil {
		return api.NewInternalError(err)
	}
	c, err := pki.VerifyToken(caCert, tok, s.now())
	if err != nil {
		return unauthorized("API token: %v", err)
	}
	if c.Role != RoleAdmin {
		return forbidden("API token %q has role %q; this endpoint needs %q", c.Name, c.Role, RoleAdmin)
	}
	return nil
}

// adminRequest opens the record and checks the admin token; with body
// non-nil it also decodes the request body into it. On false the answer
// was written.
func (s *Server) adminRequest(w http.ResponseWriter, r *http.Request, body any) (*Opened, bool) {
	rec, o, se := s.opened(r.Context())
	if se == nil {
		se = s.admin(r, rec)
	}
	if se != nil {
		writeStatus(w, se)
		return nil, false
	}
	if body != nil {
		if err := decodeBody(r.Body, body); err != nil {
			writeStatus(w, badRequest(err))
			return nil, false
		}
	}
	return o, true
}

func tokensOf(o *Opened) TokensResponse {
	v, wk := o.Tokens()
	return TokensResponse{Voter: v.String(), Worker: wk.String(), CAFingerprint: o.CA.Fingerprint()}
}

// serveTokens answers GET /v1/cluster/tokens.
func (s *Server) serveTokens(w http.ResponseWriter, r *http.Request) {
	o, ok := s.adminRequest(w, r, nil)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, tokensOf(o))
}

// serveRotate answers POST /v1/cluster/tokens/rotate: a new secret for
// one role, written through Raft before the answer, so the old token is
// refused from then on. Agents already joined keep their certificates.
func (s *Server) serveRotate(w http.ResponseWriter, r *http.Request) {
	var req RotateRequest
	if _, ok := s.adminRequest(w, r, &req); !ok {
		return
	}
	role := pki.Role(req.Role)
	if role != pki.RoleVoter && role != pki.RoleWorker {
		writeStatus(w, api.NewBadRequest("role: %q is neither %q nor %q", truncate(req.Role), pki.RoleVoter, pki.RoleWorker))
		return
	}
	resp, err := s.rotate(r, role)
	if err != nil {
		writeStatus(w, api.NewServiceUnavailable(fmt.Sprintf("rotating the %s token: %v; retry", role, err)))
		return
	}
	s.log.Info("identity: join token rotated", "role", role)
	writeJSON(w, http.StatusOK, resp)
}

// maxRotateAttempts bounds how often a rotation re-reads the record after
// losing a compare-and-swap to another change (e.g. the other role's
// rotation at the same time).
const maxRotateAttempts = 8

// rotate writes a new secret for role into the record, through a
// compare-and-swap retried on a fresh read when the record changed.
func (s *Server) rotate(r *http.Request, role pki.Role) (TokensResponse, error) {
	var err error
	for range maxRotateAttempts {
		rec, o, se := s.opened(r.Context())
		if se != nil {
			return TokensResponse{}, se
		}
		tok, terr := pki.NewJoinToken(o.CA.Fingerprint())
		if terr != nil {
			return TokensResponse{}, terr
		}
		next := rec.Clone()
		if err := next.SealSecret(s.cluster.KEK(), role, tok.Secret); err != nil {
			return TokensResponse{}, err
		}
		if role == pki.RoleVoter {
			o.VoterSecret = tok.Secret
			next.Bootstrap = false // the bootstrap token was the old voter secret
		} else {
			o.WorkerSecret = tok.Secret
		}
		if err = s.cluster.Update(r.Context(), rec, next); err == nil {
			return tokensOf(o), nil
		}
		if r.Context().Err() != nil {
			break
		}
	}
	return TokensResponse{}, err
}

// serveAPIToken answers POST /v1/cluster/tokens/api: a new API bearer token.
func (s *Server) serveAPIToken(w http.ResponseWriter, r *http.Request) {
	var req APITokenRequest
	o, ok := s.adminRequest(w, r, &req)
	if !ok {
		return
	}
	now := s.now()
	c, err := claimsOf(req, now, o.CA.Cert.NotAfter)
	if err != nil {
		writeStatus(w, api.NewBadRequest("%v", err))
		return
	}
	tok, err := o.CA.SignToken(c)
	if err != nil {
		writeStatus(w, api.NewInternalError(err))
		return
	}
	s.log.Info("identity: API token issued", "name", c.Name, "role", c.Role, "id", c.ID)
	writeJSON(w, http.StatusOK, APITokenResponse{Token: tok})
}

// claimsOf validates an API token request. A token without a ttl, or with
// one past caNotAfter, expires with the CA.
func claimsOf(req APITokenRequest, now, caNotAfter time.Time) (pki.Claims, error) {
	if req.Name == "" {
		return pki.Claims{}, errors.New("name: must not be empty")
	}
	if len(req.Name) > MaxTokenNameLength {
		return pki.Claims{}, fmt.Errorf("name: %d characters, more than the %d allowed", len(req.Name), MaxTokenNameLength)
	}
	for i, c := range req.Name {
		if c < 0x21 || c > 0x7e {
			return pki.Claims{}, fmt.Errorf("name: character %d is not printable ASCII (no spaces)", i)
		}
	}
	switch req.Role {
	case RoleAdmin:
		if len(req.Namespaces) > 0 {
			return pki.Claims{}, errors.New("namespaces: an admin token is cluster-wide; leave namespaces empty")
		}
	case RoleWrite:
		if len(req.Namespaces) == 0 {
			return pki.Claims{}, errors.New("namespaces: a write token needs at least one namespace")
		}
	case RoleReadOnly:
	default:
		return pki.Claims{}, fmt.Errorf("role: %q is none of %q, %q, %q", truncate(req.Role), RoleAdmin, RoleReadOnly, RoleWrite)
	}
	if len(req.Namespaces) > MaxNamespaces {
		return pki.Claims{}, fmt.Errorf("namespaces: %d, more than the %d allowed", len(req.Namespaces), MaxNamespaces)
	}
	for i, ns := range req.Namespaces {
		if err := validNodeName(ns); err != nil {
			return pki.Claims{}, fmt.Errorf("namespaces[%d]: %q is not a namespace name (a DNS-1123 label)", i, truncate(ns))
		}
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return pki.Claims{}, err
	}
	c := pki.Claims{ID: newID(), Name: req.Name, Role: req.Role, Namespaces: req.Namespaces, IssuedAt: now, ExpiresAt: caNotAfter}
	if ttl > 0 && now.Add(ttl).Before(caNotAfter) {
		c.ExpiresAt = now.Add(ttl)
	}
	return c, nil
}

// failureLimiter counts failed joins per source address in fixed windows.
type failureLimiter struct {
	limit  int
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*failures
}

type failures struct {
	start time.Time
	n     int
}

func newFailureLimiter(limit int, window time.Duration) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, seen: map[string]*failures{}}
}

// allow reports whether src may try a join now, and if not how long it waits.
func (l *failureLimiter) allow(src string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.seen[src]
	if f == nil || now.Sub(f.start) >= l.window {
		return 0, true
	}
	if f.n >= l.limit {
		return f.start.Add(l.window).Sub(now), false
	}
	return 0, true
}

// fail counts one failure of src and returns its count in the window.
func (l *failureLimiter) fail(src string, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.seen[src]
	if f == nil || now.Sub(f.start) >= l.window {
		if f == nil && len(l.seen) >= maxFailureSources {
			for k, v := range l.seen {
				if now.Sub(v.start) >= l.window {
					delete(l.seen, k)
				}
			}
			if len(l.seen) >= maxFailureSources {
				clear(l.seen) // a flood from many sources: forget, rather than grow
			}
		}
		f = &failures{start: now}
		l.seen[src] = f
	}
	f.n++
	return f.n
}
