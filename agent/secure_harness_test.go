package agent

// The secure harness option: every agent of the harness gets a certificate
// from a cluster CA made in the test (consensus/pki), and the test's clients
// speak https with an admin API token. Tests of the security model (issue
// 10) use it; the other tests run insecure on loopback.

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// testCA is a cluster CA made in the test.
type testCA struct{ ca *pki.CA }

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	ca, err := pki.NewCA("test-cluster", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca}
}

// issue makes a key and a certificate for node with role, valid for ttl.
func (c *testCA) issue(t testing.TB, node string, role pki.Role, ttl time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err = c.ca.Issue(pki.NodeRequest{Node: node, Role: role, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: key.Public()}, time.Now(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = pki.MarshalKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// source is a TLS holder with a fresh certificate for node.
func (c *testCA) source(t testing.TB, node string, role pki.Role) *pki.Holder {
	t.Helper()
	certPEM, keyPEM := c.issue(t, node, role, time.Hour)
	h, err := pki.NewHolder(c.ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// token signs an API token of role (admin, read-only, write).
func (c *testCA) token(t testing.TB, role string, namespaces ...string) string {
	t.Helper()
	now := time.Now()
	tok, err := c.ca.SignToken(pki.Claims{ID: "t-" + role, Name: "test-" + role, Role: role, Namespaces: namespaces,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// newSecureHarness is a harness whose agents run with TLS from one test CA.
func newSecureHarness(t testing.TB, tim timings) *harness {
	h := newHarness(t, tim)
	h.ca = newTestCA(t)
	return h
}

// secure turns cfg (from h.config) into a secure agent's with a
// certificate of role.
func (h *harness) secure(cfg Config, role pki.Role) Config {
	cfg.Insecure = false
	cfg.TLS = h.ca.source(h.t, cfg.NodeName, role)
	return cfg
}

// httpsClient is an http.Client whose TLS configuration is cfg.
func httpsClient(cfg *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	// As api.NewClient's own transport: concurrent writers keep their
	// connections instead of paying a handshake per request.
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// caOnly trusts the test CA and presents no certificate, as a CLI does.
func (c *testCA) caOnly() *tls.Config {
	cfg, err := api.TLSConfigFromCA(c.ca.CertPEM)
	if err != nil {
		panic(err) // the CA's own PEM
	}
	return cfg
}

// apiClientFor is an API client of ta: plain http for an insecure agent,
// else https trusting ca with the API token tok ("" for none).
func (ta *testAgent) apiClientFor(ca *testCA, tok string) *api.Client {
	if ca == nil {
		return api.NewClient("http://"+ta.Addr(), api.WithRequestTimeout(5*time.Second))
	}
	opts := []api.ClientOption{api.WithRequestTimeout(5 * time.Second), api.WithHTTPClient(httpsClient(ca.caOnly()))}
	if tok != "" {
		opts = append(opts, api.WithBearerToken(tok))
	}
	return api.NewClient("https://"+ta.Addr(), opts...)
}
