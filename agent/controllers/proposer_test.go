package controllers

import (
	"context"
	"sync/atomic"

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
