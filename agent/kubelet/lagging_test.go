package kubelet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// laggingVoter is the API of a voter whose replica lags the leader, as a
// restarted voter's does: it holds an old snapshot, and what the leader
// has committed since (pending) reaches it only when a linearizable read
// asks for it (the read barrier waits until the replica has applied the
// leader's commit index) or catchUp says the leader spoke. A stale read
// answers from the replica as it is.
type laggingVoter struct {
	replica  *store.Store
	ts       *httptest.Server
	barriers atomic.Int64 // linearizable reads served

	mu      sync.Mutex
	pending [][]store.Op
}

func newLaggingVoter(t *testing.T) *laggingVoter {
	t.Helper()
	v := &laggingVoter{replica: store.New(store.DefaultConfig())}
	srv, err := apiserver.NewServer(apiserver.ServerConfig{
		Backend: v, Reader: v.replica, Clock: time.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	v.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		v.ts.Close()
	})
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default", UID: "ns-default"}}
	api.SetTypeMeta(ns)
	v.applied(t, store.Op{Type: store.OpCreate, Object: ns})
	return v
}

// applied applies ops to the replica at once (the snapshot it holds).
func (v *laggingVoter) applied(t *testing.T, ops ...store.Op) {
	t.Helper()
	for _, r := range v.replica.Apply(ops) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// committed records ops the leader has committed that the replica has not
// applied yet.
func (v *laggingVoter) committed(ops ...store.Op) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pending = append(v.pending, ops)
}

// catchUp applies everything pending, in order.
func (v *laggingVoter) catchUp() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, ops := range v.pending {
		v.replica.Apply(ops)
	}
	v.pending = nil
}

func (v *laggingVoter) Propose(context.Context, []store.Op) ([]store.Result, error) {
	return nil, errors.New("laggingVoter: writes are not served in this test")
}

func (v *laggingVoter) ReadBarrier(context.Context) error {
	v.barriers.Add(1)
	v.catchUp()
	return nil
}

// follow feeds set from this voter as the agent does (a Follower of the
// pods bound to node), until the test ends.
func (v *laggingVoter) follow(t *testing.T, node string, set *PodSet) *follow.Follower {
	t.Helper()
	ep := strings.TrimPrefix(v.ts.URL, "http://")
	f, err := follow.New(follow.Config{
		Endpoints: func() []string { return []string{ep} }, Kind: "Pod", FieldSelector: "spec.nodeName=" + node,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, set.FollowHandler(f))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func createOp(obj api.Object) store.Op {
	api.SetTypeMeta(obj)
	return store.Op{Type: store.OpCreate, Object: obj.DeepCopyObject()}
}

func deleteOp(kind, ns, name string) store.Op {
	return store.Op{Type: store.OpDelete, Key: store.Key{Kind: kind, Namespace: ns, Name: name}}
}
