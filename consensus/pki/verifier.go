package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Verifier checks API tokens like VerifyToken but remembers tokens whose
// signature it has already checked, so a client sending the same token on
// every request pays for the ECDSA verification once. Only valid tokens are
// remembered (keyed by their SHA-256); their times are checked again on every
// call. It is safe for concurrent use. Revocation stays the caller's job
// (by Claims.ID, after Verify).
type Verifier struct {
	ca   *x509.Certificate
	max  int
	mu   sync.Mutex
	seen map[[sha256.Size]byte]Claims
}

// MaxVerifierEntries bounds NewVerifier's size argument.
const MaxVerifierEntries = 1 << 16

// NewVerifier makes a Verifier for caCert remembering up to size tokens
// (1 to MaxVerifierEntries); when full it forgets them all and starts over.
func NewVerifier(caCert *x509.Certificate, size int) (*Verifier, error) {
	if caCert == nil {
		return nil, fmt.Errorf("pki: verifier: no CA certificate")
	}
	if size < 1 || size > MaxVerifierEntries {
		return nil, fmt.Errorf("pki: verifier: size %d, want 1 to %d", size, MaxVerifierEntries)
	}
	return &Verifier{ca: caCert, max: size, seen: make(map[[sha256.Size]byte]Claims)}, nil
}

// Verify returns tok's claims at time now, with the errors of VerifyToken.
func (v *Verifier) Verify(tok string, now time.Time) (Claims, error) {
	if len(tok) > MaxTokenBytes {
		return VerifyToken(v.ca, tok, now)
	}
	key := sha256.Sum256([]byte(tok))
	v.mu.Lock()
	c, ok := v.seen[key]
	v.mu.Unlock()
	if !ok {
		var err error
		if c, err = VerifyToken(v.ca, tok, now); err != nil {
			return Claims{}, err
		}
		v.mu.Lock()
		if len(v.seen) >= v.max {
			clear(v.seen)
		}
		v.seen[key] = c
		v.mu.Unlock()
	}
	if err := checkTokenTimes(c, now); err != nil {
		return Claims{}, err
	}
	c.Namespaces = slices.Clone(c.Namespaces)
	return c, nil
}

// Len is how many tokens v remembers.
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}
