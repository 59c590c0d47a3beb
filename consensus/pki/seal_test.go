package pki

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	kek, err := NewKEK()
	if err != nil || len(kek) != KEKLen {
		t.Fatalf("NewKEK: %d bytes, %v", len(kek), err)
	}
	other, _ := NewKEK()
	msg := []byte("-----BEGIN EC PRIVATE KEY----- secret")
	aad := []byte("ca-key")
	s, err := Seal(kek, msg, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s, msg[:20]) {
		t.Fatal("plaintext visible in sealed data")
	}
	if got, err := Open(kek, s, aad); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open: %q %v", got, err)
	}
	s2, _ := Seal(kek, msg, aad)
	if bytes.Equal(s, s2) {
		t.Fatal("two seals are equal: nonce not random")
	}
	if _, err := Open(other, s, aad); !errors.Is(err, ErrSealed) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := Open(kek, s, []byte("join-secret")); !errors.Is(err, ErrSealed) {
		t.Fatalf("wrong aad: %v", err)
	}
	if _, err := Open(kek, s, nil); !errors.Is(err, ErrSealed) {
		t.Fatalf("no aad: %v", err)
	}
	// Property: flipping any bit of the sealed data is detected.
	for i := range s {
		bad := append([]byte{}, s...)
		bad[i] ^= 1 << (i % 8)
		if _, err := Open(kek, bad, aad); !errors.Is(err, ErrSealed) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}
	for n := 0; n < 28; n++ {
		if _, err := Open(kek, s[:n], aad); !errors.Is(err, ErrSealed) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	for _, k := range [][]byte{nil, kek[:16], append(kek, 0)} {
		if _, err := Seal(k, msg, aad); err == nil || !strings.Contains(err.Error(), "kek") {
			t.Fatalf("Seal with %d-byte key: %v", len(k), err)
		}
		if _, err := Open(k, s, aad); err == nil || !strings.Contains(err.Error(), "kek") {
			t.Fatalf("Open with %d-byte key: %v", len(k), err)
		}
	}
	empty, _ := Seal(kek, nil, nil)
	if got, err := Open(kek, empty, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty plaintext: %q %v", got, err)
	}
}
