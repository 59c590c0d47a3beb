package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a cluster CA minted for a test, as consensus/pki makes one.
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
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a node certificate that names the node only (no IP): the
// client must not check host names.
func (ca *testCA) leaf(t *testing.T, node string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: node},
		DNSNames:     []string{node},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsAgent serves h over TLS with a node certificate of ca.
func tlsAgent(t *testing.T, ca *testCA, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, "node-a")}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func caClient(t *testing.T, ts *httptest.Server, ca *testCA, opts ...ClientOption) *Client {
	t.Helper()
	cfg, err := TLSConfigFromCA(ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(ts.URL, append([]ClientOption{WithTLSConfig(cfg), WithRequestTimeout(10 * time.Second)}, opts...)...)
}

// TestClientSendsBearerOverTLS: the token goes on plain requests, writes
// and watches, to an agent whose certificate names another host than the
// address dialled but chains to the pinned CA.
func TestClientSendsBearerOverTLS(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	var mu sync.Mutex
	seen := map[string]string{} // request kind -> Authorization
	ts := tlsAgent(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.Method
		if r.URL.Query().Get("watch") == "true" {
			kind = "WATCH"
		}
		mu.Lock()
		seen[kind] = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		cm := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"}}`
		if kind == "WATCH" {
			fmt.Fprintf(w, `{"type":"ADDED","object":%s}`+"\n", cm)
			return
		}
		fmt.Fprint(w, cm)
	}))
	c := caClient(t, ts, ca, WithBearerToken("s3cret"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Get(ctx, "ConfigMap", "default", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, testConfigMap("a")); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Watch(ctx, "ConfigMap", "default", ListOptions{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != "ADDED" {
		t.Fatalf("watch event %+v", ev)
	}
	for range ch {
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range []string{"GET", "POST", "WATCH"} {
		if seen[k] != "Bearer s3cret" {
			t.Errorf("%s: Authorization %q, want the bearer token", k, seen[k])
		}
	}
}

// TestClientRefusesAnotherCA: an agent whose certificate comes from
// another CA never sees the request, hence never the token.
func TestClientRefusesAnotherCA(t *testing.T) {
	pinned, other := newTestCA(t, "cluster-a"), newTestCA(t, "cluster-b")
	var calls atomic.Int64
	ts := tlsAgent(t, other, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprint(w, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"}}`)
	}))
	c := caClient(t, ts, pinned, WithBearerToken("s3cret"))
	_, err := c.Get(context.Background(), "ConfigMap", "default", "a")
	if err == nil || !strings.Contains(err.Error(), "not from the cluster CA") {
		t.Fatalf("got %v, want a CA error", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the token: %v", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the impostor got %d requests", n)
	}
	// The same agent, pinned by its own CA, is accepted.
	if _, err := caClient(t, ts, other).Get(context.Background(), "ConfigMap", "default", "a"); err != nil {
		t.Errorf("own CA: %v", err)
	}
}

func TestTLSConfigFromCABadInput(t *testing.T) {
	for in, want := range map[string]string{
		"":        "no PEM CERTIFICATE",
		"garbage": "no PEM CERTIFICATE",
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n": "CA certificate 1",
	} {
		if _, err := TLSConfigFromCA([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// TestWithTLSConfigKeepsCallersClient: the TLS config goes on a copy of a
// caller's transport.
func TestWithTLSConfigKeepsCallersClient(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	ts := tlsAgent(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"}}`)
	}))
	tr := &http.Transport{}
	hc := &http.Client{Transport: tr}
	cfg, err := TLSConfigFromCA(ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(ts.URL, WithHTTPClient(hc), WithTLSConfig(cfg))
	if _, err := c.Get(context.Background(), "ConfigMap", "default", "a"); err != nil {
		t.Fatal(err)
	}
	// (Transport.Clone may give the original a default TLS config for
	// HTTP/2; it must not get ours.)
	if hc.Transport != tr || (tr.TLSClientConfig != nil && tr.TLSClientConfig.VerifyConnection != nil) {
		t.Error("the caller's client was changed")
	}
	c = NewClient(ts.URL, WithHTTPClient(&http.Client{Transport: roundTripFunc(nil)}), WithTLSConfig(cfg))
	if _, err := c.Get(context.Background(), "ConfigMap", "default", "a"); err == nil || !strings.Contains(err.Error(), "WithTLSConfig") {
		t.Errorf("unconfigurable transport: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestClientAuthErrors: 401 says what to do; 403 says it is the role.
func TestClientAuthErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/namespaces/default/configmaps/status401":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no valid bearer token","reason":"Unauthorized","code":401}`)
		case "/api/v1/namespaces/default/configmaps/plain401":
			w.WriteHeader(401)
		case "/api/v1/namespaces/default/configmaps/status403":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"user \"ci\" (read-only) may not create configmaps","reason":"Forbidden","code":403}`)
		}
	}))
	defer ts.Close()
	c := NewClient(ts.URL, WithBearerToken("s3cret"), WithRequestTimeout(10*time.Second))
	ctx := context.Background()
	for name, want := range map[string][]string{
		"status401": {"401 Unauthorized: no or bad token — run `shoal login` or set SHOAL_TOKEN", "no valid bearer token"},
		"plain401":  {"401 Unauthorized: no or bad token — run `shoal login` or set SHOAL_TOKEN"},
		"status403": {"403 Forbidden", `user "ci" (read-only) may not create configmaps`},
	} {
		_, err := c.Get(ctx, "ConfigMap", "default", name)
		se, ok := err.(*StatusError)
		if !ok {
			t.Fatalf("%s: %T %v", name, err, err)
		}
		for _, w := range want {
			if !strings.Contains(se.Error(), w) {
				t.Errorf("%s: %q lacks %q", name, se.Error(), w)
			}
		}
		if strings.Contains(se.Error(), "s3cret") {
			t.Errorf("%s: the error shows the token", name)
		}
		if wantReason := map[int]StatusReason{401: "Unauthorized", 403: "Forbidden"}[se.Code()]; se.Reason() != wantReason {
			t.Errorf("%s: reason %q, want %q", name, se.Reason(), wantReason)
		}
	}
}

func TestClientPrintsNoToken(t *testing.T) {
	c := NewClient("https://a:1", WithBearerToken("s3cret"))
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, c); strings.Contains(s, "s3cret") || !strings.Contains(s, "https://a:1") {
			t.Errorf("%s: %s", f, s)
		}
	}
}
