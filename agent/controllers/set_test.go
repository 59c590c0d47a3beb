package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/clock"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// A small cluster driven by the real controllers over a store without Raft:
// a Deployment becomes a ReplicaSet and pods bound to nodes, a Service gets
// a ClusterIP and Endpoints, scaling works, a lost node's pods move, and
// deleting the Deployment collects everything it owned.
func TestControllersDriveWorkloads(t *testing.T) {
	st := store.New(store.DefaultConfig())
	b := &testBackend{st: st}
	now := time.Now()
	nowFn := func() time.Time { return now } // fixed: only node loss needs time to pass, it is set below
	var clockMu sync.Mutex
	getNow := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return nowFn() }

	create := creator(t, st, now)
	readyNode := func(name, zone string) *api.Node {
		return &api.Node{
			ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{"topology.kubernetes.io/zone": zone}},
			Status: api.NodeStatus{
				Allocatable: api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "110"},
				Capacity:    api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "110"},
				Conditions:  []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue, LastTransitionTime: api.NewTime(now)}},
			},
		}
	}
	create(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default"}})
	for i, z := range []string{"a", "b", "c"} {
		create(readyNode(fmt.Sprintf("n%d", i+1), z))
	}
	createWeb(create)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cfg := LoopConfig{Resync: 20 * time.Millisecond, Settle: time.Millisecond, Clock: clock.Func(getNow)}
		Run(ctx, st, b, cfg, Set(DefaultClusterConfig()))
	}()
	defer func() { cancel(); wg.Wait() }()

	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	boundPods := func() map[string]int {
		objs, _, _ := st.List("Pod", "default", store.Selector{})
		per := map[string]int{}
		for _, o := range objs {
			p := o.(*api.Pod)
			if p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
				per[p.Spec.NodeName]++
			}
		}
		return per
	}
	total := func(m map[string]int) int {
		n := 0
		for _, c := range m {
			n += c
		}
		return n
	}
	waitUntil("3 pods bound, one per zone", func() bool {
		per := boundPods()
		return total(per) == 3 && per["n1"] == 1 && per["n2"] == 1 && per["n3"] == 1
	})
	waitUntil("the Service's ClusterIP", func() bool {
		o, _ := st.Get(store.Key{Kind: "Service", Namespace: "default", Name: "web"})
		return o != nil && o.(*api.Service).Spec.ClusterIP != ""
	})
	waitUntil("pod CIDRs for every node", func() bool {
		objs, _, _ := st.List("Node", "", store.Selector{})
		for _, o := range objs {
			if o.(*api.Node).Spec.PodCIDR == "" {
				return false
			}
		}
		return true
	})

	// Scale up through the API's path (an update of the spec), retrying
	// when the controllers changed the Deployment in between.
	five := int32(5)
	waitUntil("the scale-up to be written", func() bool {
		o, _ := st.Get(store.Key{Kind: "Deployment", Namespace: "default", Name: "web"})
		d := o.DeepCopyObject().(*api.Deployment)
		d.Spec.Replicas = &five
		res := st.Apply([]store.Op{{Type: store.OpUpdate, Object: d}})
		if res[0].Err != nil && !errors.Is(res[0].Err, store.ErrConflict) {
			t.Fatal(res[0].Err)
		}
		return res[0].Err == nil
	})
	waitUntil("5 pods bound", func() bool { return total(boundPods()) == 5 })

	// n3 has been NotReady for longer than the grace: its pods move.
	waitUntil("n3 marked NotReady", func() bool {
		o, _ := st.Get(store.Key{Kind: "Node", Name: "n3"})
		n3 := o.DeepCopyObject().(*api.Node)
		n3.Status.Conditions = []api.Condition{{Type: api.NodeReady, Status: api.ConditionFalse, LastTransitionTime: api.NewTime(now)}}
		res := st.Apply([]store.Op{{Type: store.OpUpdateStatus, Object: n3}})
		if res[0].Err != nil && !errors.Is(res[0].Err, store.ErrConflict) {
			t.Fatal(res[0].Err)
		}
		return res[0].Err == nil
	})
	clockMu.Lock()
	later := now.Add(DefaultClusterConfig().NodeLossGrace + time.Minute)
	nowFn = func() time.Time { return later }
	clockMu.Unlock()
	waitUntil("no pods on the lost node and 5 pods elsewhere", func() bool {
		per := boundPods()
		return per["n3"] == 0 && total(per) == 5
	})

	// Deleting the Deployment collects its ReplicaSet and pods: the pods,
	// bound to nodes, terminate gracefully (their agents would remove them
	// once stopped; there is none here).
	if res := st.Apply([]store.Op{{Type: store.OpDelete, Key: store.Key{Kind: "Deployment", Namespace: "default", Name: "web"}}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	var gcLast string // what the wait saw last, for a failure's message
	defer func() {
		if t.Failed() {
			t.Log("garbage collection, last seen:", gcLast)
		}
	}()
	waitUntil("garbage collection", func() bool {
		rs, _, _ := st.List("ReplicaSet", "default", store.Selector{})
		ps, _, _ := st.List("Pod", "default", store.Selector{})
		for _, p := range ps {
			if p.GetObjectMeta().DeletionTimestamp == nil {
				gcLast = fmt.Sprintf("pod %s not terminating; %d rs, %d pods", p.GetObjectMeta().Name, len(rs), len(ps))
				return false
			}
		}
		gcLast = fmt.Sprintf("%d rs, %d pods", len(rs), len(ps))
		return len(rs) == 0 && len(ps) == 5
	})
}

// createWeb creates the Deployment "web" (3 replicas of app=web) and its
// Service through create.
func createWeb(create func(api.Object)) {
	replicas := int32(3)
	create(&api.Deployment{
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: api.DeploymentSpec{
			Replicas: &replicas,
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: api.PodSpec{Containers: []api.Container{{Name: "web", Image: "web:1",
					Resources: api.ResourceRequirements{Requests: api.ResourceList{"cpu": "100m", "memory": "64Mi"}}}}},
			},
		},
	})
	create(&api.Service{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Port: 80, TargetPort: api.FromInt(8080)}}}})
}

// A Deployment's pods are created bound (one write each, no bind after):
// the scheduler places what the ReplicaSet creates in the same plan. Nodes
// that hold two pods each take six of ten replicas, two per node, and the
// other four stay pending with the scheduler's Unschedulable condition.
func TestPodsCreatedBound(t *testing.T) {
	st := store.New(store.DefaultConfig())
	b := &testBackend{st: st}
	now := time.Now()
	create := creator(t, st, now)
	create(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default"}})
	for i := range 3 {
		create(&api.Node{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("n%d", i)},
			Status: api.NodeStatus{
				Allocatable: api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "2"},
				Capacity:    api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "2"},
				Conditions:  []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue, LastTransitionTime: api.NewTime(now)}},
			}})
	}
	w, err := st.Watch("Pod", "", st.Revision(), store.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		Run(ctx, st, b, LoopConfig{Resync: time.Hour, Settle: time.Millisecond}, Set(DefaultClusterConfig()))
	})
	defer func() { cancel(); wg.Wait() }()
	obj, err := api.DecodeObject([]byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 10
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: i}]
`))
	if err != nil {
		t.Fatal(err)
	}
	create(obj)

	perNode := map[string]int{}
	addedBound, bindUpdates, unschedulable := 0, 0, map[string]bool{}
	deadline := time.After(30 * time.Second)
	for addedBound+bindUpdates < 6 || len(unschedulable) < 4 {
		select {
		case ev := <-w.Events():
			p := ev.Object.(*api.Pod)
			switch {
			case ev.Type == store.Added && p.Spec.NodeName != "":
				addedBound++
				perNode[p.Spec.NodeName]++
			case ev.Type == store.Modified && p.Spec.NodeName != "" && ev.Prev.(*api.Pod).Spec.NodeName == "":
				bindUpdates++
			}
			if c := api.FindCondition(p.Status.Conditions, api.PodScheduled); c != nil && c.Reason == "Unschedulable" {
				unschedulable[p.Name] = true
			}
		case <-deadline:
			t.Fatalf("after 30 s: %d pods created bound, %d bound later, %d unschedulable", addedBound, bindUpdates, len(unschedulable))
		}
	}
	if addedBound != 6 || bindUpdates != 0 {
		t.Fatalf("%d pods created bound, %d bound by a later update; want 6 and 0", addedBound, bindUpdates)
	}
	for n, c := range perNode {
		if c != 2 {
			t.Fatalf("node %s got %d pods, want 2 (per node: %v)", n, c, perNode)
		}
	}
}
