package consensus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/store"
)

// Many concurrent callers share entries; each gets exactly its own results,
// in its own order, and every op lands once.
func TestProposalsBatchWithoutMixingResults(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	const callers, perCaller = 48, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perCaller; i++ {
				// Two ops per call: a create that succeeds and one that
				// fails (duplicate), so a result shifted between callers
				// would show.
				name := fmt.Sprintf("w%d-%d", w, i)
				res, err := lead.Propose(ctxTimeout(t, 10*time.Second), []store.Op{
					createOp(configMap("default", name, 32)),
					createOp(configMap("default", name, 32)),
				})
				switch {
				case err != nil:
					errs <- err
					return
				case len(res) != 2:
					errs <- fmt.Errorf("%s: %d results", name, len(res))
					return
				case res[0].Err != nil || res[0].Object.GetObjectMeta().Name != name:
					errs <- fmt.Errorf("%s: first result %+v", name, res[0])
					return
				case !errors.Is(res[1].Err, store.ErrAlreadyExists):
					errs <- fmt.Errorf("%s: second result should be a duplicate, got %v", name, res[1].Err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	objs, _, err := lead.Store().List("ConfigMap", "default", store.Selector{})
	if err != nil || len(objs) != callers*perCaller {
		t.Fatalf("store holds %d config maps (%v), want %d", len(objs), err, callers*perCaller)
	}
	// Fewer entries than calls: the batcher did gather.
	if st := lead.Status(); st.LastIndex >= uint64(callers*perCaller) {
		t.Logf("note: %d calls took %d log entries (no batching happened under this load)", callers*perCaller, st.LastIndex)
	}
}

// A caller whose context has already ended proposes nothing.
func TestProposeWithEndedContext(t *testing.T) {
	c := newInmemCluster(t, 3)
	lead := c.leader()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := lead.Propose(ctx, []store.Op{createOp(configMap("default", "never", 8))})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// Let a later write through, then check the first never landed.
	propose(t, lead, createOp(configMap("default", "later", 8)))
	if _, err := lead.Store().Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "never"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the cancelled proposal was applied: %v", err)
	}
}

// After Shutdown, Propose fails fast instead of hanging.
func TestProposeAfterShutdown(t *testing.T) {
	c := newInmemCluster(t, 1)
	lead := c.leader()
	lead.Shutdown()
	_, err := lead.Propose(ctxTimeout(t, 5*time.Second), []store.Op{createOp(configMap("default", "x", 8))})
	if err == nil {
		t.Fatal("Propose after Shutdown succeeded")
	}
}
