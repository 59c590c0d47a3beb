package main

import (
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// shoal token generate prints a bootstrap token, a new one each time,
// without any agent.
func TestTokenGenerate(t *testing.T) {
	t.Setenv("SHOAL_ADDR", "")
	a := strings.TrimSpace(mustShoal(t, "token", "generate"))
	b := strings.TrimSpace(mustShoal(t, "token", "generate"))
	if a == b {
		t.Fatal("two runs printed the same token")
	}
	tok, err := pki.ParseJoinToken(a)
	if err != nil || !tok.Bootstrap() {
		t.Fatalf("%q: %v, bootstrap %v", a, err, tok.Bootstrap())
	}
	if code, _, _ := shoal(t, "token", "generate", "extra"); code == 0 {
		t.Fatal("an extra argument was accepted")
	}
}
