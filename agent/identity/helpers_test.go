package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// fakeCluster keeps the record in memory as the Secret the store would
// hold (every read decodes it), with compare-and-swap updates.
type fakeCluster struct {
	mu     sync.Mutex
	secret *api.Secret
	rv     int
	kek    []byte
	leader atomic.Bool
}

func newFakeCluster(rec Record, kek []byte) *fakeCluster {
	c := &fakeCluster{rv: 1, kek: kek}
	rec.ResourceVersion = "1"
	c.secret = EncodeRecord(rec)
	c.leader.Store(true)
	return c
}

func (c *fakeCluster) Record(context.Context) (Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return DecodeRecord(c.secret)
}

var errCAS = errors.New("conflict: the record changed")

func (c *fakeCluster) Update(_ context.Context, old, new Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old.ResourceVersion != c.secret.ResourceVersion {
		return errCAS
	}
	c.rv++
	new.ResourceVersion = strconv.Itoa(c.rv)
	c.secret = EncodeRecord(new)
	return nil
}

// edit changes the record in place (as another writer would).
func (c *fakeCluster) edit(f func(*Record)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, err := DecodeRecord(c.secret)
	if err != nil {
		panic(err)
	}
	f(&rec)
	c.rv++
	rec.ResourceVersion = strconv.Itoa(c.rv)
	c.secret = EncodeRecord(rec)
}

func (c *fakeCluster) KEK() []byte    { return c.kek }
func (c *fakeCluster) IsLeader() bool { return c.leader.Load() }

var testIPs = []net.IP{net.IPv4(127, 0, 0, 1)}

// testCluster is a bootstrapped cluster whose identity server listens on
// loopback with the bootstrap node's certificate.
type testCluster struct {
	local   *Local
	admin   string
	cluster *fakeCluster
	server  *Server
	addr    string // host:port of the HTTPS listener
	joins   atomic.Int64
}

type clusterOpts struct {
	bootstrap *pki.JoinToken
	cfg       ServerConfig
}

func newTestCluster(t testing.TB, o clusterOpts) *testCluster {
	t.Helper()
	local, rec, admin, err := Bootstrap("test-cluster", o.bootstrap, "boot", testIPs, time.Now())
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	tc := &testCluster{local: local, admin: admin, cluster: newFakeCluster(rec, local.KEK)}
	cfg := o.cfg
	cfg.Cluster = tc.cluster
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if tc.server, err = NewServer(cfg); err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	h, err := local.Holder()
	if err != nil {
		t.Fatalf("Holder: %v", err)
	}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathJoin {
			tc.joins.Add(1)
		}
		tc.server.ServeHTTP(w, r)
	})
	tc.addr = serveTLS(t, counted, h.ServerConfig(false))
	return tc
}

// serveTLS serves h on a loopback TLS listener until the test ends.
func serveTLS(t testing.TB, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: nil, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(tls.NewListener(ln, cfg))
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// tokens reads the join tokens through the admin endpoint.
func (tc *testCluster) tokens(t testing.TB) (voter, worker pki.JoinToken) {
	t.Helper()
	var resp TokensResponse
	if code := tc.adminCall(t, http.MethodGet, PathTokens, nil, tc.admin, &resp); code != http.StatusOK {
		t.Fatalf("GET %s: %d", PathTokens, code)
	}
	return mustToken(t, resp.Voter), mustToken(t, resp.Worker)
}

func (tc *testCluster) rotate(t testing.TB, role pki.Role) TokensResponse {
	t.Helper()
	var resp TokensResponse
	if code := tc.adminCall(t, http.MethodPost, PathTokensRotate, RotateRequest{Role: string(role)}, tc.admin, &resp); code != http.StatusOK {
		t.Fatalf("rotate %s: %d", role, code)
	}
	return resp
}

// adminCall sends a request to the cluster's server with a bearer token
// over TLS pinned to its CA; it returns the status code and decodes a 200.
func (tc *testCluster) adminCall(t testing.TB, method, path string, body any, bearer string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+tc.addr+path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	ca, _ := pki.ParseCertPEM(tc.local.CACert)
	resp, err := clientFor(pinnedTLS(ca)).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func mustToken(t testing.TB, s string) pki.JoinToken {
	t.Helper()
	tok, err := pki.ParseJoinToken(s)
	if err != nil {
		t.Fatalf("ParseJoinToken(%q): %v", s, err)
	}
	return tok
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Waiting is how many After channels have not fired yet.
func (c *fakeClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// eventually waits for cond, failing the test after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
