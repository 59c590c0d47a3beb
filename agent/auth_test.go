package agent

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// The token cache never lets through what VerifyToken would refuse: a
// token from another CA or an expired one is refused (and not cached), and
// a cached token past its expiry is verified again.
func TestTokenCache(t *testing.T) {
	ca := newTestCA(t)
	a := &Agent{tls: ca.source(t, "n1", pki.RoleVoter)}
	auth := &agentAuth{a: a, verified: map[[32]byte]pki.Claims{}}
	tok := ca.token(t, "admin")
	for range 2 {
		id, err := auth.Token(tok)
		if err != nil || id.Role != "admin" {
			t.Fatalf("valid token: %+v, %v", id, err)
		}
	}
	if len(auth.verified) != 1 {
		t.Fatalf("%d cached tokens, want 1", len(auth.verified))
	}
	if _, err := auth.Token(newTestCA(t).token(t, "admin")); err == nil {
		t.Fatal("another CA's token was accepted")
	}
	now := time.Now()
	expired, err := ca.ca.SignToken(pki.Claims{ID: "old", Name: "old", Role: "admin", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Token(expired); err == nil {
		t.Fatal("an expired token was accepted")
	}
	if len(auth.verified) != 1 {
		t.Fatalf("%d cached tokens after refusals, want 1", len(auth.verified))
	}
	// A cached entry past its expiry is not trusted: the token is checked
	// again (here it is in fact still valid, and cached anew).
	for k, c := range auth.verified {
		c.ExpiresAt = now.Add(-time.Second)
		c.Role = "read-only"
		auth.verified[k] = c
	}
	if id, err := auth.Token(tok); err != nil || id.Role != "admin" {
		t.Fatalf("after the cached entry expired: %+v, %v", id, err)
	}
}
