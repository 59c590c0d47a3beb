package store

import (
	"fmt"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func onNode(node string) Selector {
	return Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: node}}}
}

// A write to one node's pod is filtered by that node's watchers and the
// unindexed ones only, not by every agent's watcher (issue 14, watch
// fan-out: with 1,000 node watchers each write cost 9 times as much as
// with one, 63 times with 3,000).
func TestWatchFanoutVisitsOnlyConcernedWatchers(t *testing.T) {
	s := testStore()
	const nodes = 1000
	for i := range nodes {
		w, err := s.Watch("Pod", "", 0, onNode(fmt.Sprint("n", i)))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
	}
	all, err := s.Watch("Pod", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Stop()
	visits := 0
	notifyVisit = func(*Watcher) { visits++ }
	defer func() { notifyVisit = nil }()

	mustApply(t, s, create(pod("default", "p", "n7", nil)))
	if visits != 2 {
		t.Errorf("creating a pod on n7 visited %d watchers, want 2 (n7's and the unfiltered one)", visits)
	}
	visits = 0
	mustApply(t, s, update(editPod(t, s, "default", "p", func(p *api.Pod) { p.Spec.NodeName = "n8" })))
	if visits != 3 {
		t.Errorf("moving a pod from n7 to n8 visited %d watchers, want 3", visits)
	}
	visits = 0
	mustApply(t, s, create(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "c"}}))
	if visits != 1 {
		t.Errorf("creating a ConfigMap visited %d watchers, want 1 (the unfiltered pod watcher; filter drops it)", visits)
	}
}

// The index changes which watchers are visited, never what they receive:
// a pod bound, moved between nodes, unbound and deleted gives each node's
// watchers (two on n1, one with a label selector as well) exactly their
// events, and closed watchers leave the index.
func TestWatchFanoutEventsByNode(t *testing.T) {
	s := testStore()
	w1, _ := s.Watch("Pod", "", 0, onNode("n1"))
	w1b, _ := s.Watch("Pod", "default", 0, onNode("n1"))
	web, _ := api.ParseSelector("app=web")
	w1web, _ := s.Watch("Pod", "", 0, Selector{Labels: web, Fields: onNode("n1").Fields})
	w2, _ := s.Watch("Pod", "", 0, onNode("n2"))
	w3, _ := s.Watch("Pod", "", 0, onNode("n3"))
	for _, w := range []*Watcher{w1, w1b, w1web, w2, w3} {
		defer w.Stop()
	}
	mustApply(t, s, create(pod("default", "p", "n1", map[string]string{"app": "web"})))
	for _, w := range []*Watcher{w1, w1b, w1web} {
		expect(t, w, "ADDED p@1")
	}
	mustApply(t, s, update(editPod(t, s, "default", "p", func(p *api.Pod) { p.Spec.NodeName = "n2" })))
	for _, w := range []*Watcher{w1, w1b, w1web} {
		expect(t, w, "DELETED p@2")
	}
	expect(t, w2, "ADDED p@2")
	mustApply(t, s, update(editPod(t, s, "default", "p", func(p *api.Pod) { p.Spec.NodeName = "" })))
	expect(t, w2, "DELETED p@3")
	mustApply(t, s, update(editPod(t, s, "default", "p", func(p *api.Pod) { p.Spec.NodeName = "n2" })))
	expect(t, w2, "ADDED p@4")
	w2.Stop()
	mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "p"}})
	for _, w := range []*Watcher{w1, w1b, w1web, w3} {
		expectNone(t, w)
	}
	waitClosed(t, w2)
	if _, ok := s.fan.byNode["n2"]; ok {
		t.Error("a stopped watcher stays in the node index")
	}
}
