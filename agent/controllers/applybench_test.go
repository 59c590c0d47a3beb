package controllers

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// BenchmarkApplyToBound measures the leader's controllers alone, without
// Raft: a Deployment of pods replicas applied to a store with nodes Ready
// nodes, until every pod is bound (proposals apply to the store at once).
// It is the ceiling of issue 14's "apply → all bound" figure on this
// machine.
func BenchmarkApplyToBound(b *testing.B) {
	for _, sz := range []struct{ nodes, pods int }{{100, 1000}, {100, 5000}, {1000, 10000}} {
		b.Run(fmt.Sprintf("nodes=%d/pods=%d", sz.nodes, sz.pods), func(b *testing.B) {
			for range b.N {
				applyToBound(b, sz.nodes, sz.pods)
			}
		})
	}
}

func applyToBound(b *testing.B, nodes, replicas int) {
	b.StopTimer()
	st := store.New(store.DefaultConfig())
	be := &testBackend{st: st}
	now := time.Now()
	create := creator(b, st, now)
	create(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default"}})
	for i := range nodes {
		create(&api.Node{
			ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("n%04d", i), Labels: map[string]string{"topology.kubernetes.io/zone": fmt.Sprintf("z%d", i%3)}},
			Status: api.NodeStatus{
				Allocatable: api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "110"},
				Capacity:    api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "110"},
				Conditions:  []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue, LastTransitionTime: api.NewTime(now)}},
			},
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// The default cluster range (a /16) holds 256 nodes' /24s; a
	// thousand need a wider one, as the hollow runs use.
	cn := DefaultClusterConfig()
	cn.ClusterCIDR = "10.128.0.0/10"
	wg.Go(func() { Run(ctx, st, be, DefaultLoopConfig(), Set(cn)) })
	defer func() { cancel(); wg.Wait() }()
	// The loop's first pass gives every node its pod CIDR: wait for it,
	// so the timed part is the Deployment's alone.
	waitFor(b, time.Minute, "every node's pod CIDR", func() bool {
		objs, _, _ := st.List("Node", "", store.Selector{})
		for _, o := range objs {
			if o.(*api.Node).Spec.PodCIDR == "" {
				return false
			}
		}
		return true
	})
	obj, err := api.DecodeObject(fmt.Appendf(nil, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: hollow/pause:1}]
`, replicas))
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	create(obj)
	waitFor(b, 5*time.Minute, fmt.Sprintf("%d pods bound", replicas), func() bool {
		objs, _, _ := st.List("Pod", "default", store.Selector{})
		bound := 0
		for _, o := range objs {
			if o.(*api.Pod).Spec.NodeName != "" {
				bound++
			}
		}
		return bound >= replicas
	})
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(replicas)/el.Seconds(), "pods/s")
	b.Logf("%d pods onto %d nodes: all bound after %v, %d proposals", replicas, nodes, el, be.proposals.Load())
}

// waitFor polls cond every millisecond until it holds, failing b after d.
func waitFor(b *testing.B, d time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}
