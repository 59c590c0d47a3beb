package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// A fake agent that speaks the credential endpoints of the contract over
// TLS with a node certificate from its own test CA.

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) leaf(t *testing.T, node string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: node}, DNSNames: []string{node},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// fakeAgent records what it was asked.
type fakeAgent struct {
	url string
	ca  *testCA

	mu       sync.Mutex
	servedCA []byte           // what GET /v1/join/ca sends, if not ca.pem
	auth     []string         // Authorization of every request, in order
	rotated  []string         // roles rotated
	revoked  []string         // nodes revoked
	created  []map[string]any // bodies of POST /v1/cluster/tokens/api
}

const (
	goodToken    = "shoal.good-admin-token"
	limitedToken = "shoal.namespace-writer"
)

// startFakeAgent serves the contract's endpoints; present is the CA whose
// certificate the agent serves (usually its own: ca).
func startFakeAgent(t *testing.T, ca, present *testCA) *fakeAgent {
	t.Helper()
	f := &fakeAgent{ca: ca}
	tokens := map[string]string{"voter": "SHOAL-1-voter", "worker": "SHOAL-1-worker"}
	status := func(w http.ResponseWriter, code int, reason, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		f.mu.Lock()
		f.auth = append(f.auth, a)
		f.mu.Unlock()
		if r.URL.Path == "/v1/join/ca" { // public
			f.mu.Lock()
			served := f.servedCA
			f.mu.Unlock()
			if served == nil {
				served = ca.pem
			}
			reply(w, map[string]string{"ca": string(served)})
			return
		}
		switch a {
		case "Bearer " + goodToken:
		case "Bearer " + limitedToken:
			status(w, 403, "Forbidden", `user "ci" may not get members`)
			return
		default:
			status(w, 401, "Unauthorized", "no valid bearer token")
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/cluster/members":
			reply(w, map[string]any{"members": []map[string]string{{"name": "a", "address": "127.0.0.1:7946", "status": "alive"}}})
		case "GET /v1/cluster/tokens":
			f.mu.Lock()
			reply(w, map[string]string{"voter": tokens["voter"], "worker": tokens["worker"], "caFingerprint": pki.Fingerprint(ca.cert.Raw)})
			f.mu.Unlock()
		case "POST /v1/cluster/tokens/rotate":
			var body struct{ Role string }
			json.NewDecoder(r.Body).Decode(&body)
			f.mu.Lock()
			f.rotated = append(f.rotated, body.Role)
			tokens[body.Role] += "-rotated"
			reply(w, map[string]string{"voter": tokens["voter"], "worker": tokens["worker"], "caFingerprint": pki.Fingerprint(ca.cert.Raw)})
			f.mu.Unlock()
		case "POST /v1/cluster/revoke":
			var body struct{ Node string }
			json.NewDecoder(r.Body).Decode(&body)
			f.mu.Lock()
			f.revoked = append(f.revoked, body.Node)
			f.mu.Unlock()
			reply(w, map[string]string{"node": body.Node, "revokedAt": "2026-11-30T02:00:00Z"})
		case "POST /v1/cluster/tokens/api":
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			f.mu.Lock()
			f.created = append(f.created, body)
			f.mu.Unlock()
			reply(w, map[string]string{"token": "shoal.new-token"})
		default:
			status(w, 404, "NotFound", "no route "+r.URL.Path)
		}
	})
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{present.leaf(t, "node-a")}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

func (f *fakeAgent) authHeaders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}
