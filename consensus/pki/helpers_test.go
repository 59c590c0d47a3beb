package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// t0 is the fixed "now" of tests that do not do real handshakes.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func mustCA(t testing.TB, id string, now time.Time) *CA {
	t.Helper()
	ca, err := NewCA(id, now)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// mustNode issues a node certificate and returns it with its key, as PEM.
func mustNode(t testing.TB, ca *CA, node string, role Role, now time.Time, ttl time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err = ca.Issue(NodeRequest{Node: node, Role: role, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: &key.PublicKey}, now, ttl)
	if err != nil {
		t.Fatalf("Issue(%s, %s): %v", node, role, err)
	}
	keyPEM, err = MarshalKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// mustHolder makes a Holder for a fresh node certificate valid from now.
func mustHolder(t testing.TB, ca *CA, node string, role Role) *Holder {
	t.Helper()
	c, k := mustNode(t, ca, node, role, time.Now(), time.Hour)
	h, err := NewHolder(ca.CertPEM, c, k)
	if err != nil {
		t.Fatalf("NewHolder: %v", err)
	}
	return h
}

// hsResult is what each side of a handshake saw.
type hsResult struct {
	serverErr, clientErr     error
	serverState, clientState tls.ConnectionState
}

func (r hsResult) ok() bool { return r.serverErr == nil && r.clientErr == nil }

// handshake runs a real TLS handshake over loopback TCP (not net.Pipe: a
// synchronous pipe deadlocks when one side sends an alert while the other
// is still writing its flight, which kernel buffers absorb). After a
// successful handshake the server writes one byte and the client reads it,
// so that a server refusing the client's certificate (which TLS 1.3 reports
// after the client's Handshake has returned) shows up on the client too.
// Every step has a generous deadline: the machine is shared and loaded.
func handshake(t testing.TB, server, client *tls.Config) hsResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(60 * time.Second)
	var r hsResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc, err := ln.Accept()
		if err != nil {
			r.serverErr = err
			return
		}
		defer sc.Close()
		_ = sc.SetDeadline(deadline)
		s := tls.Server(sc, server)
		if r.serverErr = s.Handshake(); r.serverErr != nil {
			return
		}
		r.serverState = s.ConnectionState()
		_, r.serverErr = s.Write([]byte{'x'})
	}()
	cc, err := net.DialTimeout("tcp", ln.Addr().String(), 60*time.Second)
	if err != nil {
		ln.Close()
		<-done
		t.Fatal(err)
	}
	_ = cc.SetDeadline(deadline)
	c := tls.Client(cc, client)
	if r.clientErr = c.Handshake(); r.clientErr == nil {
		r.clientState = c.ConnectionState()
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err != nil {
			r.clientErr = err
		}
	}
	cc.Close()
	<-done
	if os.Getenv("PKI_DEBUG") != "" {
		t.Logf("server %v; client %v", r.serverErr, r.clientErr)
	}
	var ne net.Error
	if errors.As(r.serverErr, &ne) && ne.Timeout() || errors.As(r.clientErr, &ne) && ne.Timeout() {
		t.Fatalf("handshake timed out: server %v, client %v", r.serverErr, r.clientErr)
	}
	return r
}

// serialOf is the Peer.Serial of a PEM certificate.
func serialOf(t testing.TB, certPEM []byte) string {
	t.Helper()
	c, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	p, err := PeerOf(c)
	if err != nil {
		t.Fatal(err)
	}
	return p.Serial
}
