package consensus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testTLS returns a mutual-TLS configuration whose certificate, signed by a
// fresh CA, is valid for 127.0.0.1 as server and as client.
func testTLS(t testing.TB) *tls.Config {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoal test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "voter"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

func TestStreamLayer(t *testing.T) {
	for name, cfg := range map[string]*tls.Config{"tcp": nil, "mtls": testTLS(t)} {
		t.Run(name, func(t *testing.T) {
			sl, err := newStreamLayer("127.0.0.1:0", "", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer sl.Close()
			go func() { // echo one message
				c, err := sl.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err == nil {
					_, _ = c.Write(buf)
				}
			}()
			conn, err := sl.Dial(raft.ServerAddress("127.0.0.1:"+portOf(t, sl.Addr())), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 5)
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != "hello" {
				t.Fatalf("echo: %q, %v", got, err)
			}
		})
	}
}

func portOf(t testing.TB, a net.Addr) string {
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// With mutual TLS, a peer without a certificate signed by the cluster CA
// gets nothing through.
func TestStreamLayerRejectsClientWithoutCert(t *testing.T) {
	cfg := testTLS(t)
	sl, err := newStreamLayer("127.0.0.1:0", "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	go func() {
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	anon := &tls.Config{RootCAs: cfg.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", sl.Addr().String(), anon)
	if err != nil {
		return // rejected during the handshake
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = conn.Write([]byte("x"))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("a client without a certificate exchanged data with the raft listener")
	}
}

func TestStreamLayerAdvertise(t *testing.T) {
	if _, err := newStreamLayer("0.0.0.0:0", "", nil); err == nil {
		t.Fatal("listening on 0.0.0.0 without AdvertiseAddr was accepted")
	}
	sl, err := newStreamLayer("0.0.0.0:0", "10.1.2.3:7071", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if got := sl.Addr().String(); got != "10.1.2.3:7071" {
		t.Fatalf("Addr = %s, want the advertised address", got)
	}
}
