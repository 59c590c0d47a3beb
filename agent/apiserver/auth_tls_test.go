package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA mints certificates for the TLS tests of the auth middleware; the
// real ones come from consensus/pki, which apiserver does not import.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var testSerial atomic.Int64

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(testSerial.Add(1)),
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a client and server certificate named node; role goes in the
// organisational unit, as a stand-in for what pki records.
func (ca *testCA) leaf(t testing.TB, node, role string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(testSerial.Add(1)),
		Subject:      pkix.Name{CommonName: node, OrganizationalUnit: []string{role}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// fakeAuth is an Authenticator over a fixed token table; an agent is any
// client whose certificate chains to the test CA (the TLS server verifies
// it), named by its common name.
type fakeAuth struct{ tokens map[string]Identity }

func (f fakeAuth) Token(raw string) (Identity, error) {
	if id, ok := f.tokens[raw]; ok {
		return id, nil
	}
	return Identity{}, errors.New("signature does not verify")
}

func (f fakeAuth) Peer(cs *tls.ConnectionState) (Identity, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 {
		return Identity{}, false
	}
	leaf := cs.VerifiedChains[0][0]
	voter := len(leaf.Subject.OrganizationalUnit) > 0 && leaf.Subject.OrganizationalUnit[0] == "voter"
	return Identity{Node: leaf.Subject.CommonName, Voter: voter}, true
}

var testTokens = map[string]Identity{
	"admin-token": {User: "root", Role: RoleAdmin},
	"ro-token":    {User: "viewer", Role: RoleReadOnly},
	"dev-token":   {User: "dev", Role: RoleWrite, Namespaces: []string{"default"}},
	"node-token":  {User: "odd", Role: RoleReadOnly, Node: "n1"}, // an Authenticator that mixes the two up
}

// tlsFixture is an HTTPS server that asks for (and verifies, when given)
// client certificates, with next behind NewAuthHandler.
type tlsFixture struct {
	t  testing.TB
	ca *testCA
	ts *httptest.Server
}

func newTLSFixture(t testing.TB, next http.Handler) *tlsFixture {
	t.Helper()
	ca := newTestCA(t, "shoal test CA")
	h := NewAuthHandler(next, AuthConfig{
		Auth:   fakeAuth{tokens: testTokens},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	ts.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool, MinVersion: tls.VersionTLS13}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &tlsFixture{t: t, ca: ca, ts: ts}
}

// client returns an HTTPS client trusting the server, presenting cert if
// it is not nil.
func (f *tlsFixture) client(cert *tls.Certificate) *http.Client {
	tr := f.ts.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends a request with the given bearer token ("" for none) and extra
// headers, and reads the whole answer.
func (f *tlsFixture) do(c *http.Client, method, path, token, body string, hdr map[string]string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}
