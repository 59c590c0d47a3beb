package agent

// The secure harness option: every agent of the harness gets a certificate
// from a CA made in the test, and the test's clients speak https. Tests of
// the security model (issue 10) use it; the other tests run insecure on
// loopback.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// testCA is a cluster CA made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test cluster CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a leaf for node with role ("voter" or "worker") recorded as
// the subject's organizational unit.
func (ca *testCA) issue(t testing.TB, node, role string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node, OrganizationalUnit: []string{role}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// testTLS is a TLSSource over a test CA's certificate, as pki.Holder
// behaves: peers are checked against the CA, not against host names, and
// Raft admits voter certificates only.
type testTLS struct {
	ca   *testCA
	cert tls.Certificate
}

func (ca *testCA) source(t testing.TB, node, role string) *testTLS {
	return &testTLS{ca: ca, cert: ca.issue(t, node, role)}
}

// verify checks that a peer's chain leads to the CA; voterOnly also wants
// the voter role.
func (s *testTLS) verify(voterOnly bool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no certificate")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.ca.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return err
		}
		if voterOnly && (len(leaf.Subject.OrganizationalUnit) != 1 || leaf.Subject.OrganizationalUnit[0] != "voter") {
			return errors.New("not a voter certificate")
		}
		return nil
	}
}

func (s *testTLS) ServerConfig(require bool) *tls.Config {
	auth := tls.RequestClientCert
	if require {
		auth = tls.RequireAnyClientCert
	}
	v := s.verify(false)
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert}, ClientAuth: auth,
		VerifyPeerCertificate: func(raw [][]byte, c [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // not required: a bearer token may follow
			}
			return v(raw, c)
		}}
}

func (s *testTLS) ClientConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert},
		InsecureSkipVerify: true, VerifyPeerCertificate: s.verify(false)}
}

func (s *testTLS) RaftConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{s.cert},
		ClientAuth: tls.RequireAnyClientCert, InsecureSkipVerify: true, VerifyPeerCertificate: s.verify(true)}
}

// newSecureHarness is a harness whose agents run with TLS from one test CA.
func newSecureHarness(t testing.TB, tim timings) *harness {
	h := newHarness(t, tim)
	h.ca = newTestCA(t)
	return h
}

// secure turns cfg (from h.config) into a secure agent's with a
// certificate of role.
func (h *harness) secure(cfg Config, role string) Config {
	cfg.Insecure = false
	cfg.TLS = h.ca.source(h.t, cfg.NodeName, role)
	return cfg
}

// httpsClient is an http.Client that trusts src's CA and presents its
// certificate.
func httpsClient(src TLSSource) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = src.ClientConfig()
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// apiClientFor is an API client of ta as a test user: https when ta is
// secure.
func (ta *testAgent) apiClientFor(src TLSSource) *api.Client {
	if src == nil {
		return api.NewClient("http://"+ta.Addr(), api.WithRequestTimeout(5*time.Second))
	}
	return api.NewClient("https://"+ta.Addr(), api.WithRequestTimeout(5*time.Second),
		api.WithHTTPClient(httpsClient(src)))
}
