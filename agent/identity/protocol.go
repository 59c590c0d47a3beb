package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// Paths of the endpoints this package serves.
const (
	PathJoinCA          = "/v1/join/ca"
	PathJoin            = "/v1/join"
	PathCertificate     = "/v1/cluster/certificate"
	PathTokens          = "/v1/cluster/tokens"
	PathTokensRotate    = "/v1/cluster/tokens/rotate"
	PathTokensAPI       = "/v1/cluster/tokens/api"
	PathRevoke          = "/v1/cluster/revoke"
	MaxBodyBytes        = 16 << 10 // a request body larger than this is refused (413)
	MaxIPs              = 16       // a certificate names at most this many addresses
	MaxNodeNameLength   = 63       // node names are DNS-1123 labels, as agent.Config requires
	MaxNamespaces       = 64       // an API token names at most this many namespaces
	MaxTokenNameLength  = 253
	nonceBytes          = 16
	maxNonceHexLength   = 128
	maxResponseBodySize = 64 << 10
)

// Roles of API tokens (pki.Claims.Role).
const (
	RoleAdmin    = pki.TokenRoleAdmin
	RoleReadOnly = pki.TokenRoleReadOnly
	RoleWrite    = pki.TokenRoleWrite
)

// CAResponse is the answer of GET /v1/join/ca.
type CAResponse struct {
	CA    string `json:"ca"`              // PEM
	Proof []byte `json:"proof,omitempty"` // pki.BootstrapProof of the nonce, when the cluster came from a bootstrap token
}

// JoinRequest is the body of POST /v1/join; CertificateRequest (the same
// without the token) that of POST /v1/cluster/certificate.
type JoinRequest struct {
	Token string   `json:"token"`
	Node  string   `json:"node"`
	CSR   string   `json:"csr"` // PEM, from pki.NewCSR
	IPs   []string `json:"ips,omitempty"`
}

// CertificateRequest is the body of POST /v1/cluster/certificate.
type CertificateRequest struct {
	Node string   `json:"node"`
	CSR  string   `json:"csr"`
	IPs  []string `json:"ips,omitempty"`
}

// JoinResponse answers both POST /v1/join and POST /v1/cluster/certificate.
type JoinResponse struct {
	CA        string `json:"ca"`        // PEM
	Cert      string `json:"cert"`      // PEM
	GossipKey []byte `json:"gossipKey"` // base64 in JSON; the primary
	// GossipKeys are every gossip key, primary first (a rotation in
	// progress lists two); absent from older servers.
	GossipKeys [][]byte `json:"gossipKeys,omitempty"`
	KEK        []byte   `json:"kek,omitempty"` // only for a voter
}

// TokensResponse answers GET /v1/cluster/tokens and POST /v1/cluster/tokens/rotate.
type TokensResponse struct {
	Voter         string `json:"voter"`
	Worker        string `json:"worker"`
	CAFingerprint string `json:"caFingerprint"`
}

// RotateRequest is the body of POST /v1/cluster/tokens/rotate.
type RotateRequest struct {
	Role string `json:"role"` // "voter" or "worker"
}

// APITokenRequest is the body of POST /v1/cluster/tokens/api.
type APITokenRequest struct {
	Name       string   `json:"name"`
	Role       string   `json:"role"` // admin, read-only or write
	Namespaces []string `json:"namespaces,omitempty"`
	TTL        string   `json:"ttl,omitempty"` // a Go duration; "" or "0" means none: the token expires with the CA
}

// APITokenResponse answers POST /v1/cluster/tokens/api.
type APITokenResponse struct {
	Token string `json:"token"`
}

// decodeBody decodes one JSON object from body (already size-limited by
// the caller), refusing unknown fields and trailing data.
func decodeBody(body io.Reader, v any) error {
	b, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return fmt.Errorf("reading the body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return errors.New("body: more than one JSON value")
	}
	return nil
}

var errTooLarge = fmt.Errorf("body: larger than the %d bytes allowed", MaxBodyBytes)

// validNodeName checks a node name (or a namespace): a DNS-1123 label
// (lower-case letters, digits and '-', starting and ending with a letter
// or digit, at most MaxNodeNameLength long).
func validNodeName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > MaxNodeNameLength {
		return fmt.Errorf("%d characters, more than the %d allowed", len(s), MaxNodeNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '-' {
			return fmt.Errorf("%q: character %q at %d: only lower-case letters, digits and '-' are allowed", truncate(s), c, i)
		}
		if !alnum && (i == 0 || i == len(s)-1) {
			return fmt.Errorf("%q: must start and end with a lower-case letter or digit", truncate(s))
		}
	}
	return nil
}

// parseIPs parses the addresses a certificate names; field names the
// request field for errors.
func parseIPs(field string, ss []string) ([]net.IP, error) {
	if len(ss) > MaxIPs {
		return nil, fmt.Errorf("%s: %d addresses, more than the %d allowed", field, len(ss), MaxIPs)
	}
	ips := make([]net.IP, 0, len(ss))
	for i, s := range ss {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%s[%d]: %q is not an IP address", field, i, truncate(s))
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// truncate shortens untrusted input quoted in an error.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// parseTTL reads APITokenRequest.TTL.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("ttl: %q is not a duration such as 720h", truncate(s))
	}
	if d < 0 {
		return 0, fmt.Errorf("ttl: %v must not be negative", d)
	}
	return d, nil
}

// RevokeRequest is the body of POST /v1/cluster/revoke (admin): the node's
// certificates issued until now stop working on the voters, and it can no
// longer renew; it may join again with a join token.
type RevokeRequest struct {
	Node string `json:"node"`
}

// RevokeResponse answers a RevokeRequest.
type RevokeResponse struct {
	Node      string    `json:"node"`
	RevokedAt time.Time `json:"revokedAt"`
}
