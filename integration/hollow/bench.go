package hollow

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Namespace holds the benchmark's Deployment.
const Namespace = "default"

// WaitNodesReady waits until n Nodes of hollow agents are Ready with a
// pod CIDR in the freshest voter's store.
func (c *Cluster) WaitNodesReady(ctx context.Context, n int, d time.Duration) error {
	return waitUntil(ctx, d, fmt.Sprintf("%d hollow Nodes Ready", n), func() bool {
		return c.readyNodes() >= n
	})
}

func (c *Cluster) readyNodes() int {
	st := c.freshest()
	if st == nil {
		return 0
	}
	objs, _, err := st.List("Node", "", store.Selector{})
	if err != nil {
		return 0
	}
	ready := 0
	for _, o := range objs {
		n := o.(*api.Node)
		if n.Spec.PodCIDR == "" || len(n.Name) < 7 || n.Name[:7] != "hollow-" {
			continue
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == api.NodeReady && cond.Status == "True" {
				ready++
			}
		}
	}
	return ready
}

// PodCounts are the pods of the benchmark's Deployment in the freshest
// voter's store: total, bound to a node, Running (excluding those on skip nodes).
type PodCounts struct{ Total, Bound, Running int }

// podTally follows the benchmark's pods through a watch on one voter's
// store, so that counting them every 50 ms walks a map instead of listing
// (and sorting) every pod: that list took 5% of the 250-node apply's CPU,
// the observer weighing on what it measured. Once the watch ends (it fell
// behind, or the voter stopped) counts come from podCounts again.
type podTally struct {
	c    *Cluster
	w    *store.Watcher
	mu   sync.Mutex
	pods map[string]*api.Pod
	done bool // the watch ended
}

// tallyBuffer is the tally's watch buffer: the events of 20,000 pods'
// creations, bindings and status changes, about 3.5 MiB.
const tallyBuffer = 1 << 16

// tallyPods starts a tally from the freshest voter's store. Without one,
// or when the store refuses the watch, the tally counts with podCounts.
func (c *Cluster) tallyPods() *podTally {
	st := c.freshest()
	if st == nil {
		return &podTally{c: c, done: true}
	}
	// Watch from now first, then list, ignoring events at or below the
	// list's revision (store.Watch).
	w, err := st.WatchBuffered("Pod", Namespace, 0, store.Selector{}, tallyBuffer)
	if err != nil {
		return &podTally{c: c, done: true}
	}
	objs, rev, err := st.List("Pod", Namespace, store.Selector{})
	if err != nil {
		w.Stop()
		return &podTally{c: c, done: true}
	}
	t := &podTally{c: c, w: w, pods: make(map[string]*api.Pod, len(objs))}
	for _, o := range objs {
		t.pods[o.GetObjectMeta().Name] = o.(*api.Pod)
	}
	go t.run(rev)
	return t
}

func (t *podTally) run(listed int64) {
	for ev := range t.w.Events() {
		if ev.Revision <= listed {
			continue
		}
		p := ev.Object.(*api.Pod)
		t.mu.Lock()
		if ev.Type == store.Deleted {
			delete(t.pods, p.Name)
		} else {
			t.pods[p.Name] = p
		}
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
}

func (t *podTally) stop() {
	if t.w != nil {
		t.w.Stop()
	}
}

// counts is podCounts from the tally, or from a list once the watch ended.
func (t *podTally) counts(skip map[string]bool) PodCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return t.c.podCounts(skip)
	}
	var pc PodCounts
	for _, p := range t.pods {
		pc.add(p, skip)
	}
	return pc
}

func (pc *PodCounts) add(p *api.Pod, skip map[string]bool) {
	if p.DeletionTimestamp != nil || skip[p.Spec.NodeName] {
		return
	}
	pc.Total++
	if p.Spec.NodeName != "" {
		pc.Bound++
		if p.Status.Phase == api.PodRunning {
			pc.Running++
		}
	}
}

func (c *Cluster) podCounts(skip map[string]bool) PodCounts {
	var pc PodCounts
	st := c.freshest()
	if st == nil {
		return pc
	}
	objs, _, err := st.List("Pod", Namespace, store.Selector{})
	if err != nil {
		return pc
	}
	for _, o := range objs {
		pc.add(o.(*api.Pod), skip)
	}
	return pc
}

// lossState counts, in the freshest voter's store, the crashed nodes
// (lost) whose Ready condition is no longer True and the pods of the
// benchmark still bound to them and not yet deleted: the node-loss
// timeline (SHOAL_HOLLOW_TIMELINE=1).
func (c *Cluster) lossState(lost map[string]bool) (notReady, pods int) {
	st := c.freshest()
	if st == nil {
		return 0, 0
	}
	nodes, _, _ := st.List("Node", "", store.Selector{})
	for _, o := range nodes {
		n := o.(*api.Node)
		if !lost[n.Name] {
			continue
		}
		if c := api.FindCondition(n.Status.Conditions, api.NodeReady); c == nil || c.Status != api.ConditionTrue {
			notReady++
		}
	}
	objs, _, _ := st.List("Pod", Namespace, store.Selector{})
	for _, o := range objs {
		if p := o.(*api.Pod); lost[p.Spec.NodeName] && p.DeletionTimestamp == nil {
			pods++
		}
	}
	return notReady, pods
}

// ApplyResult is the timing of one Deployment apply.
type ApplyResult struct {
	Pods int
	// AllBound is when the freshest voter's store first held every pod,
	// each bound to a node (a pod count and the store's index of unbound
	// pods, read every 50 ms); AllRunning is when the benchmark's watch
	// of that store had seen every pod Running. Both from the apply's
	// start.
	AllBound, AllRunning time.Duration
	// AllBoundWatch is when the benchmark's watch had seen every pod
	// bound: later than AllBound by as long as the watch's goroutine
	// waited for a core among the agents' (up to half a second at 250
	// nodes on two cores, seconds at 1,000).
	AllBoundWatch time.Duration
	// Writes is how many changes the store took from the apply until all
	// were Running (the freshest voter's revision, before and after):
	// pods, their status writes, Events, the controllers' own.
	Writes int64
}

// BoundRate and RunningRate are pods/s end to end.
func (r ApplyResult) BoundRate() float64   { return float64(r.Pods) / r.AllBound.Seconds() }
func (r ApplyResult) RunningRate() float64 { return float64(r.Pods) / r.AllRunning.Seconds() }

// Apply creates a Deployment of replicas pods (one tiny container each,
// no resource requests beyond the default) and times until every pod is
// bound, then Running, as seen in the freshest voter's store.
func (c *Cluster) Apply(ctx context.Context, name string, replicas int, d time.Duration) (ApplyResult, error) {
	res := ApplyResult{Pods: replicas}
	cl, err := c.Client()
	if err != nil {
		return res, err
	}
	obj, err := api.DecodeObject(fmt.Appendf(nil, `apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: %s}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers: [{name: c, image: hollow/pause:1}]
`, name, Namespace, replicas, name, name))
	if err != nil {
		return res, err
	}
	st0 := c.freshest()
	rev0, pods0 := st0.Revision(), podsStored(st0)
	tally := c.tallyPods()
	defer tally.stop()
	start := time.Now()
	if _, err := cl.Create(ctx, obj); err != nil {
		return res, fmt.Errorf("hollow: create deployment: %w", err)
	}
	var last PodCounts
	tlast := time.Now()
	err = waitUntil(ctx, d, fmt.Sprintf("%d pods bound", replicas), func() bool {
		last = tally.counts(nil)
		if os.Getenv("SHOAL_HOLLOW_TIMELINE") != "" && time.Since(tlast) >= 250*time.Millisecond {
			tlast = time.Now()
			fmt.Printf("TL %.2fs total=%d bound=%d running=%d rev=%d\n", time.Since(start).Seconds(), last.Total, last.Bound, last.Running, c.freshest().Revision()-rev0)
		}
		if res.AllBound == 0 && allBoundIn(c.freshest(), pods0+replicas) {
			res.AllBound = time.Since(start)
		}
		if last.Bound >= replicas && res.AllBoundWatch == 0 {
			res.AllBoundWatch = time.Since(start)
			res.AllBound = cmp.Or(res.AllBound, res.AllBoundWatch)
		}
		return last.Running >= replicas
	})
	res.AllRunning = time.Since(start)
	if st := c.freshest(); st != nil {
		res.Writes = st.Revision() - rev0
	}
	if err != nil {
		return res, fmt.Errorf("%w (last: %+v)", err, last)
	}
	return res, nil
}

// podsStored is how many pods st holds, in every namespace.
func podsStored(st *store.Store) int {
	if st == nil {
		return 0
	}
	return st.Stats().Objects["Pod"]
}

// unboundPods selects pods bound to no node (the store's node index keeps
// them under "").
var unboundPods = store.Selector{Fields: api.FieldSelector{{Field: api.FieldNodeName, Operator: "=", Value: ""}}}

// allBoundIn reports whether st holds at least want pods and none of the
// benchmark's namespace is unbound. Both reads are cheap at any size: a
// count per kind, and the index of unbound pods.
func allBoundIn(st *store.Store, want int) bool {
	if st == nil || podsStored(st) < want {
		return false
	}
	unbound, _, err := st.List("Pod", Namespace, unboundPods)
	return err == nil && len(unbound) == 0
}

// NodeLoss crashes frac of the hollow nodes at once and times until
// replicas pods run again on the others.
func (c *Cluster) NodeLoss(ctx context.Context, frac float64, replicas int, d time.Duration) (killed int, took time.Duration, err error) {
	nodes := c.Nodes()
	k := int(float64(len(nodes)) * frac)
	skip := map[string]bool{}
	tally := c.tallyPods()
	defer tally.stop()
	start := time.Now()
	for i := range k {
		m := nodes[len(nodes)-1-i]
		skip[m.Agent.Name()] = true
		m.Crash()
	}
	var last PodCounts
	tlast := time.Now()
	err = waitUntil(ctx, d, fmt.Sprintf("%d pods Running off the %d crashed nodes", replicas, k), func() bool {
		last = tally.counts(skip)
		if os.Getenv("SHOAL_HOLLOW_TIMELINE") != "" && time.Since(tlast) >= 250*time.Millisecond {
			tlast = time.Now()
			notReady, left := c.lossState(skip)
			fmt.Printf("TL loss %.2fs crashed NotReady=%d/%d pods on them=%d elsewhere: total=%d bound=%d running=%d\n",
				time.Since(start).Seconds(), notReady, k, left, last.Total, last.Bound, last.Running)
		}
		return last.Running >= replicas
	})
	if err != nil {
		err = fmt.Errorf("%w (last: %+v)", err, last)
	}
	return k, time.Since(start), err
}

// GossipConverged waits until every running member sees want alive
// members, returning how long that took from since.
func (c *Cluster) GossipConverged(ctx context.Context, want int, since time.Time, d time.Duration) (time.Duration, error) {
	err := waitUntil(ctx, d, fmt.Sprintf("every member to see %d alive", want), func() bool {
		return c.everyMember(func(g *gossip.Gossip) bool { return countState(g, gossip.Alive, "") >= want })
	})
	if err != nil {
		err = fmt.Errorf("%w (%s)", err, c.aliveSeen(want))
	}
	return time.Since(since), err
}

// aliveSeen says how far gossip got: how many alive members the running
// members see (least, median, most) and how many see want.
func (c *Cluster) aliveSeen(want int) string {
	var seen []int
	full := 0
	for _, m := range c.all() {
		if g := m.Agent.Gossip(); g != nil && !m.killed.Load() {
			n := countState(g, gossip.Alive, "")
			seen = append(seen, n)
			if n >= want {
				full++
			}
		}
	}
	if len(seen) == 0 {
		return "no running member"
	}
	slices.Sort(seen)
	return fmt.Sprintf("alive members seen: least %d, median %d, most %d; %d of %d members see %d",
		seen[0], seen[len(seen)/2], seen[len(seen)-1], full, len(seen), want)
}

// GossipDeath crashes one hollow node and times until every other
// running member sees it dead.
func (c *Cluster) GossipDeath(ctx context.Context, d time.Duration) (time.Duration, error) {
	nodes := c.Nodes()
	var victim *Member
	for _, m := range nodes {
		if !m.killed.Load() {
			victim = m
			break
		}
	}
	if victim == nil {
		return 0, fmt.Errorf("hollow: no running hollow node to crash")
	}
	start := time.Now()
	victim.Crash()
	name := victim.Agent.Name()
	err := waitUntil(ctx, d, "every member to see "+name+" dead", func() bool {
		return c.everyMember(func(g *gossip.Gossip) bool { return countState(g, gossip.Alive, name) == 0 })
	})
	return time.Since(start), err
}

func (c *Cluster) everyMember(ok func(*gossip.Gossip) bool) bool {
	for _, m := range c.all() {
		if m.killed.Load() {
			continue
		}
		g := m.Agent.Gossip()
		if g == nil || !ok(g) {
			return false
		}
	}
	return true
}

// countState counts the members g sees in state s (only the one named
// name, if set), walking its table without the sorted copy Members makes:
// a thousand agents' tables are counted on every poll.
func countState(g *gossip.Gossip, s gossip.State, name string) int {
	if name != "" {
		if m, ok := g.Member(name); ok && m.State == s {
			return 1
		}
		return 0
	}
	n := 0
	g.Each(func(m gossip.Member) bool {
		if m.State == s {
			n++
		}
		return true
	})
	return n
}
