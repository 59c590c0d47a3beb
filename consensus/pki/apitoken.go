package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// API token roles (Claims.Role).
const (
	TokenRoleAdmin    = "admin"
	TokenRoleReadOnly = "read-only"
	TokenRoleWrite    = "write"
)

// Limits on API token claims.
const (
	MaxTokenIDLen   = 128
	MaxTokenNameLen = 253
)

const (
	apiTokenPrefix  = "shoal."
	apiTokenVersion = 1
)

// Claims is what an API bearer token says. Times travel as Unix seconds:
// SignToken drops anything finer.
type Claims struct {
	ID, Name, Role string
	Namespaces     []string
	IssuedAt       time.Time
	ExpiresAt      time.Time
}

// wireClaims is the signed JSON. Issuer is the signing CA's fingerprint, so
// a token from another cluster gets its own error.
type wireClaims struct {
	Version    int      `json:"v"`
	Issuer     string   `json:"iss"`
	ID         string   `json:"jti"`
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Namespaces []string `json:"ns,omitempty"`
	IssuedAt   int64    `json:"iat"`
	ExpiresAt  int64    `json:"exp"`
}

// Validate checks the claims' fields.
func (c Claims) Validate() error {
	if c.ID == "" || len(c.ID) > MaxTokenIDLen || !printable(c.ID) {
		return fmt.Errorf("pki: token id: want 1 to %d printable ASCII characters", MaxTokenIDLen)
	}
	if c.Name == "" || len(c.Name) > MaxTokenNameLen || !printable(c.Name) {
		return fmt.Errorf("pki: token name: want 1 to %d printable ASCII characters", MaxTokenNameLen)
	}
	switch c.Role {
	case TokenRoleAdmin, TokenRoleReadOnly, TokenRoleWrite:
	default:
		return fmt.Errorf("pki: token role: %q, want %q, %q or %q", c.Role, TokenRoleAdmin, TokenRoleReadOnly, TokenRoleWrite)
	}
	if len(c.Namespaces) > MaxTokenNamespaces {
		return fmt.Errorf("pki: token namespaces: %d, at most %d", len(c.Namespaces), MaxTokenNamespaces)
	}
	for i, ns := range c.Namespaces {
		if err := CheckNodeName(ns); err != nil {
			return fmt.Errorf("pki: token namespaces[%d]: %q is not a DNS-1123 label", i, ns)
		}
	}
	if c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
		return fmt.Errorf("pki: token issuedAt/expiresAt: both must be set")
	}
	if c.ExpiresAt.Unix() <= c.IssuedAt.Unix() {
		return fmt.Errorf("pki: token expiresAt: not after issuedAt")
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// SignToken signs c with the CA key: "shoal." + base64url(JSON) + "." +
// base64url(ECDSA-SHA256 signature over the first two parts).
func (ca *CA) SignToken(c Claims) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	payload, err := json.Marshal(wireClaims{
		Version: apiTokenVersion, Issuer: ca.Fingerprint(),
		ID: c.ID, Name: c.Name, Role: c.Role, Namespaces: c.Namespaces,
		IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("pki: token: %w", err)
	}
	signed := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signed))
	sig, err := ca.Key.Sign(rand.Reader, digest[:], nil)
	if err != nil {
		return "", fmt.Errorf("pki: token: sign: %w", err)
	}
	tok := signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	if len(tok) > MaxTokenBytes {
		return "", fmt.Errorf("pki: token: %d bytes, at most %d (fewer namespaces?)", len(tok), MaxTokenBytes)
	}
	return tok, nil
}

// VerifyToken checks tok against the CA certificate at time now and returns
// its claims. Errors wrap ErrTokenTooLong, ErrTokenMalformed,
// ErrTokenOtherCA, ErrTokenSignature, ErrTokenNotYetValid or
// ErrTokenExpired. IssuedAt may be up to ClockSkew after now.
func VerifyToken(caCert *x509.Certificate, tok string, now time.Time) (Claims, error) {
	if len(tok) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTokenTooLong, len(tok), MaxTokenBytes)
	}
	if caCert == nil {
		return Claims{}, fmt.Errorf("pki: token: no CA certificate")
	}
	pub, ok := caCert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return Claims{}, fmt.Errorf("pki: token: CA key %T is not ECDSA", caCert.PublicKey)
	}
	rest, ok := strings.CutPrefix(tok, apiTokenPrefix)
	if !ok {
		return Claims{}, fmt.Errorf("%w: does not start with %q", ErrTokenMalformed, apiTokenPrefix)
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s64, ".") {
		return Claims{}, fmt.Errorf("%w: want shoal.<claims>.<signature>", ErrTokenMalformed)
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(p64)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: claims: not base64url", ErrTokenMalformed)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s64)
	if err != nil || len(sig) == 0 {
		return Claims{}, fmt.Errorf("%w: signature: not base64url", ErrTokenMalformed)
	}
	var w wireClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrTokenMalformed, err)
	}
	if dec.More() {
		return Claims{}, fmt.Errorf("%w: claims: trailing data", ErrTokenMalformed)
	}
	if w.Version != apiTokenVersion {
		return Claims{}, fmt.Errorf("%w: version %d, want %d", ErrTokenMalformed, w.Version, apiTokenVersion)
	}
	if w.Issuer != Fingerprint(caCert.Raw) {
		return Claims{}, ErrTokenOtherCA
	}
	digest := sha256.Sum256([]byte(tok[:len(apiTokenPrefix)+len(p64)]))
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return Claims{}, ErrTokenSignature
	}
	c := Claims{
		ID: w.ID, Name: w.Name, Role: w.Role, Namespaces: w.Namespaces,
		IssuedAt: time.Unix(w.IssuedAt, 0).UTC(), ExpiresAt: time.Unix(w.ExpiresAt, 0).UTC(),
	}
	if err := c.Validate(); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrTokenMalformed, err)
	}
	if err := checkTokenTimes(c, now); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// checkTokenTimes refuses a token used before IssuedAt (beyond ClockSkew)
// or at or after ExpiresAt.
func checkTokenTimes(c Claims, now time.Time) error {
	if now.Add(ClockSkew).Before(c.IssuedAt) {
		return fmt.Errorf("%w: issued at %s", ErrTokenNotYetValid, c.IssuedAt.Format(time.RFC3339))
	}
	if !now.Before(c.ExpiresAt) {
		return fmt.Errorf("%w: at %s", ErrTokenExpired, c.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}
