package pki

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Join token layout: "SHOAL-1-<fingerprint>-<secret>" (pinned) or
// "SHOAL-1-<secret>" (bootstrap).
const (
	joinTokenPrefix = "SHOAL-"
	joinTokenVer    = "1"
	// SecretLen is the length of a join token's secret: 16 random bytes in
	// lower-case base32.
	SecretLen   = 26
	secretBytes = 16
	// GossipKeyLen is the length of the key GossipKeyFromSecret derives.
	GossipKeyLen = 32
)

// Labels that keep the derivations from this package apart.
const (
	bootstrapProofLabel = "shoal bootstrap proof v1"
	gossipKeyLabel      = "shoal gossip key v1"
)

// JoinToken is a parsed join token. Fingerprint is the CA fingerprint it
// pins, "" for a bootstrap token.
type JoinToken struct {
	Fingerprint string
	Secret      string
}

// Bootstrap reports whether t is a bootstrap token (pins no CA).
func (t JoinToken) Bootstrap() bool { return t.Fingerprint == "" }

// String renders the token in the form ParseJoinToken reads.
func (t JoinToken) String() string {
	if t.Fingerprint == "" {
		return joinTokenPrefix + joinTokenVer + "-" + t.Secret
	}
	return joinTokenPrefix + joinTokenVer + "-" + t.Fingerprint + "-" + t.Secret
}

// GoString keeps the secret out of %#v.
func (t JoinToken) GoString() string {
	return fmt.Sprintf("pki.JoinToken{Fingerprint:%q, Secret:<redacted>}", t.Fingerprint)
}

// NewJoinToken makes a token pinning the CA with the given fingerprint.
func NewJoinToken(fingerprint string) (JoinToken, error) {
	if err := checkB32("fingerprint", fingerprint, FingerprintLen); err != nil {
		return JoinToken{}, err
	}
	s, err := newSecret()
	if err != nil {
		return JoinToken{}, err
	}
	return JoinToken{Fingerprint: fingerprint, Secret: s}, nil
}

// NewBootstrapToken makes a token that pins no CA, for --bootstrap-expect.
func NewBootstrapToken() (JoinToken, error) {
	s, err := newSecret()
	if err != nil {
		return JoinToken{}, err
	}
	return JoinToken{Secret: s}, nil
}

func newSecret() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pki: secret: %w", err)
	}
	return b32.EncodeToString(b[:]), nil
}

// ParseJoinToken reads a pinned or bootstrap token. Surrounding white space
// is ignored. Errors wrap ErrJoinToken, say which part is wrong and never
// echo the secret.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxJoinTokenBytes {
		return JoinToken{}, fmt.Errorf("%w: %d bytes, at most %d", ErrJoinToken, len(s), MaxJoinTokenBytes)
	}
	if !strings.HasPrefix(s, joinTokenPrefix) {
		return JoinToken{}, fmt.Errorf("%w: does not start with %q", ErrJoinToken, joinTokenPrefix)
	}
	parts := strings.Split(s[len(joinTokenPrefix):], "-")
	if parts[0] != joinTokenVer {
		return JoinToken{}, fmt.Errorf("%w: version: want %q", ErrJoinToken, joinTokenVer)
	}
	var t JoinToken
	switch len(parts) {
	case 2:
		t.Secret = parts[1]
	case 3:
		t.Fingerprint, t.Secret = parts[1], parts[2]
		if err := checkB32("CA fingerprint", t.Fingerprint, FingerprintLen); err != nil {
			return JoinToken{}, err
		}
	default:
		return JoinToken{}, fmt.Errorf("%w: %d dash-separated parts, want SHOAL-1-<secret> or SHOAL-1-<fingerprint>-<secret>", ErrJoinToken, len(parts)+1)
	}
	if err := checkB32("secret", t.Secret, SecretLen); err != nil {
		return JoinToken{}, err
	}
	return t, nil
}

// checkB32 checks that v is n characters of the lower-case base32 alphabet
// and decodes canonically; the message names what but never shows v.
func checkB32(what, v string, n int) error {
	if len(v) != n {
		return fmt.Errorf("%w: %s: %d characters, want %d", ErrJoinToken, what, len(v), n)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return fmt.Errorf("%w: %s: character %d is outside a-z, 2-7", ErrJoinToken, what, i+1)
		}
	}
	b, err := b32.DecodeString(v)
	if err != nil || b32.EncodeToString(b) != v {
		return fmt.Errorf("%w: %s: not canonical base32", ErrJoinToken, what)
	}
	return nil
}

// HashSecret is what the store keeps of a join secret: hex SHA-256.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether t's secret hashes to hash.
func (t JoinToken) Matches(hash string) bool {
	want := HashSecret(t.Secret)
	return subtle.ConstantTimeCompare([]byte(want), []byte(hash)) == 1
}

// BootstrapProof is an HMAC-SHA256, keyed by a bootstrap token's secret, of
// the joiner's nonce and the CA certificate the server hands out: only a
// server that knows the secret can make it, and it binds that CA.
func BootstrapProof(secret string, nonce, caDER []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(bootstrapProofLabel))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(nonce)))
	m.Write(n[:])
	m.Write(nonce)
	m.Write(caDER)
	return m.Sum(nil)
}

// VerifyBootstrapProof checks a BootstrapProof in constant time.
func VerifyBootstrapProof(secret string, nonce, caDER, proof []byte) bool {
	return hmac.Equal(BootstrapProof(secret, nonce, caDER), proof)
}

// GossipKeyFromSecret derives a GossipKeyLen-byte gossip key from a join
// secret with HKDF-SHA256 under a fixed label.
func GossipKeyFromSecret(secret string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, gossipKeyLabel, GossipKeyLen)
	if err != nil {
		// hkdf.Key fails only for a length over 255*32 bytes.
		panic("pki: hkdf: " + err.Error())
	}
	return k
}
