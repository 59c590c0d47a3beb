package pki

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestVerifier(t *testing.T) {
	ca := mustCA(t, "c", t0)
	other := mustCA(t, "o", t0)
	v, err := NewVerifier(ca.Cert, 2)
	if err != nil {
		t.Fatal(err)
	}
	c := testClaims()
	tok := mustSign(t, ca, c)
	want, err := VerifyToken(ca.Cert, tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // first call verifies, the others hit the cache
		got, err := v.Verify(tok, t0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("call %d: %+v %v", i, got, err)
		}
		got.Namespaces[0] = "changed" // callers cannot change the cache
	}
	if v.Len() != 1 {
		t.Fatalf("Len %d, want 1", v.Len())
	}
	// A remembered token is still refused once expired or before issue.
	if _, err := v.Verify(tok, c.ExpiresAt); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := v.Verify(tok, t0.Add(-time.Hour)); !errors.Is(err, ErrTokenNotYetValid) {
		t.Fatalf("not yet valid: %v", err)
	}
	// Refused tokens are not remembered and keep their errors.
	if _, err := v.Verify(mustSign(t, other, c), t0); !errors.Is(err, ErrTokenOtherCA) {
		t.Fatalf("other CA: %v", err)
	}
	if _, err := v.Verify(tok[:len(tok)-2]+"AA", t0); err == nil {
		t.Fatal("tampered token accepted")
	}
	if v.Len() != 1 {
		t.Fatalf("Len %d after refusals, want 1", v.Len())
	}
	// The bound holds.
	for i := 0; i < 5; i++ {
		c2 := c
		c2.ID = "t" + string(rune('a'+i))
		if _, err := v.Verify(mustSign(t, ca, c2), t0); err != nil {
			t.Fatal(err)
		}
		if v.Len() > 2 {
			t.Fatalf("Len %d over the bound 2", v.Len())
		}
	}
	for _, n := range []int{0, -1, MaxVerifierEntries + 1} {
		if _, err := NewVerifier(ca.Cert, n); err == nil {
			t.Fatalf("NewVerifier size %d accepted", n)
		}
	}
	if _, err := NewVerifier(nil, 1); err == nil {
		t.Fatal("NewVerifier without CA accepted")
	}
}

func TestVerifierConcurrent(t *testing.T) {
	ca := mustCA(t, "c", t0)
	v, _ := NewVerifier(ca.Cert, 4)
	toks := make([]string, 8)
	for i := range toks {
		c := testClaims()
		c.ID = "id" + string(rune('a'+i))
		toks[i] = mustSign(t, ca, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := v.Verify(toks[(g+i)%len(toks)], t0); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
