package pki

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHandshakes(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	other := mustCA(t, "two", time.Now())
	voterA := mustHolder(t, ca, "a", RoleVoter)
	voterB := mustHolder(t, ca, "b", RoleVoter)
	worker := mustHolder(t, ca, "w", RoleWorker)
	stranger := mustHolder(t, other, "a", RoleVoter) // same name and role, other CA

	expC, expK := mustNode(t, ca, "old", RoleVoter, time.Now().Add(-3*time.Hour), time.Hour)
	expired, err := NewHolder(ca.CertPEM, expC, expK)
	if err != nil {
		t.Fatal(err)
	}
	noCert := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}

	cases := []struct {
		name           string
		server, client *tls.Config
		// wantOK, or which side must refuse ("server" or "client").
		wantOK  bool
		refuser string
	}{
		{"server+client same CA", voterA.ServerConfig(true), voterB.ClientConfig(), true, ""},
		{"server optional cert, none given", voterA.ServerConfig(false), noCert, true, ""},
		{"server requires cert, none given", voterA.ServerConfig(true), noCert, false, "server"},
		{"server optional cert, other CA given", voterA.ServerConfig(false), presenting(stranger), false, "server"},
		{"server required cert, other CA", voterA.ServerConfig(true), presenting(stranger), false, "server"},
		{"client refuses server of other CA", serving(stranger), voterA.ClientConfig(), false, "client"},
		{"worker ok for API server", worker.ServerConfig(true), voterA.ClientConfig(), true, ""},
		{"worker ok as API client", voterA.ServerConfig(true), worker.ClientConfig(), true, ""},
		{"expired client cert refused", voterA.ServerConfig(true), presenting(expired), false, "server"},
		{"expired server cert refused", serving(expired), voterA.ClientConfig(), false, "client"},
		{"raft voter to voter", voterA.RaftConfig(), voterB.RaftConfig(), true, ""},
		{"raft worker dials voter", voterA.RaftConfig(), worker.RaftConfig(), false, "server"},
		{"raft worker presents to voter", voterA.RaftConfig(), presenting(worker), false, "server"},
		{"raft voter dials worker", worker.RaftConfig(), voterA.RaftConfig(), false, "client"},
		{"raft voter dials a permissive worker", serving(worker), voterA.RaftConfig(), false, "client"},
		{"raft other CA dials", voterA.RaftConfig(), presenting(stranger), false, "server"},
		{"raft dials other CA", serving(stranger), voterA.RaftConfig(), false, "client"},
		{"raft expired dials", voterA.RaftConfig(), presenting(expired), false, "server"},
		{"raft dials expired", serving(expired), voterA.RaftConfig(), false, "client"},
		{"raft no client cert", voterA.RaftConfig(), noCert, false, "server"},
		{"raft server with plain client config", voterA.RaftConfig(), voterB.ClientConfig(), true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := handshake(t, tc.server, tc.client)
			if tc.wantOK {
				if !r.ok() {
					t.Fatalf("want success: server %v, client %v", r.serverErr, r.clientErr)
				}
				return
			}
			if r.ok() {
				t.Fatal("handshake succeeded, want refusal")
			}
			// The refusal must be the refuser's own verdict, not a remote alert.
			err := r.serverErr
			if tc.refuser == "client" {
				err = r.clientErr
			}
			if err == nil || !strings.Contains(err.Error(), "pki:") && !strings.Contains(err.Error(), "didn't provide a certificate") {
				t.Fatalf("%s error %v, want its own refusal (server %v, client %v)", tc.refuser, err, r.serverErr, r.clientErr)
			}
		})
	}
}

// presenting is a client that shows h's certificate and trusts any server,
// so that only the server's verdict on h is tested.
func presenting(h *Holder) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetClientCertificate: h.getClientCertificate, InsecureSkipVerify: true}
}

// serving is a server that shows h's certificate and takes any client, so
// that only the client's verdict on h is tested.
func serving(h *Holder) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: h.getCertificate, ClientAuth: tls.RequestClientCert}
}

func TestRaftWorkerRefusedNamesRole(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	voter := mustHolder(t, ca, "v", RoleVoter)
	worker := mustHolder(t, ca, "w", RoleWorker)
	r := handshake(t, voter.RaftConfig(), worker.RaftConfig())
	if !errors.Is(r.serverErr, ErrNotVoter) {
		t.Fatalf("server error %v, want ErrNotVoter", r.serverErr)
	}
	r = handshake(t, worker.RaftConfig(), voter.RaftConfig())
	if !errors.Is(r.clientErr, ErrNotVoter) {
		t.Fatalf("client error %v, want ErrNotVoter", r.clientErr)
	}
}

func TestPeerFromState(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	a := mustHolder(t, ca, "a", RoleVoter)
	w := mustHolder(t, ca, "w", RoleWorker)
	r := handshake(t, a.ServerConfig(true), w.ClientConfig())
	if !r.ok() {
		t.Fatalf("handshake: %v / %v", r.serverErr, r.clientErr)
	}
	p, ok := PeerFromState(&r.serverState)
	if !ok || p.Node != "w" || p.Role != RoleWorker || p != w.Peer() {
		t.Fatalf("server sees %+v %v, want %+v", p, ok, w.Peer())
	}
	p, ok = PeerFromState(&r.clientState)
	if !ok || p != a.Peer() {
		t.Fatalf("client sees %+v %v, want %+v", p, ok, a.Peer())
	}
	if _, ok := PeerFromState(nil); ok {
		t.Fatal("nil state gave a peer")
	}
	if _, ok := PeerFromState(&tls.ConnectionState{}); ok {
		t.Fatal("empty state gave a peer")
	}
}

// Update switches the certificate for the next handshake: two handshakes
// see two serials, and open configs need no rebuild.
func TestHolderUpdateRotates(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	srv := mustHolder(t, ca, "s", RoleVoter)
	cli := mustHolder(t, ca, "c", RoleVoter)
	sc, cc := srv.RaftConfig(), cli.RaftConfig()

	r1 := handshake(t, sc, cc)
	if !r1.ok() {
		t.Fatalf("first handshake: %v / %v", r1.serverErr, r1.clientErr)
	}
	p1, _ := PeerFromState(&r1.clientState)

	newC, newK := mustNode(t, ca, "s", RoleVoter, time.Now(), 2*time.Hour)
	if err := srv.Update(newC, newK); err != nil {
		t.Fatalf("Update: %v", err)
	}
	r2 := handshake(t, sc, cc)
	if !r2.ok() {
		t.Fatalf("second handshake: %v / %v", r2.serverErr, r2.clientErr)
	}
	p2, _ := PeerFromState(&r2.clientState)
	if p1.Serial == p2.Serial || p2.Serial != srv.Peer().Serial {
		t.Fatalf("serials %s then %s, holder has %s", p1.Serial, p2.Serial, srv.Peer().Serial)
	}
	if !srv.NotAfter().Equal(srv.Peer().NotAfter) || srv.NotAfter().Sub(p1.NotAfter) < 30*time.Minute {
		t.Fatalf("NotAfter %s did not move past %s", srv.NotAfter(), p1.NotAfter)
	}

	// Rotation down to a worker certificate takes the voter out of Raft.
	wc, wk := mustNode(t, ca, "s", RoleWorker, time.Now(), time.Hour)
	if err := srv.Update(wc, wk); err != nil {
		t.Fatal(err)
	}
	if r3 := handshake(t, sc, cc); r3.clientErr == nil {
		t.Fatal("client accepted a server rotated to a worker certificate")
	}
}

func TestHolderRefuses(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	other := mustCA(t, "two", time.Now())
	c, k := mustNode(t, ca, "n", RoleVoter, time.Now(), time.Hour)
	oc, ok := mustNode(t, other, "n", RoleVoter, time.Now(), time.Hour)
	c2, k2 := mustNode(t, ca, "m", RoleVoter, time.Now(), time.Hour)
	caKey, _ := ca.KeyPEM()

	for _, tc := range []struct {
		name            string
		caPEM, crt, key []byte
		want            string
	}{
		{"other CA's cert", ca.CertPEM, oc, ok, "not signed by the CA"},
		{"key of another cert", ca.CertPEM, c, k2, "does not match"},
		{"leaf as CA", c, c, k, "not a CA"},
		{"CA as leaf", ca.CertPEM, ca.CertPEM, caKey, "not a shoal node certificate"},
		{"garbage CA", []byte("nope"), c, k, "CA certificate"},
		{"garbage key", ca.CertPEM, c, []byte("nope"), "node key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewHolder(tc.caPEM, tc.crt, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
	h, err := NewHolder(ca.CertPEM, c, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Update(oc, ok); err == nil {
		t.Fatal("Update took another CA's certificate")
	}
	if err := h.Update(c2, k2); err == nil || !strings.Contains(err.Error(), "node") {
		t.Fatalf("Update to another node's name: %v", err)
	}
	if h.Peer().Node != "n" || h.CACert().Equal(other.Cert) || !h.CACert().Equal(ca.Cert) {
		t.Fatal("a refused Update changed the holder")
	}
}

// Handshakes running while another goroutine rotates the certificate always
// see one whole pair (the race detector checks the rest), and every serial
// seen is one the holder was given.
func TestHolderUpdateConcurrent(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	srv := mustHolder(t, ca, "s", RoleVoter)
	cli := mustHolder(t, ca, "c", RoleVoter)
	const rotations = 8
	type pair struct{ c, k []byte }
	pairs := make([]pair, rotations)
	serials := map[string]bool{srv.Peer().Serial: true}
	for i := range pairs {
		pairs[i].c, pairs[i].k = mustNode(t, ca, "s", RoleVoter, time.Now(), time.Hour)
		serials[serialOf(t, pairs[i].c)] = true
	}
	done := make(chan error, 1)
	go func() {
		for _, p := range pairs {
			if err := srv.Update(p.c, p.k); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	sc, cc := srv.RaftConfig(), cli.RaftConfig()
	for i := 0; i < 2*rotations; i++ {
		r := handshake(t, sc, cc)
		if !r.ok() {
			t.Fatalf("handshake %d: %v / %v", i, r.serverErr, r.clientErr)
		}
		if p, ok := PeerFromState(&r.clientState); !ok || !serials[p.Serial] {
			t.Fatalf("handshake %d saw serial %q, not one given to the holder", i, p.Serial)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if srv.Peer().Serial != serialOf(t, pairs[rotations-1].c) {
		t.Fatal("holder does not hold the last certificate")
	}
}

func TestServerOptionalClientCertGivesNoPeer(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	srv := mustHolder(t, ca, "s", RoleVoter)
	r := handshake(t, srv.ServerConfig(false), &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
	if !r.ok() {
		t.Fatalf("handshake: %v / %v", r.serverErr, r.clientErr)
	}
	if p, ok := PeerFromState(&r.serverState); ok {
		t.Fatalf("anonymous client has a peer identity %+v", p)
	}
	if r.serverState.Version != tls.VersionTLS13 {
		t.Fatalf("version %x, want TLS 1.3", r.serverState.Version)
	}
	// A TLS 1.2-only client is refused.
	r = handshake(t, srv.ServerConfig(false), &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true})
	if r.ok() {
		t.Fatal("TLS 1.2 client accepted")
	}
}

// A certificate of our CA with the right role but only one extended key
// usage is refused where the other usage is needed.
func TestHandshakeChecksKeyUsage(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	voter := mustHolder(t, ca, "v", RoleVoter)
	narrow := func(u x509.ExtKeyUsage) *Holder {
		key, _ := NewKey()
		serial, _ := randomSerial()
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{CommonName: "n", OrganizationalUnit: []string{"shoal:voter"}},
			NotBefore:    time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{u},
		}, ca.Cert, &key.PublicKey, ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		kp, _ := MarshalKeyPEM(key)
		h, err := NewHolder(ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	clientOnly, serverOnly := narrow(x509.ExtKeyUsageClientAuth), narrow(x509.ExtKeyUsageServerAuth)
	if r := handshake(t, voter.RaftConfig(), clientOnly.RaftConfig()); r.serverErr == nil {
		t.Fatal("Raft accepted a client-auth-only certificate")
	}
	if r := handshake(t, voter.RaftConfig(), serverOnly.RaftConfig()); r.serverErr == nil {
		t.Fatal("Raft accepted a server-auth-only certificate")
	}
	if r := handshake(t, voter.ServerConfig(true), serverOnly.ClientConfig()); r.serverErr == nil {
		t.Fatal("server accepted a server-auth-only client certificate")
	}
	if r := handshake(t, clientOnly.ServerConfig(false), voter.ClientConfig()); r.clientErr == nil {
		t.Fatal("client accepted a client-auth-only server certificate")
	}
	if r := handshake(t, voter.ServerConfig(true), clientOnly.ClientConfig()); !r.ok() {
		t.Fatalf("client-auth certificate as a client: %v / %v", r.serverErr, r.clientErr)
	}
}

// SetPeerCheck refuses a removed node on every config at once, and clearing
// it lets the node back.
func TestHolderPeerCheck(t *testing.T) {
	ca := mustCA(t, "one", time.Now())
	srv := mustHolder(t, ca, "s", RoleVoter)
	gone := mustHolder(t, ca, "gone", RoleVoter)
	kept := mustHolder(t, ca, "kept", RoleVoter)
	removed := errors.New("removed from the cluster")
	srv.SetPeerCheck(func(p Peer) error {
		if p.Node == "gone" {
			return removed
		}
		return nil
	})
	for name, cfg := range map[string]*tls.Config{"server": srv.ServerConfig(true), "raft": srv.RaftConfig()} {
		if r := handshake(t, cfg, gone.ClientConfig()); !errors.Is(r.serverErr, ErrPeerRefused) || !strings.Contains(r.serverErr.Error(), "removed") {
			t.Fatalf("%s: removed node: server %v", name, r.serverErr)
		}
		if r := handshake(t, cfg, kept.RaftConfig()); !r.ok() {
			t.Fatalf("%s: kept node: %v / %v", name, r.serverErr, r.clientErr)
		}
	}
	// As a client too: a removed node cannot answer as a server.
	if r := handshake(t, gone.ServerConfig(false), srv.ClientConfig()); !errors.Is(r.clientErr, ErrPeerRefused) {
		t.Fatalf("client to removed server: %v", r.clientErr)
	}
	srv.SetPeerCheck(nil)
	if r := handshake(t, srv.RaftConfig(), gone.RaftConfig()); !r.ok() {
		t.Fatalf("after clearing the check: %v / %v", r.serverErr, r.clientErr)
	}
}
