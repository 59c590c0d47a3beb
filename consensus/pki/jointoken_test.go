package pki

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestJoinTokenRoundTrip(t *testing.T) {
	ca := mustCA(t, "c", t0)
	// Property: every token made parses back to itself, in both forms.
	for i := 0; i < 200; i++ {
		pinned, err := NewJoinToken(ca.Fingerprint())
		if err != nil {
			t.Fatal(err)
		}
		boot, err := NewBootstrapToken()
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []JoinToken{pinned, boot} {
			back, err := ParseJoinToken(tok.String())
			if err != nil || back != tok {
				t.Fatalf("ParseJoinToken(%q) = %+v, %v", tok.String(), back, err)
			}
			if len(tok.Secret) != SecretLen {
				t.Fatalf("secret length %d", len(tok.Secret))
			}
		}
		if pinned.Bootstrap() || !boot.Bootstrap() {
			t.Fatal("Bootstrap() wrong")
		}
		if n := len(pinned.String()); n != len("SHOAL-1-")+FingerprintLen+1+SecretLen {
			t.Fatalf("pinned token length %d", n)
		}
	}
	a, _ := NewBootstrapToken()
	b, _ := NewBootstrapToken()
	if a.Secret == b.Secret {
		t.Fatal("two secrets are equal")
	}
	if _, err := NewJoinToken("short"); err == nil {
		t.Fatal("NewJoinToken took a bad fingerprint")
	}
	if back, err := ParseJoinToken("  " + a.String() + "\n"); err != nil || back != a {
		t.Fatalf("surrounding white space: %v", err)
	}
	if s := fmt.Sprintf("%#v %v", a, a.GoString()); strings.Contains(s, a.Secret) {
		t.Fatalf("%%#v shows the secret: %s", s)
	}
}

func TestParseJoinTokenErrors(t *testing.T) {
	fp := mustCA(t, "c", t0).Fingerprint()
	tok, _ := NewJoinToken(fp)
	sec := tok.Secret
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "does not start"},
		{"wrong prefix", "SWMTKN-1-" + fp + "-" + sec, "does not start"},
		{"lower-case prefix", "shoal-1-" + sec, "does not start"},
		{"wrong version", "SHOAL-2-" + fp + "-" + sec, "version"},
		{"no version", "SHOAL--" + sec, "version"},
		{"no parts", "SHOAL-1", "parts"},
		{"too many parts", "SHOAL-1-" + fp + "-" + sec + "-" + sec, "parts"},
		{"short secret", "SHOAL-1-" + fp + "-" + sec[:25], "secret: 25 characters"},
		{"long secret", "SHOAL-1-" + sec + "a", "secret: 27 characters"},
		{"short fingerprint", "SHOAL-1-" + fp[:51] + "-" + sec, "CA fingerprint: 51"},
		{"upper-case secret", "SHOAL-1-" + strings.ToUpper(sec), "secret: character"},
		{"bad alphabet 1", "SHOAL-1-" + "1" + sec[1:], "secret: character 1"},
		{"bad alphabet 8", "SHOAL-1-" + fp[:10] + "8" + fp[11:] + "-" + sec, "CA fingerprint: character 11"},
		{"non-canonical", "SHOAL-1-" + sec[:25] + "z", "canonical"},
		{"trailing junk", "SHOAL-1-" + sec + " junk", "secret"},
		{"trailing newline junk", "SHOAL-1-" + sec + "\nx", "secret"},
		{"too long", "SHOAL-1-" + strings.Repeat("a", 200), "at most"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJoinToken(tc.in)
			if !errors.Is(err, ErrJoinToken) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrJoinToken naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), sec[:20]) {
				t.Fatalf("error echoes the secret: %v", err)
			}
		})
	}
}

func TestSecretHashAndProof(t *testing.T) {
	tok, _ := NewBootstrapToken()
	other, _ := NewBootstrapToken()
	h := HashSecret(tok.Secret)
	if len(h) != 64 || !tok.Matches(h) || other.Matches(h) || tok.Matches("") || tok.Matches(h[:63]) {
		t.Fatal("Matches wrong")
	}
	nonce := []byte("0123456789abcdef")
	ca := []byte("ca der")
	p := BootstrapProof(tok.Secret, nonce, ca)
	if len(p) != 32 || !VerifyBootstrapProof(tok.Secret, nonce, ca, p) {
		t.Fatal("proof does not verify")
	}
	for name, q := range map[string][]byte{
		"other secret": BootstrapProof(other.Secret, nonce, ca),
		"other nonce":  BootstrapProof(tok.Secret, []byte("x"), ca),
		"other CA":     BootstrapProof(tok.Secret, nonce, []byte("ca dex")),
		// Moving bytes between nonce and CA changes the proof.
		"shifted": BootstrapProof(tok.Secret, nonce[:15], append([]byte{nonce[15]}, ca...)),
	} {
		if bytes.Equal(p, q) || VerifyBootstrapProof(tok.Secret, nonce, ca, q) {
			t.Errorf("%s: same proof", name)
		}
	}
	k := GossipKeyFromSecret(tok.Secret)
	if len(k) != GossipKeyLen || !bytes.Equal(k, GossipKeyFromSecret(tok.Secret)) || bytes.Equal(k, GossipKeyFromSecret(other.Secret)) {
		t.Fatal("gossip key not a 32-byte function of the secret")
	}
}
