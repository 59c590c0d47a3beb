package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestCARoundTrip(t *testing.T) {
	ca := mustCA(t, "cluster-1", t0)
	if !ca.Cert.IsCA || ca.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA cert: IsCA %v alg %v", ca.Cert.IsCA, ca.Cert.PublicKeyAlgorithm)
	}
	if got := ca.Cert.NotAfter.Sub(t0); got != CALifetime {
		t.Fatalf("CA lifetime %s, want %s", got, CALifetime)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM, keyPEM)
	if err != nil {
		t.Fatalf("ParseCA: %v", err)
	}
	if back.Fingerprint() != ca.Fingerprint() || !back.Cert.Equal(ca.Cert) {
		t.Fatal("ParseCA gave another CA")
	}
	fp := ca.Fingerprint()
	if len(fp) != FingerprintLen || strings.Trim(fp, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Fatalf("fingerprint %q: want %d chars of lower-case base32", fp, FingerprintLen)
	}
	if mustCA(t, "cluster-1", t0).Fingerprint() == fp {
		t.Fatal("two CAs share a fingerprint")
	}
	// The parsed CA signs certificates the original verifies.
	c, _ := mustNode(t, back, "n1", RoleWorker, t0, MinCertTTL)
	leaf, err := ParseCertPEM(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatal(err)
	}
}

func TestParseCARefuses(t *testing.T) {
	ca := mustCA(t, "a", t0)
	other := mustCA(t, "b", t0)
	otherKey, _ := other.KeyPEM()
	leaf, leafKey := mustNode(t, ca, "n", RoleVoter, t0, MinCertTTL)
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"key of another CA", ca.CertPEM, otherKey, "does not match"},
		{"leaf certificate", leaf, leafKey, "not a CA"},
		{"empty cert", nil, otherKey, "no PEM block"},
		{"empty key", ca.CertPEM, nil, "CA key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCA(tc.cert, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewCARefusesClusterID(t *testing.T) {
	for _, id := range []string{"", "a b", "x\n", strings.Repeat("a", MaxClusterIDLen+1)} {
		if _, err := NewCA(id, t0); err == nil || !strings.Contains(err.Error(), "clusterID") {
			t.Errorf("NewCA(%q): %v, want a clusterID error", id, err)
		}
	}
}

func TestParseCertPEMStrict(t *testing.T) {
	ca := mustCA(t, "a", t0)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"trailing junk", append(append([]byte{}, ca.CertPEM...), "junk"...), "trailing"},
		{"two certs", append(append([]byte{}, ca.CertPEM...), ca.CertPEM...), "trailing"},
		{"wrong type", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ca.Cert.Raw}), "type"},
		{"too big", make([]byte, MaxCertBytes+1), "at most"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), "certificate"},
		{"headers", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"a": "b"}, Bytes: ca.Cert.Raw}), "headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCertPEM(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseCertPEM(append([]byte("\n"), append(ca.CertPEM, "\n\n"...)...)); err != nil {
		t.Fatalf("white space around the block: %v", err)
	}
}

func TestKeyPEM(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := MarshalKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeyPEM(p)
	if err != nil || !back.Equal(k) {
		t.Fatalf("round trip: %v", err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	back, err = ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || !back.Equal(k) {
		t.Fatalf("PKCS#8: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ = x509.MarshalECPrivateKey(p384)
	if _, err := ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Fatalf("P-384 key: %v", err)
	}
	if _, err := ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}})); err == nil {
		t.Fatal("RSA block accepted")
	}
	if _, err := MarshalKeyPEM(nil); err == nil {
		t.Fatal("nil key accepted")
	}
}
