package identity

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// joinedAgent is an agent joined to tc that serves TLS with its Holder.
type joinedAgent struct {
	local  *Local
	holder *pki.Holder
	addr   string // its own TLS listener
	client *http.Client
}

func joinAgent(t *testing.T, tc *testCluster, node string, worker bool) *joinedAgent {
	t.Helper()
	voter, wk := tc.tokens(t)
	tok := voter
	if worker {
		tok = wk
	}
	l, err := Join(ctxTimeout(t, 30*time.Second), []string{tc.addr}, tok, node, testIPs)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	h, err := l.Holder()
	if err != nil {
		t.Fatal(err)
	}
	a := &joinedAgent{local: l, holder: h, client: clientFor(h.ClientConfig())}
	a.addr = serveTLS(t, http.NotFoundHandler(), h.ServerConfig(false))
	return a
}

// serialSeen dials addr and returns the serial of the certificate it presents.
func serialSeen(t *testing.T, addr string, ca []byte) string {
	t.Helper()
	caCert, _ := pki.ParseCertPEM(ca)
	conn, err := tls.Dial("tcp", addr, pinnedTLS(caCert))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	p, err := pki.PeerOf(conn.ConnectionState().PeerCertificates[0])
	if err != nil {
		t.Fatal(err)
	}
	return p.Serial
}

func (a *joinedAgent) renewer(t *testing.T, tc *testCluster, clock Clock, dataDir string) *Renewer {
	t.Helper()
	r, err := NewRenewer(RenewerConfig{
		Holder: a.holder, IPs: testIPs, DataDir: dataDir, Clock: clock, Logger: discardLogger(),
		MinBackoff: time.Second, MaxBackoff: 4 * time.Second,
		Request: func(ctx context.Context, req CertificateRequest) (*JoinResponse, error) {
			return RequestCertificate(ctx, a.client, tc.addr, req)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenewerSwapsCertificateWithoutRestart(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := joinAgent(t, tc, "n2", false)
	dir := t.TempDir()
	if err := a.local.Save(dir); err != nil {
		t.Fatal(err)
	}
	before := a.holder.Peer()
	if s := serialSeen(t, a.addr, a.local.CACert); s != before.Serial {
		t.Fatalf("first handshake sees serial %s, holder has %s", s, before.Serial)
	}
	clock := newFakeClock(before.NotBefore.Add(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.renewer(t, tc, clock, dir).Run(ctx) }()
	defer func() { cancel(); <-done }()

	eventually(t, 10*time.Second, "the renewer to wait", func() bool { return clock.Waiting() == 1 })
	// Half the life: not due yet.
	clock.Advance(DefaultCertTTL/2 - time.Hour)
	if got := a.holder.Peer().Serial; got != before.Serial {
		t.Fatalf("renewed at half life")
	}
	// Past two thirds: due.
	clock.Advance(DefaultCertTTL / 5)
	eventually(t, 30*time.Second, "the renewal", func() bool { return a.holder.Peer().Serial != before.Serial })
	after := a.holder.Peer()
	if after.Node != "n2" || after.Role != before.Role {
		t.Errorf("renewed peer %+v, was %+v", after, before)
	}
	if s := serialSeen(t, a.addr, a.local.CACert); s != after.Serial || s == before.Serial {
		t.Errorf("second handshake sees serial %s; want the renewed %s (was %s)", s, after.Serial, before.Serial)
	}
	// It waits for the next renewal, and the new pair is on disk.
	eventually(t, 10*time.Second, "the renewer to wait again", func() bool { return clock.Waiting() == 1 })
	l, err := Load(dir)
	if err != nil {
		t.Fatalf("Load after the renewal: %v", err)
	}
	if p, _ := l.Peer(); p.Serial != after.Serial {
		t.Errorf("on disk serial %s, want %s", p.Serial, after.Serial)
	}
}

func TestRenewerRetriesWithBackoff(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := joinAgent(t, tc, "n2", true)
	before := a.holder.Peer()
	tc.cluster.leader.Store(false) // 503s
	clock := newFakeClock(RenewAt(before.NotBefore, before.NotAfter, 0).Add(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.renewer(t, tc, clock, "").Run(ctx) }()
	defer func() { cancel(); <-done }()
	// Due at once; the first try fails, then it waits its back-off.
	eventually(t, 30*time.Second, "a back-off wait", func() bool { return clock.Waiting() == 1 })
	tc.cluster.leader.Store(true)
	clock.Advance(time.Second)
	eventually(t, 30*time.Second, "the renewal after the retry", func() bool { return a.holder.Peer().Serial != before.Serial })
	if p := a.holder.Peer(); p.Role != pki.RoleWorker {
		t.Errorf("renewed as %s, want worker", p.Role)
	}
}

func TestRevokedNodeCannotRenew(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := joinAgent(t, tc, "n2", false)
	before := a.holder.Peer()
	r := a.renewer(t, tc, newFakeClock(time.Now()), "")
	if err := r.Renew(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatalf("Renew before the revocation: %v", err)
	}
	renewed := a.holder.Peer()
	tc.cluster.edit(func(rec *Record) { rec.Revoke("n2", time.Now()) })
	err := r.Renew(ctxTimeout(t, 30*time.Second))
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("Renew of a revoked node: %v; want 403 revoked", err)
	}
	if a.holder.Peer().Serial != renewed.Serial {
		t.Errorf("the holder changed after a refused renewal")
	}
	rec, _ := tc.cluster.Record(context.Background())
	if !rec.Revoked(before) || !rec.Revoked(renewed) {
		t.Errorf("Record.Revoked is false for a revoked node's certificates")
	}
	if later := (pki.Peer{Node: "n2", NotBefore: time.Now().Add(time.Hour)}); rec.Revoked(later) {
		t.Errorf("a certificate issued after the revocation counts as revoked")
	}
	if other := (pki.Peer{Node: "n3", NotBefore: before.NotBefore}); rec.Revoked(other) {
		t.Errorf("another node counts as revoked")
	}
	// Joined again with a token right after its revocation, the node gets
	// a certificate that is not revoked and renews.
	b := joinAgent(t, tc, "n2", false)
	rec, _ = tc.cluster.Record(context.Background())
	if rec.Revoked(b.holder.Peer()) {
		t.Errorf("the certificate of a join after the revocation counts as revoked")
	}
	if err := b.renewer(t, tc, newFakeClock(time.Now()), "").Renew(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Errorf("Renew after joining again: %v", err)
	}
}

func TestRenewalOnlyForOwnNode(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := joinAgent(t, tc, "n2", true)
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "n3", testIPs)
	_, err := RequestCertificate(ctxTimeout(t, 30*time.Second), a.client, tc.addr, CertificateRequest{Node: "n3", CSR: string(csr)})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("renewing another node's certificate: %v; want 403", err)
	}
	// Without a client certificate: 401.
	caCert, _ := pki.ParseCertPEM(tc.local.CACert)
	_, err = RequestCertificate(ctxTimeout(t, 30*time.Second), clientFor(pinnedTLS(caCert)), tc.addr, CertificateRequest{Node: "n2", CSR: string(csr)})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("renewal without a certificate: %v; want 401", err)
	}
}

func TestRenewerConfigValidate(t *testing.T) {
	h := &pki.Holder{}
	req := func(context.Context, CertificateRequest) (*JoinResponse, error) { return nil, errors.New("x") }
	for _, c := range []struct {
		cfg  RenewerConfig
		want string
	}{
		{RenewerConfig{Request: req}, "Holder"},
		{RenewerConfig{Holder: h}, "Request"},
		{RenewerConfig{Holder: h, Request: req, MinBackoff: -1}, "MinBackoff"},
		{RenewerConfig{Holder: h, Request: req, MinBackoff: time.Minute, MaxBackoff: time.Second}, "MinBackoff"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v; want an error naming %s", c.cfg, err, c.want)
		}
	}
}

func TestRenewAt(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := RenewAt(nb, nb.Add(24*time.Hour), 0); !got.Equal(nb.Add(16 * time.Hour)) {
		t.Errorf("RenewAt = %v, want two thirds of the life", got)
	}
	if got := RenewAt(nb, nb.Add(24*time.Hour), 0.05); !got.Equal(nb.Add(16*time.Hour - 72*time.Minute)) {
		t.Errorf("RenewAt with jitter = %v", got)
	}
}
