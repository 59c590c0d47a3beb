package clientgo

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// directBackend applies proposals to the store at once: one replica, no
// Raft.
type directBackend struct{ st *store.Store }

func (b directBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.st.Apply(ops), nil
}

func (b directBackend) ReadBarrier(ctx context.Context) error { return ctx.Err() }

// shoal is a running API server and a client-go clientset for it.
type shoal struct {
	st     *store.Store
	client kubernetes.Interface

	mu       sync.Mutex
	requests []string // method and URI of every request
}

// requested returns the requests made so far whose URI contains sub.
func (s *shoal) requested(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		if strings.Contains(r, sub) {
			out = append(out, r)
		}
	}
	return out
}

// startShoal serves the API of a fresh store holding the namespace
// "default" over loopback HTTP.
func startShoal(t testing.TB, historySize int) *shoal {
	t.Helper()
	scfg := store.DefaultConfig()
	scfg.HistorySize = historySize
	st := store.New(scfg)
	srv, err := apiserver.NewServer(apiserver.ServerConfig{
		Backend: directBackend{st},
		Reader:  st,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	sh := &shoal{st: st}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sh.mu.Lock()
		sh.requests = append(sh.requests, r.Method+" "+r.URL.RequestURI())
		sh.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default", UID: api.NewUID()}}
	api.SetTypeMeta(ns)
	if res := st.Apply([]store.Op{{Type: store.OpCreate, Object: ns}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	// client-go sends built-in kinds as protobuf unless told otherwise;
	// Shoal reads JSON and YAML only (415 for protobuf).
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: ts.URL, QPS: -1, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	sh.client = cs
	return sh
}
