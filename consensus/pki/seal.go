package pki

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// KEKLen is the length of a key-encryption key (AES-256).
const KEKLen = 32

// NewKEK makes a random key-encryption key.
func NewKEK() ([]byte, error) {
	k := make([]byte, KEKLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("pki: kek: %w", err)
	}
	return k, nil
}

func gcm(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KEKLen {
		return nil, fmt.Errorf("pki: kek: %d bytes, want %d", len(kek), KEKLen)
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("pki: kek: %w", err)
	}
	return cipher.NewGCM(b)
}

// Seal encrypts plaintext with AES-256-GCM under kek, authenticating aad
// (say what the data is, e.g. "ca-key", so that one sealed value cannot be
// passed off as another). The random nonce is prefixed to the result.
func Seal(kek, plaintext, aad []byte) ([]byte, error) {
	a, err := gcm(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("pki: nonce: %w", err)
	}
	return a.Seal(out, out, plaintext, aad), nil
}

// Open reverses Seal; a wrong key, a different aad or any change to sealed
// gives ErrSealed.
func Open(kek, sealed, aad []byte) ([]byte, error) {
	a, err := gcm(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes, shorter than nonce and tag", ErrSealed, len(sealed))
	}
	n := a.NonceSize()
	pt, err := a.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}
