package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testClaims() Claims {
	return Claims{ID: "tok-1", Name: "ci", Role: TokenRoleWrite, Namespaces: []string{"default", "web"},
		IssuedAt: t0, ExpiresAt: t0.Add(720 * time.Hour)}
}

func mustSign(t testing.TB, ca *CA, c Claims) string {
	t.Helper()
	tok, err := ca.SignToken(c)
	if err != nil {
		t.Fatalf("SignToken: %v", err)
	}
	return tok
}

func TestAPITokenRoundTrip(t *testing.T) {
	ca := mustCA(t, "c", t0)
	for _, c := range []Claims{
		testClaims(),
		{ID: "a", Name: "admin", Role: TokenRoleAdmin, IssuedAt: t0, ExpiresAt: t0.Add(time.Second)},
		{ID: "r", Name: "viewer", Role: TokenRoleReadOnly, Namespaces: []string{"x"}, IssuedAt: t0.Add(500 * time.Millisecond), ExpiresAt: t0.Add(time.Hour)},
	} {
		tok := mustSign(t, ca, c)
		if !strings.HasPrefix(tok, "shoal.") || strings.Count(tok, ".") != 2 {
			t.Fatalf("token shape %q", tok)
		}
		got, err := VerifyToken(ca.Cert, tok, c.IssuedAt)
		if err != nil {
			t.Fatal(err)
		}
		want := c
		want.IssuedAt = time.Unix(c.IssuedAt.Unix(), 0).UTC()
		want.ExpiresAt = time.Unix(c.ExpiresAt.Unix(), 0).UTC()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("VerifyToken = %+v, want %+v", got, want)
		}
	}
}

func TestVerifyTokenTimes(t *testing.T) {
	ca := mustCA(t, "c", t0)
	c := testClaims()
	tok := mustSign(t, ca, c)
	for _, tc := range []struct {
		name string
		now  time.Time
		want error
	}{
		{"at issue", c.IssuedAt, nil},
		{"skewed clock", c.IssuedAt.Add(-ClockSkew), nil},
		{"before issue", c.IssuedAt.Add(-ClockSkew - time.Second), ErrTokenNotYetValid},
		{"last second", c.ExpiresAt.Add(-time.Second), nil},
		{"at expiry", c.ExpiresAt, ErrTokenExpired},
		{"after expiry", c.ExpiresAt.Add(time.Hour), ErrTokenExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyToken(ca.Cert, tok, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// splitToken returns the decoded claims JSON and the signature part.
func splitToken(t testing.TB, tok string) (map[string]any, string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m, parts[2]
}

func encodeWith(t testing.TB, m map[string]any, sig string) string {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return "shoal." + base64.RawURLEncoding.EncodeToString(raw) + "." + sig
}

func TestVerifyTokenRefuses(t *testing.T) {
	ca := mustCA(t, "c", t0)
	other := mustCA(t, "other", t0)
	tok := mustSign(t, ca, testClaims())
	m, sig := splitToken(t, tok)

	escalated := map[string]any{}
	for k, v := range m {
		escalated[k] = v
	}
	escalated["role"] = TokenRoleAdmin

	// Another CA's token that claims our issuer: its signature cannot verify.
	om, osig := splitToken(t, mustSign(t, other, testClaims()))
	om["iss"] = ca.Fingerprint()
	forged := encodeWith(t, om, osig)
	// Re-sign the forged claims with the other key, so only the key is wrong.
	raw, _ := json.Marshal(om)
	signed := "shoal." + base64.RawURLEncoding.EncodeToString(raw)
	d := sha256.Sum256([]byte(signed))
	s2, _ := other.Key.Sign(rand.Reader, d[:], nil)
	forgedSigned := signed + "." + base64.RawURLEncoding.EncodeToString(s2)

	rawSig, _ := base64.RawURLEncoding.DecodeString(sig)
	rawSig[len(rawSig)-1] ^= 0x01
	flippedSig := strings.TrimSuffix(tok, sig) + base64.RawURLEncoding.EncodeToString(rawSig)

	cases := []struct {
		name string
		tok  string
		want error
	}{
		{"other CA", mustSign(t, other, testClaims()), ErrTokenOtherCA},
		{"escalated role", encodeWith(t, escalated, sig), ErrTokenSignature},
		{"forged issuer", forged, ErrTokenSignature},
		{"forged issuer re-signed", forgedSigned, ErrTokenSignature},
		{"flipped signature", flippedSig, ErrTokenSignature},
		{"too long", tok + strings.Repeat("A", MaxTokenBytes), ErrTokenTooLong},
		{"empty", "", ErrTokenMalformed},
		{"bearer prefix kept", "Bearer " + tok, ErrTokenMalformed},
		{"no signature", strings.Join(strings.Split(tok, ".")[:2], "."), ErrTokenMalformed},
		{"empty signature", strings.Join(strings.Split(tok, ".")[:2], ".") + ".", ErrTokenMalformed},
		{"extra part", tok + ".x", ErrTokenMalformed},
		{"padded base64", strings.Replace(tok, ".", "=.", 1), ErrTokenMalformed},
		{"not json", "shoal." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + sig, ErrTokenMalformed},
		{"unknown field", encodeWith(t, with(m, "admin", true), sig), ErrTokenMalformed},
		{"wrong version", encodeWith(t, with(m, "v", 2), sig), ErrTokenMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyToken(ca.Cert, tc.tok, t0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := VerifyToken(nil, tok, t0); err == nil {
		t.Fatal("nil CA accepted")
	}
}

// Property: no single-bit change anywhere in a token is accepted.
func TestVerifyTokenAnyByteFlip(t *testing.T) {
	ca := mustCA(t, "c", t0)
	tok := mustSign(t, ca, testClaims())
	for i := range len(tok) {
		b := []byte(tok)
		b[i] ^= 0x01
		if _, err := VerifyToken(ca.Cert, string(b), t0); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	n := map[string]any{}
	for a, b := range m {
		n[a] = b
	}
	n[k] = v
	return n
}

func TestSignTokenValidates(t *testing.T) {
	ca := mustCA(t, "c", t0)
	mod := func(f func(*Claims)) Claims { c := testClaims(); f(&c); return c }
	for _, tc := range []struct {
		name string
		c    Claims
		want string
	}{
		{"no id", mod(func(c *Claims) { c.ID = "" }), "id"},
		{"no name", mod(func(c *Claims) { c.Name = "" }), "name"},
		{"control in name", mod(func(c *Claims) { c.Name = "a\nb" }), "name"},
		{"bad role", mod(func(c *Claims) { c.Role = "root" }), "role"},
		{"bad namespace", mod(func(c *Claims) { c.Namespaces = []string{"ok", "Not OK"} }), "namespaces[1]"},
		{"too many namespaces", mod(func(c *Claims) { c.Namespaces = make([]string, MaxTokenNamespaces+1) }), "namespaces"},
		{"no expiry", mod(func(c *Claims) { c.ExpiresAt = time.Time{} }), "expiresAt"},
		{"expiry before issue", mod(func(c *Claims) { c.ExpiresAt = c.IssuedAt }), "expiresAt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ca.SignToken(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// The most a token can hold still fits MaxTokenBytes.
	c := testClaims()
	c.ID, c.Name = strings.Repeat("i", MaxTokenIDLen), strings.Repeat("n", MaxTokenNameLen)
	c.Namespaces = nil
	for range MaxTokenNamespaces {
		c.Namespaces = append(c.Namespaces, strings.Repeat("s", 26))
	}
	if tok, err := ca.SignToken(c); err != nil || len(tok) > MaxTokenBytes {
		t.Fatalf("large token: %d bytes, %v", len(tok), err)
	}
}
