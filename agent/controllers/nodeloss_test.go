package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// A decision that asks to be made again later (a grace running out) is
// made again then, without an event and long before the resync.
func TestControllersRequeueAfter(t *testing.T) {
	st := store.New(store.DefaultConfig())
	var calls atomic.Int64
	timer := Controller{
		Name: "timer",
		Keys: func(store.Event, *View) []string { return nil },
		All:  always,
		Reconcile: func(string, *View, time.Time) placement.Plan {
			if calls.Add(1) < 3 {
				return placement.Plan{RequeueAfter: 20 * time.Millisecond}
			}
			return placement.Plan{}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		Run(ctx, st, &testBackend{st: st}, LoopConfig{Resync: time.Hour, Settle: time.Millisecond}, []Controller{timer})
	})
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("decided %d times in 10 s; want 3 (the first pass and two requeues 20 ms apart)", calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A node gossip declares dead: its pods leave the Service's ready
// addresses at once, and its ReplicaSet's pods are replaced elsewhere once
// the short grace has passed, not at the next resync (an hour here).
func TestControllersDeadNode(t *testing.T) {
	st := store.New(store.DefaultConfig())
	b := &testBackend{st: st}
	now := time.Now()
	create := creator(t, st, now)
	ready := api.Condition{Type: api.NodeReady, Status: api.ConditionTrue, Reason: placement.ReasonGossipAlive, LastTransitionTime: api.NewTime(now)}
	create(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default"}})
	for i, z := range []string{"a", "b", "c"} {
		create(&api.Node{
			ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("n%d", i+1), Labels: map[string]string{"topology.kubernetes.io/zone": z}},
			Status: api.NodeStatus{
				Allocatable: api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "110"},
				Capacity:    api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "110"},
				Conditions:  []api.Condition{ready},
			},
		})
	}
	createWeb(create)

	cfg := DefaultClusterConfig()
	cfg.NodeLossGrace = 3 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		Run(ctx, st, b, LoopConfig{Resync: time.Hour, Settle: time.Millisecond}, Set(cfg))
	})
	defer func() { cancel(); wg.Wait() }()

	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	live := func() []*api.Pod {
		objs, _, _ := st.List("Pod", "default", store.Selector{})
		var out []*api.Pod
		for _, o := range objs {
			if p := o.(*api.Pod); p.DeletionTimestamp == nil {
				out = append(out, p)
			}
		}
		return out
	}
	// Each bound pod runs and is ready, as its agent would report.
	ips := map[string]string{}
	runAll := func() {
		for _, p := range live() {
			if p.Spec.NodeName == "" || api.FindCondition(p.Status.Conditions, api.PodReady) != nil {
				continue
			}
			c := p.DeepCopyObject().(*api.Pod)
			c.Status.Phase = api.PodRunning
			c.Status.PodIP = fmt.Sprintf("10.244.%c.%d", c.Spec.NodeName[1], len(ips)+2)
			c.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: api.ConditionTrue}}
			if res := st.Apply([]store.Op{{Type: store.OpUpdateStatus, Object: c}}); res[0].Err == nil {
				ips[c.Status.PodIP] = c.Spec.NodeName
			}
		}
	}
	readyAddrs := func() []string {
		o, err := st.Get(store.Key{Kind: "Endpoints", Namespace: "default", Name: "web"})
		if err != nil {
			return nil
		}
		var out []string
		for _, s := range o.(*api.Endpoints).Subsets {
			for _, a := range s.Addresses {
				out = append(out, *a.NodeName)
			}
		}
		sort.Strings(out)
		return out
	}
	waitUntil("3 ready pods, one per node, in the Endpoints", func() bool {
		runAll()
		return slices.Equal(readyAddrs(), []string{"n1", "n2", "n3"})
	})

	// Gossip declares n3 dead.
	o, _ := st.Get(store.Key{Kind: "Node", Name: "n3"})
	n3 := o.DeepCopyObject().(*api.Node)
	dead := placement.NodeReadiness([]*api.Node{n3}, map[string]placement.Liveness{"n3": {Known: true, Since: time.Now()}}, time.Now())[0]
	if res := st.Apply([]store.Op{{Type: store.OpUpdateStatus, Object: dead}}); res[0].Err != nil && !errors.Is(res[0].Err, store.ErrConflict) {
		t.Fatal(res[0].Err)
	}
	died := time.Now()
	waitUntil("n3's pod out of the ready addresses", func() bool { return slices.Equal(readyAddrs(), []string{"n1", "n2"}) })
	left := time.Since(died)
	// Because of the node, not because the pod went: it is still there.
	onN3 := 0
	for _, p := range live() {
		if p.Spec.NodeName == "n3" {
			onN3++
		}
	}
	if onN3 != 1 {
		t.Fatalf("%d pods on n3 when it left the Endpoints (after %v); want its pod still there", onN3, left)
	}
	waitUntil("3 ready pods on n1 and n2", func() bool {
		runAll()
		ps := live()
		for _, p := range ps {
			if p.Spec.NodeName == "n3" || p.Spec.NodeName == "" {
				return false
			}
		}
		return len(ps) == 3 && len(readyAddrs()) == 3
	})
	replaced := time.Since(died)
	t.Logf("dead node: out of the Endpoints after %v, replaced after %v (grace %v)", left.Round(time.Millisecond), replaced.Round(time.Millisecond), cfg.NodeLossGrace)
	// lastTransitionTime has second precision: the grace may end up to a
	// second early, never earlier.
	if replaced < cfg.NodeLossGrace-time.Second {
		t.Errorf("replaced after %v, before the grace of %v", replaced, cfg.NodeLossGrace)
	}
}
