package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestIssuePeerOfRoundTrip(t *testing.T) {
	ca := mustCA(t, "c", t0)
	for _, role := range []Role{RoleVoter, RoleWorker} {
		key, _ := NewKey()
		ips := []net.IP{net.ParseIP("10.0.0.7"), net.ParseIP("fd00::7")}
		certPEM, err := ca.Issue(NodeRequest{Node: "node-7", Role: role, IPs: ips, PublicKey: &key.PublicKey}, t0, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ParseCertPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		p, err := PeerOf(cert)
		if err != nil {
			t.Fatal(err)
		}
		want := Peer{Node: "node-7", Role: role, Serial: strings.ToLower(cert.SerialNumber.Text(16)), NotBefore: t0.Add(-ClockSkew), NotAfter: t0.Add(24 * time.Hour)}
		if p.Node != want.Node || p.Role != want.Role || p.Serial != want.Serial || !p.NotBefore.Equal(want.NotBefore) || !p.NotAfter.Equal(want.NotAfter) {
			t.Fatalf("PeerOf = %+v, want %+v", p, want)
		}
		if len(cert.IPAddresses) != 2 || !cert.IPAddresses[1].Equal(ips[1]) {
			t.Fatalf("IPs %v", cert.IPAddresses)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: poolOf(ca.Cert), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Fatalf("server auth: %v", err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: poolOf(ca.Cert), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("client auth: %v", err)
		}
	}
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func TestIssueClampsToCAExpiry(t *testing.T) {
	ca := mustCA(t, "c", t0)
	key, _ := NewKey()
	late := ca.Cert.NotAfter.Add(-time.Hour)
	c, err := ca.Issue(NodeRequest{Node: "n", Role: RoleWorker, PublicKey: &key.PublicKey}, late, MaxCertTTL)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ParseCertPEM(c)
	if !cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Fatalf("NotAfter %s, want the CA's %s", cert.NotAfter, ca.Cert.NotAfter)
	}
	if _, err := ca.Issue(NodeRequest{Node: "n", Role: RoleWorker, PublicKey: &key.PublicKey}, ca.Cert.NotAfter, MinCertTTL); err == nil {
		t.Fatal("issued past the CA's expiry")
	}
}

func TestIssueValidates(t *testing.T) {
	ca := mustCA(t, "c", t0)
	key, _ := NewKey()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	good := NodeRequest{Node: "n", Role: RoleVoter, PublicKey: &key.PublicKey}
	with := func(f func(*NodeRequest)) NodeRequest { r := good; f(&r); return r }
	tooMany := manyIPs(MaxIPs + 1)
	cases := []struct {
		name string
		req  NodeRequest
		ttl  time.Duration
		want string
	}{
		{"empty name", with(func(r *NodeRequest) { r.Node = "" }), time.Hour, "node name"},
		{"upper case", with(func(r *NodeRequest) { r.Node = "Node" }), time.Hour, "node name"},
		{"leading dash", with(func(r *NodeRequest) { r.Node = "-n" }), time.Hour, "node name"},
		{"trailing dash", with(func(r *NodeRequest) { r.Node = "n-" }), time.Hour, "node name"},
		{"underscore", with(func(r *NodeRequest) { r.Node = "a_b" }), time.Hour, "node name"},
		{"dot", with(func(r *NodeRequest) { r.Node = "a.b" }), time.Hour, "node name"},
		{"64 chars", with(func(r *NodeRequest) { r.Node = strings.Repeat("a", 64) }), time.Hour, "node name"},
		{"no role", with(func(r *NodeRequest) { r.Role = "" }), time.Hour, "role"},
		{"admin role", with(func(r *NodeRequest) { r.Role = "admin" }), time.Hour, "role"},
		{"too many IPs", with(func(r *NodeRequest) { r.IPs = tooMany }), time.Hour, "ips"},
		{"bad IP", with(func(r *NodeRequest) { r.IPs = []net.IP{{1, 2}} }), time.Hour, "ips[0]"},
		{"no key", with(func(r *NodeRequest) { r.PublicKey = nil }), time.Hour, "public key"},
		{"P-384 key", with(func(r *NodeRequest) { r.PublicKey = &p384.PublicKey }), time.Hour, "P-256"},
		{"ed25519 key", with(func(r *NodeRequest) { r.PublicKey = edPub }), time.Hour, "public key"},
		{"ttl too short", good, MinCertTTL - time.Second, "ttl"},
		{"ttl too long", good, MaxCertTTL + time.Second, "ttl"},
		{"ttl negative", good, -time.Hour, "ttl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ca.Issue(tc.req, t0, tc.ttl); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
	for _, ok := range []string{"a", "0", "a-b", "node-1", strings.Repeat("z", 63)} {
		if err := CheckNodeName(ok); err != nil {
			t.Errorf("CheckNodeName(%q): %v", ok, err)
		}
	}
	if _, err := ca.Issue(with(func(r *NodeRequest) { r.IPs = tooMany[:MaxIPs] }), t0, MaxCertTTL); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
}

func TestCSRRoundTrip(t *testing.T) {
	key, _ := NewKey()
	ips := []net.IP{net.ParseIP("192.0.2.1")}
	p, err := NewCSR(key, "host-1", ips)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(p)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "host-1" || len(csr.IPAddresses) != 1 || !csr.IPAddresses[0].Equal(ips[0]) {
		t.Fatalf("CSR %+v", csr.Subject)
	}
	if pub, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Fatal("CSR public key differs")
	}
	// The CA can issue from it directly.
	ca := mustCA(t, "c", t0)
	if _, err := ca.Issue(NodeRequest{Node: csr.Subject.CommonName, Role: RoleWorker, IPs: csr.IPAddresses, PublicKey: csr.PublicKey}, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := NewCSR(key, "Bad", nil); err == nil {
		t.Fatal("NewCSR took a bad name")
	}
	if _, err := NewCSR(key, "n", manyIPs(MaxIPs+1)); err == nil {
		t.Fatal("NewCSR took too many IPs")
	}
	if _, err := NewCSR(nil, "n", nil); err == nil {
		t.Fatal("NewCSR took a nil key")
	}
}

func manyIPs(n int) []net.IP {
	ips := make([]net.IP, n)
	for i := range ips {
		ips[i] = net.IPv4(10, 0, 1, byte(i))
	}
	return ips
}

// rawCSR signs a request template without NewCSR's checks.
func rawCSR(t testing.TB, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestParseCSRRefuses(t *testing.T) {
	key, _ := NewKey()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	good, _ := NewCSR(key, "n", nil)
	block, _ := pem.Decode(good)
	tampered := append([]byte{}, block.Bytes...)
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	u, _ := url.Parse("spiffe://x/y")
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"too big", append(append([]byte{}, good...), make([]byte, MaxCSRBytes)...), "at most"},
		{"trailing junk", append(append([]byte{}, good...), "junk"...), "trailing"},
		{"wrong type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), "type"},
		{"not PEM", []byte("hello"), "no PEM"},
		{"bad signature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}), "csr"},
		{"bad CN", rawCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Not_OK"}}), "CN"},
		{"P-384", rawCSR(t, p384, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n"}}), "P-256"},
		{"DNS SAN", rawCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n"}, DNSNames: []string{"evil"}}), "only IP"},
		{"URI SAN", rawCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n"}, URIs: []*url.URL{u}}), "only IP"},
		{"too many IPs", rawCSR(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n"}, IPAddresses: manyIPs(MaxIPs + 1)}), "ips"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCSR(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPeerOfStrict(t *testing.T) {
	ca := mustCA(t, "c", t0)
	key, _ := NewKey()
	sign := func(subj pkix.Name) *x509.Certificate {
		serial, _ := randomSerial()
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: serial, Subject: subj, NotBefore: t0, NotAfter: t0.Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}, ca.Cert, &key.PublicKey, ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	cases := map[string]*x509.Certificate{
		"CA cert":        ca.Cert,
		"nil":            nil,
		"no OU":          sign(pkix.Name{CommonName: "n"}),
		"two roles":      sign(pkix.Name{CommonName: "n", OrganizationalUnit: []string{"shoal:worker", "shoal:voter"}}),
		"unknown role":   sign(pkix.Name{CommonName: "n", OrganizationalUnit: []string{"shoal:admin"}}),
		"prefix only":    sign(pkix.Name{CommonName: "n", OrganizationalUnit: []string{"shoal:"}}),
		"other prefix":   sign(pkix.Name{CommonName: "n", OrganizationalUnit: []string{"voter"}}),
		"case differs":   sign(pkix.Name{CommonName: "n", OrganizationalUnit: []string{"shoal:Voter"}}),
		"bad node name":  sign(pkix.Name{CommonName: "N", OrganizationalUnit: []string{"shoal:voter"}}),
		"empty CN":       sign(pkix.Name{OrganizationalUnit: []string{"shoal:voter"}}),
		"trailing space": sign(pkix.Name{CommonName: "n", OrganizationalUnit: []string{"shoal:voter "}}),
	}
	for name, c := range cases {
		if _, err := PeerOf(c); !errors.Is(err, ErrNotShoalCert) {
			t.Errorf("%s: err %v, want ErrNotShoalCert", name, err)
		}
	}
	if p, err := PeerOf(sign(pkix.Name{CommonName: "n", OrganizationalUnit: []string{"shoal:voter"}})); err != nil || p.Role != RoleVoter {
		t.Fatalf("well-formed: %+v %v", p, err)
	}
}

// Property: CheckNodeName agrees with the DNS-1123 label grammar on random
// strings over an alphabet that mixes allowed and refused characters.
func TestCheckNodeNameMatchesGrammar(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	rng := mrand.New(mrand.NewPCG(1, 2))
	const alphabet = "az09-_.A "
	for i := 0; i < 20000; i++ {
		n := rng.IntN(70)
		b := make([]byte, n)
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		want := len(s) <= MaxNodeNameLen && label.MatchString(s)
		if got := CheckNodeName(s) == nil; got != want {
			t.Fatalf("CheckNodeName(%q) ok=%v, grammar says %v", s, got, want)
		}
	}
}
