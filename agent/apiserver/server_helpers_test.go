package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// testBackend is a stand-in for the Raft node: Propose applies the ops to
// the store directly, ReadBarrier counts its calls. Either can be made to
// fail.
type testBackend struct {
	st         *store.Store
	barriers   atomic.Int64
	proposals  atomic.Int64
	mu         sync.Mutex
	proposeErr error
	barrierErr error
}

func (b *testBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	b.mu.Lock()
	err := b.proposeErr
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.proposals.Add(1)
	return b.st.Apply(ops), nil
}

func (b *testBackend) ReadBarrier(ctx context.Context) error {
	b.barriers.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.barrierErr
}

func (b *testBackend) failWith(propose, barrier error) {
	b.mu.Lock()
	b.proposeErr, b.barrierErr = propose, barrier
	b.mu.Unlock()
}

// watchRecorder wraps the store and remembers every watcher it hands out,
// so tests can check that the server stops them.
type watchRecorder struct {
	*store.Store
	mu       sync.Mutex
	watchers []*store.Watcher
}

func (r *watchRecorder) Watch(kind, ns string, from int64, sel store.Selector) (*store.Watcher, error) {
	w, err := r.Store.Watch(kind, ns, from, sel)
	if err == nil {
		r.mu.Lock()
		r.watchers = append(r.watchers, w)
		r.mu.Unlock()
	}
	return w, err
}

func (r *watchRecorder) all() []*store.Watcher {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*store.Watcher(nil), r.watchers...)
}

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type env struct {
	t   testing.TB
	st  *store.Store
	rec *watchRecorder
	be  *testBackend
	srv *Server
	ts  *httptest.Server
}

type envOption func(*store.Config, *ServerConfig)

// newEnv starts a server over a fresh store holding the namespace "default".
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	scfg := store.DefaultConfig()
	cfg := ServerConfig{
		Clock:  func() time.Time { return testNow },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&scfg, &cfg)
	}
	st := store.New(scfg)
	e := &env{t: t, st: st, rec: &watchRecorder{Store: st}, be: &testBackend{st: st}}
	cfg.Backend, cfg.Reader = e.be, e.rec
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		e.ts.Close()
	})
	e.seedNamespace("default")
	return e
}

func (e *env) seedNamespace(name string) {
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: name, UID: api.NewUID()}}
	api.SetTypeMeta(ns)
	if res := e.st.Apply([]store.Op{{Type: store.OpCreate, Object: ns}}); res[0].Err != nil {
		e.t.Fatal(res[0].Err)
	}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

// status decodes the body as a Status, failing the test if it is not one.
func (r response) status(t testing.TB) api.Status {
	t.Helper()
	var st api.Status
	if err := json.Unmarshal(r.body, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("body is not a Status (code %d): %s", r.code, r.body)
	}
	if int(st.Code) != r.code {
		t.Fatalf("Status code %d but HTTP code %d", st.Code, r.code)
	}
	return st
}

func (e *env) request(method, path, contentType, body string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) get(path string) response { return e.request(http.MethodGet, path, "", "") }
func (e *env) post(path, body string) response {
	return e.request(http.MethodPost, path, "application/json", body)
}
func (e *env) put(path, body string) response {
	return e.request(http.MethodPut, path, "application/json", body)
}
func (e *env) del(path string) response { return e.request(http.MethodDelete, path, "", "") }

// mustCode fails unless r has the code; it returns r for chaining.
func mustCode(t testing.TB, r response, code int) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("HTTP %d, want %d: %s", r.code, code, r.body)
	}
	return r
}

// decode reads a response body into a typed object.
func decode[T any](t testing.TB, r response) *T {
	t.Helper()
	v := new(T)
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %T: %v: %s", v, err, r.body)
	}
	return v
}

// snapshot returns the store's revision and its serialized content.
func (e *env) snapshot() (int64, []byte) {
	e.t.Helper()
	var b bytes.Buffer
	if err := e.st.Snapshot(&b); err != nil {
		e.t.Fatal(err)
	}
	return e.st.Revision(), b.Bytes()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func configMapJSON(name string, data map[string]string) string {
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: name}, Data: data}
	api.SetTypeMeta(cm)
	b, _ := json.Marshal(cm)
	return string(b)
}

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
`

const podJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":{"app":"%s"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`
