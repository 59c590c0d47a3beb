package apiserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// This file authenticates API requests (NewAuthHandler). What each identity
// may do is decided in auth_rules.go (Authorize), from what the request
// names (auth_attrs.go); the checks that need the stored object, a pod's
// node for instance, are in auth_node.go.

// The roles an API bearer token may carry (consensus/pki Claims.Role).
const (
	RoleAdmin    = "admin"
	RoleReadOnly = "read-only"
	RoleWrite    = "write"
)

// Reasons of the 401 and 403 Status objects, spelled as Kubernetes spells
// them.
const (
	ReasonUnauthorized api.StatusReason = "Unauthorized"
	ReasonForbidden    api.StatusReason = "Forbidden"
)

// Identity is who sent a request: an agent, by its certificate (Node set),
// or a user, by an API bearer token (User and Role set).
type Identity struct {
	// Node is the agent's node name, from its certificate; "" for a user.
	Node string
	// Voter reports whether the agent's certificate may hold a Raft vote.
	Voter bool
	// User names the bearer token's holder (its Claims.Name).
	User string
	// Role is the token's role: RoleAdmin, RoleReadOnly or RoleWrite.
	Role string
	// Namespaces are where a RoleWrite token may write.
	Namespaces []string
}

// String names the identity in logs and error messages.
func (id Identity) String() string {
	if id.Node != "" {
		return fmt.Sprintf("node %q", id.Node)
	}
	return fmt.Sprintf("user %q (role %s)", id.User, id.Role)
}

type identityKey struct{}

// WithIdentity returns ctx carrying id, as NewAuthHandler passes it on.
// The agent uses it for requests it serves to itself in-process; tests use
// it to act as a given identity.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity NewAuthHandler authenticated, if any.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Authenticator turns credentials into identities; the agent builds one on
// consensus/pki (tokens verified against the cluster CA, certificates
// chained to it).
type Authenticator interface {
	// Token checks an API bearer token (without the "Bearer " prefix) and
	// returns its holder; an invalid or expired token is an error, whose
	// text must not contain the token.
	Token(raw string) (Identity, error)
	// Peer returns the agent identity of a TLS connection's verified
	// client certificate, or false when the client presented none or one
	// that is not an agent's.
	Peer(cs *tls.ConnectionState) (Identity, bool)
}

// DefaultPublicPaths need no credentials: health, version and joining (an
// agent without a certificate asks for one with a join token).
var DefaultPublicPaths = []string{"/healthz", "/version", "/v1/join"}

// ShoalHeaderPrefix starts the headers agents send one another
// (ForwardedHeader among them); only agents may send them.
const ShoalHeaderPrefix = "X-Shoal-"

// authRealm is the realm of WWW-Authenticate challenges.
const authRealm = "shoal"

// AuthConfig configures NewAuthHandler.
type AuthConfig struct {
	// Auth checks credentials. nil switches authentication and
	// authorisation off (the agent's --insecure mode, loopback only):
	// every request passes as an admin, and X-Shoal-* headers are kept.
	Auth Authenticator
	// Logger receives refused requests at debug level; nil means
	// slog.Default().
	Logger *slog.Logger
	// Public are path prefixes served without credentials, each matched
	// as a whole path or a path followed by "/"; nil means
	// DefaultPublicPaths (an empty, non-nil slice makes nothing public).
	Public []string
}

// insecureIdentity is what every request is when no Authenticator is set.
var insecureIdentity = Identity{User: "insecure", Role: RoleAdmin}

// NewAuthHandler authenticates and authorises every request before next:
//
//   - X-Shoal-* headers are deleted unless the TLS client presented an
//     agent certificate: trust in them comes from the connection, so an
//     agent that forwards a user's request (the user's bearer token and the
//     agent's X-Shoal-Forwarded) keeps them;
//   - public paths (AuthConfig.Public) pass without credentials;
//   - the identity is the bearer token's (Authorization: Bearer) when there
//     is one, and a bad or expired token is refused even if an agent
//     certificate was presented; else the agent certificate's; else the
//     request is refused with 401 and a WWW-Authenticate challenge;
//   - Authorize decides from the request's attributes; a refusal is 403.
//
// Both refusals are Kubernetes Status objects (reasons Unauthorized and
// Forbidden). next finds the identity with IdentityFrom; the Server uses it
// for the checks that need the stored object (Kubernetes' NodeRestriction).
//
// Without an Authenticator (cfg.Auth nil, the agent's --insecure mode)
// everything passes, as an admin: that mode is for loopback only.
func NewAuthHandler(next http.Handler, cfg AuthConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Public == nil {
		cfg.Public = DefaultPublicPaths
	}
	return &authHandler{next: next, cfg: cfg}
}

type authHandler struct {
	next http.Handler
	cfg  AuthConfig
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Auth == nil {
		h.next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), insecureIdentity)))
		return
	}
	var peer Identity
	agent := false
	if r.TLS != nil {
		peer, agent = h.cfg.Auth.Peer(r.TLS)
		agent = agent && peer.Node != ""
	}
	if !agent {
		stripShoalHeaders(r.Header)
	}
	if isCleanPath(r.URL) && isPublic(r.URL.Path, h.cfg.Public) {
		if agent {
			r = r.WithContext(WithIdentity(r.Context(), peer))
		}
		h.next.ServeHTTP(w, r)
		return
	}
	attrs := RequestAttributes(r)
	id, err := h.authenticate(r, peer, agent)
	if err != nil {
		h.cfg.Logger.Debug("api: unauthenticated request", "method", r.Method, "path", r.URL.Path, "err", err)
		challenge := `Bearer realm="` + authRealm + `"`
		if !errors.Is(err, errNoCredentials) {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeStatus(w, api.NewStatusError(http.StatusUnauthorized, ReasonUnauthorized, nil,
			"Unauthorized: an unauthenticated request cannot %s: %v", attrs.Describe(), err))
		return
	}
	if err := Authorize(id, attrs); err != nil {
		h.cfg.Logger.Debug("api: forbidden request", "method", r.Method, "path", r.URL.Path, "who", id.String())
		var se *api.StatusError
		if !errors.As(err, &se) {
			se = forbidden(id, attrs, err.Error())
		}
		writeStatus(w, se)
		return
	}
	h.next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
}

// errNoCredentials: the request carried neither a token nor an agent
// certificate.
var errNoCredentials = errors.New("no credentials: send an API token (Authorization: Bearer TOKEN) or connect with an agent certificate")

// authenticate finds the request's identity: the bearer token's, else the
// agent certificate's.
func (h *authHandler) authenticate(r *http.Request, peer Identity, agent bool) (Identity, error) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		if agent {
			return peer, nil
		}
		return Identity{}, errNoCredentials
	}
	scheme, raw, ok := strings.Cut(authz, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return Identity{}, errors.New("the Authorization header must be \"Bearer TOKEN\"")
	}
	id, err := h.cfg.Auth.Token(raw)
	if err != nil {
		return Identity{}, fmt.Errorf("invalid API token: %w", err)
	}
	// A token names a user; only a certificate makes an agent.
	id.Node, id.Voter = "", false
	return id, nil
}

// stripShoalHeaders deletes every X-Shoal-* header.
func stripShoalHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len(ShoalHeaderPrefix) && strings.EqualFold(k[:len(ShoalHeaderPrefix)], ShoalHeaderPrefix) {
			delete(h, k)
		}
	}
}

// isPublic reports whether p is one of the public paths or under one.
func isPublic(p string, public []string) bool {
	for _, pre := range public {
		if pre == "" {
			continue
		}
		if p == pre || strings.HasPrefix(p, strings.TrimSuffix(pre, "/")+"/") {
			return true
		}
	}
	return false
}

// forbidden builds the 403 for id and the request's attributes.
func forbidden(id Identity, a Attributes, why string) *api.StatusError {
	var d *api.StatusDetails
	if a.ResourceRequest {
		d = &api.StatusDetails{Name: a.Name, Group: a.Group, Kind: a.Resource}
	}
	msg := fmt.Sprintf("Forbidden: %s cannot %s", id, a.Describe())
	if why != "" {
		msg += ": " + why
	}
	return api.NewStatusError(http.StatusForbidden, ReasonForbidden, d, "%s", msg)
}

// writeStatus sends a Status outside a Server (the middleware runs before
// it).
func writeStatus(w http.ResponseWriter, se *api.StatusError) {
	st := se.Status()
	b, err := json.Marshal(st)
	if err != nil {
		http.Error(w, st.Message, int(st.Code))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	w.Write(append(b, '\n'))
}
