package controllers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// testBackend stands in for the Raft node: proposals apply to the store at
// once.
type testBackend struct {
	st        *store.Store
	proposals atomic.Int64
}

func (b *testBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.proposals.Add(1)
	return b.st.Apply(ops), nil
}

// creator returns a function that creates obj in st directly (defaults,
// uid and creationTimestamp at now), failing tb on error: the objects a
// test starts from, written without the controllers.
func creator(tb testing.TB, st *store.Store, now time.Time) func(api.Object) {
	return func(obj api.Object) {
		tb.Helper()
		api.SetDefaults(obj)
		api.PrepareCreate(obj, now, api.NewUID())
		if res := st.Apply([]store.Op{{Type: store.OpCreate, Object: obj}}); res[0].Err != nil {
			tb.Fatal(res[0].Err)
		}
	}
}
