package pki

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseJoinToken: the parser never panics, accepts only tokens that
// render back to themselves, and never echoes a rejected input in its error.
func FuzzParseJoinToken(f *testing.F) {
	ca := mustCA(f, "fuzz", t0)
	pinned, _ := NewJoinToken(ca.Fingerprint())
	boot, _ := NewBootstrapToken()
	for _, s := range []string{pinned.String(), boot.String(), "", "SHOAL-1-", "SHOAL-2-" + boot.Secret,
		"SHOAL-1-" + ca.Fingerprint() + "-" + boot.Secret + "-x", " " + boot.String() + "\n", "SWMTKN-1-abc-def"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseJoinToken(s)
		if err != nil {
			if !errors.Is(err, ErrJoinToken) {
				t.Fatalf("error %v does not wrap ErrJoinToken", err)
			}
			for _, run := range secretLike(s) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("error echoes %q of the input: %v", run, err)
				}
			}
			return
		}
		if tok.String() != strings.TrimSpace(s) {
			t.Fatalf("accepted %q, renders as %q", s, tok.String())
		}
		if len(tok.Secret) != SecretLen || (tok.Fingerprint != "" && len(tok.Fingerprint) != FingerprintLen) {
			t.Fatalf("accepted bad lengths: %+v", tok)
		}
	})
}

// secretLike returns the runs of 20 or more base32 characters in s: what
// could be a secret or part of one. No fixed error text has such a run.
func secretLike(s string) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(s); i++ {
		in := i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '2' && s[i] <= '7')
		if in && start < 0 {
			start = i
		}
		if !in && start >= 0 {
			if i-start >= 20 {
				runs = append(runs, s[start:i])
			}
			start = -1
		}
	}
	return runs
}

// FuzzVerifyToken: arbitrary input never panics and is never accepted
// unless it is exactly the seed token the CA signed.
func FuzzVerifyToken(f *testing.F) {
	ca := mustCA(f, "fuzz", t0)
	other := mustCA(f, "other", t0)
	good := mustSign(f, ca, testClaims())
	f.Add(good)
	f.Add(mustSign(f, other, testClaims()))
	f.Add("shoal..")
	f.Add("shoal.e30.AA")
	f.Add(good[:len(good)-4])
	f.Fuzz(func(t *testing.T, s string) {
		c, err := VerifyToken(ca.Cert, s, t0.Add(time.Hour))
		if err != nil {
			return
		}
		if s != good {
			t.Fatalf("accepted a token the CA did not sign: %q -> %+v", s, c)
		}
	})
}

// FuzzParseCSR: arbitrary bytes never panic; anything accepted satisfies
// every rule the CA relies on, and the CA can issue from it.
func FuzzParseCSR(f *testing.F) {
	key, _ := NewKey()
	good, _ := NewCSR(key, "fuzz-node", manyIPs(2))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{})
	ca := mustCA(f, "fuzz", t0)
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := ParseCSR(b)
		if err != nil {
			return
		}
		if len(b) > MaxCSRBytes {
			t.Fatalf("accepted %d bytes", len(b))
		}
		req := NodeRequest{Node: csr.Subject.CommonName, Role: RoleWorker, IPs: csr.IPAddresses, PublicKey: csr.PublicKey}
		if err := req.Validate(); err != nil {
			t.Fatalf("accepted a CSR the CA refuses: %v", err)
		}
		if _, err := ca.Issue(req, t0, time.Hour); err != nil {
			t.Fatalf("Issue: %v", err)
		}
	})
}
