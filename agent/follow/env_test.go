package follow

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// storeBackend stands in for the Raft node behind a voter's API: proposals
// apply to the store at once and reads need no barrier.
type storeBackend struct{ st *store.Store }

func (b storeBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.st.Apply(ops), nil
}

func (storeBackend) ReadBarrier(context.Context) error { return nil }

// env is one voter as a follower sees it: a store and the API over it.
type env struct {
	st  *store.Store
	rec *watches
	srv *apiserver.Server
	ts  *httptest.Server
}

// watches hands out the store's watchers and keeps them, so a test can see
// which voter the follower watches and that a dropped one was stopped.
type watches struct {
	*store.Store
	mu   sync.Mutex
	list []*store.Watcher
}

func (r *watches) Watch(kind, ns string, from int64, sel store.Selector) (*store.Watcher, error) {
	w, err := r.Store.Watch(kind, ns, from, sel)
	if err == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.list = append(r.list, w)
	}
	return w, err
}

func (r *watches) all() []*store.Watcher {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// waitStopped waits until the watcher's channel is closed without error.
func waitStopped(t testing.TB, w *store.Watcher) {
	t.Helper()
	waitFor(t, "the server to stop the store watcher", func() bool {
		for {
			select {
			case _, ok := <-w.Events():
				if ok {
					continue
				}
				if err := w.Err(); err != nil {
					t.Errorf("watcher closed with %v, want a plain stop", err)
				}
				return true
			default:
				return false
			}
		}
	})
}

// newEnv starts an API server over a fresh store holding the namespace
// "default"; opt may change the store's config.
func newEnv(t testing.TB, opts ...func(*store.Config)) *env {
	t.Helper()
	scfg := store.DefaultConfig()
	for _, o := range opts {
		o(&scfg)
	}
	st := store.New(scfg)
	rec := &watches{Store: st}
	srv, err := apiserver.NewServer(apiserver.ServerConfig{
		Backend: storeBackend{st},
		Reader:  rec,
		Clock:   time.Now,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, rec: rec, srv: srv, ts: httptest.NewServer(srv.Handler())}
	t.Cleanup(func() {
		srv.Close()
		e.ts.Close()
	})
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default", UID: "ns-default"}}
	api.SetTypeMeta(ns)
	if res := st.Apply([]store.Op{{Type: store.OpCreate, Object: ns}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
