package pki

import (
	"errors"
	"time"
)

// Limits on every input this package parses or issues.
const (
	// MaxCSRBytes bounds a PEM certificate request given to ParseCSR.
	MaxCSRBytes = 8 << 10
	// MaxCertBytes bounds a PEM certificate or key given to a parser.
	MaxCertBytes = 64 << 10
	// MaxTokenBytes bounds an API bearer token given to VerifyToken.
	MaxTokenBytes = 4096
	// MaxJoinTokenBytes bounds a join token given to ParseJoinToken.
	MaxJoinTokenBytes = 128
	// MaxIPs bounds the IP addresses a node certificate may name.
	MaxIPs = 16
	// MaxNodeNameLen is the longest node name (a DNS-1123 label).
	MaxNodeNameLen = 63
	// MaxClusterIDLen bounds the cluster ID written into the CA's name.
	MaxClusterIDLen = 128
	// MinCertTTL and MaxCertTTL bound a node certificate's lifetime.
	MinCertTTL = time.Minute
	MaxCertTTL = 365 * 24 * time.Hour
	// CALifetime is how long a new CA is valid.
	CALifetime = 10 * 365 * 24 * time.Hour
	// ClockSkew is how far before now NotBefore is set, so that a peer whose
	// clock lags a little still accepts a fresh certificate.
	ClockSkew = time.Minute
	// MaxTokenNamespaces bounds the namespaces an API token may list.
	MaxTokenNamespaces = 64
)

// Errors that callers test for with errors.Is. Messages never contain a
// secret.
var (
	// ErrNotShoalCert: the certificate was not issued by Issue (no or bad
	// role, bad name, a CA certificate).
	ErrNotShoalCert = errors.New("pki: not a shoal node certificate")
	// ErrNotVoter: the peer's certificate does not carry the voter role.
	ErrNotVoter = errors.New("pki: peer certificate does not carry the voter role")
	// ErrPeerRefused: the Holder's peer check (SetPeerCheck) refused the peer.
	ErrPeerRefused = errors.New("pki: peer refused")
	// ErrJoinToken: a join token is malformed (the wrapped message says which part).
	ErrJoinToken = errors.New("pki: invalid join token")
	// ErrTokenMalformed: an API token does not have the token shape.
	ErrTokenMalformed = errors.New("pki: malformed API token")
	// ErrTokenTooLong: an API token is over MaxTokenBytes.
	ErrTokenTooLong = errors.New("pki: API token too long")
	// ErrTokenOtherCA: an API token was signed by another cluster's CA.
	ErrTokenOtherCA = errors.New("pki: API token signed by another CA")
	// ErrTokenSignature: an API token's signature does not verify.
	ErrTokenSignature = errors.New("pki: API token signature invalid")
	// ErrTokenExpired: now is at or after the token's ExpiresAt.
	ErrTokenExpired = errors.New("pki: API token expired")
	// ErrTokenNotYetValid: now is before the token's IssuedAt (beyond ClockSkew).
	ErrTokenNotYetValid = errors.New("pki: API token not yet valid")
	// ErrSealed: Open failed (wrong key, wrong AAD or tampered data).
	ErrSealed = errors.New("pki: sealed data cannot be opened (wrong key, wrong context or tampered)")
)
