package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// queuedBackend is a QueuedProposer whose queued entries apply only when
// the test releases them, in queue order; failAt (1-based) makes that entry
// fail as a lost leadership would.
type queuedBackend struct {
	st      *store.Store
	mu      sync.Mutex
	queued  int
	failAt  int
	release chan struct{}
	order   []string      // first op's name of each entry, as it applied
	last    chan struct{} // closed when the entry queued last is done
}

func (b *queuedBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	return nil, errors.New("Propose called: the queued path was not taken")
}

func (b *queuedBackend) ProposeQueued(ctx context.Context, ops []store.Op) (func() ([]store.Result, error), error) {
	b.mu.Lock()
	b.queued++
	k := b.queued
	prev := b.last
	done := make(chan struct{})
	b.last = done
	b.mu.Unlock()
	var res []store.Result
	var err error
	go func() {
		defer close(done)
		<-b.release
		if prev != nil {
			<-prev // as raft: entries apply in the order they were queued
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if k == b.failAt {
			err = errors.New("leadership lost")
			return
		}
		b.order = append(b.order, ops[0].Object.GetObjectMeta().Name)
		res = b.st.Apply(ops)
	}()
	return func() ([]store.Result, error) { <-done; return res, err }, nil
}

func podsPlan(n int) placement.Plan {
	var p placement.Plan
	for i := range n {
		p.Create = append(p.Create, &api.Pod{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("p%05d", i), Namespace: "default"},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "i"}}}})
	}
	return p
}

// A plan larger than one entry has all its entries queued before the first
// is waited for, and they apply in plan order.
func TestApplyPlanQueuesEveryEntry(t *testing.T) {
	b := &queuedBackend{st: store.New(store.Config{}), release: make(chan struct{})}
	const n = 3*maxPlanOps + 7
	done := make(chan struct{})
	var res PlanResult
	var err error
	go func() {
		defer close(done)
		res, err = applyPlan(context.Background(), b, podsPlan(n), time.Now(), nil)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		q := b.queued
		b.mu.Unlock()
		if q == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries queued before any applied, want 4", q)
		}
		time.Sleep(time.Millisecond)
	}
	close(b.release)
	<-done
	if err != nil || res.Applied != n {
		t.Fatalf("applied %d of %d, err %v", res.Applied, n, err)
	}
	want := []string{"p00000", fmt.Sprintf("p%05d", maxPlanOps), fmt.Sprintf("p%05d", 2*maxPlanOps), fmt.Sprintf("p%05d", 3*maxPlanOps)}
	if fmt.Sprint(b.order) != fmt.Sprint(want) {
		t.Errorf("entries applied in order %v, want %v", b.order, want)
	}
}

// When an entry fails, the ones queued after it are still waited for
// before applyPlan returns: the loop decides again only once their fate is
// known.
func TestApplyPlanWaitsForEntriesAfterAFailure(t *testing.T) {
	b := &queuedBackend{st: store.New(store.Config{}), release: make(chan struct{}), failAt: 2}
	close(b.release)
	const n = 3 * maxPlanOps
	res, err := applyPlan(context.Background(), b, podsPlan(n), time.Now(), nil)
	if err == nil {
		t.Fatal("a failed entry went unreported")
	}
	b.mu.Lock()
	applied := len(b.order)
	b.mu.Unlock()
	if applied != 2 || res.Applied != 2*maxPlanOps {
		t.Errorf("after the failure: %d entries applied, %d ops counted; want 2 and %d", applied, res.Applied, 2*maxPlanOps)
	}
	if pods, _, err := b.st.List("Pod", "", store.Selector{}); err != nil || len(pods) != 2*maxPlanOps {
		t.Errorf("%d pods in the store (%v), want %d", len(pods), err, 2*maxPlanOps)
	}
}
