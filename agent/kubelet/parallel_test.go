package kubelet

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// burst returns n pods of one container each, named p0..p(n-1).
func burst(n int) []*api.Pod {
	var pods []*api.Pod
	for i := range n {
		pods = append(pods, boundPod(fmt.Sprintf("p%d", i), fmt.Sprintf("uid-p%d", i), api.Container{Name: "c", Image: "reg/app:1"}))
	}
	return pods
}

// Pods bound to a node start together: with the limit above their number,
// every one of them is in its container start at once.
func TestNodeLoopStartsPodsInParallel(t *testing.T) {
	const n = 8
	h := newNodeHarness(t, false, func(c *Config) { c.MaxParallelStarts = 2 * n })
	gate := make(chan struct{})
	h.rt.startGate = gate
	h.start()
	h.pods.Replace(burst(n))
	h.waitFor(fmt.Sprintf("all %d pods in their start at once", n), func() bool {
		now, _ := h.rt.starting()
		return now == n
	})
	close(gate)
	for i := range n {
		h.waitStatus(fmt.Sprintf("p%d", i), "Running", running)
	}
}

// MaxParallelStarts bounds the pods in a start step at once: with a limit
// of 3, eight pods go through their starts three at a time, and all end up
// Running.
func TestNodeLoopBoundsParallelStarts(t *testing.T) {
	const n, limit = 8, 3
	h := newNodeHarness(t, false, func(c *Config) { c.MaxParallelStarts = limit })
	gate := make(chan struct{})
	h.rt.startGate = gate
	h.start()
	h.pods.Replace(burst(n))
	for released := 0; released < n; released++ {
		want := min(limit, n-released)
		h.waitFor(fmt.Sprintf("%d starts held after %d released", want, released), func() bool {
			now, _ := h.rt.starting()
			return now == want
		})
		gate <- struct{}{}
	}
	for i := range n {
		h.waitStatus(fmt.Sprintf("p%d", i), "Running", running)
	}
	if _, most := h.rt.starting(); most != limit {
		t.Fatalf("at most %d starts at once, want the limit %d", most, limit)
	}
}

// A pod deleted while it waits for a start slot never gets one: it is
// torn down (nothing created) while the slot's holder still starts, and
// the holder then runs.
func TestNodeLoopDeletedWhileWaitingForStartSlot(t *testing.T) {
	h := newNodeHarness(t, false, func(c *Config) { c.MaxParallelStarts = 1 })
	gate := make(chan struct{})
	h.rt.startGate = gate
	h.start()
	first := boundPod("first", "uid-first", api.Container{Name: "c", Image: "reg/app:1"})
	h.pods.Replace([]*api.Pod{first})
	h.waitFor("first holding the only slot in its start", func() bool {
		now, _ := h.rt.starting()
		return now == 1
	})
	second := boundPod("second", "uid-second", api.Container{Name: "c", Image: "reg/app:1"})
	h.pods.Replace([]*api.Pod{first, second})
	h.waitStatus("second", "reported Pending", func(st api.PodStatus) bool { return st.Phase == api.PodPending })
	h.pods.Replace([]*api.Pod{first})
	h.waitFor("second torn down", func() bool { return !h.net.has("uid-second") && !h.vols.has("uid-second") })
	if id := runtime.ContainerID("uid-second", "c", 0); slices.Contains(h.rt.Calls("create"), "create "+id) {
		t.Fatalf("the deleted pod's container was created")
	}
	close(gate)
	h.waitStatus("first", "Running", running)
}

// A new pod's first status (Pending) is written while its first steps
// run: a slow write to the control plane does not hold up its sandbox.
func TestNodeLoopFirstStatusAlongsideFirstSteps(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	release := make(chan struct{})
	h.status.onWrite = func(name string, st api.PodStatus) {
		if st.Phase == api.PodPending && name == "slow" {
			<-release
		}
	}
	h.start()
	t.Cleanup(func() { // before h.stop, which waits for the worker
		select {
		case <-release:
		default:
			close(release)
		}
	})
	h.pods.Replace([]*api.Pod{boundPod("slow", "uid-slow", api.Container{Name: "c", Image: "reg/app:1"})})
	h.waitFor("network set up and image pulled while the Pending write is held", func() bool {
		return h.net.has("uid-slow") && len(h.rt.Calls("pull reg/app:1")) == 1
	})
	close(release)
	h.waitStatus("slow", "Running", running)
}

// MaxParallelStatusWrites bounds the status writes in flight at once: with
// a limit of 2 and every write held, eight new pods have exactly two
// writes waiting on the control plane; released, all end up Running.
func TestNodeLoopBoundsParallelStatusWrites(t *testing.T) {
	const n, limit = 8, 2
	h := newNodeHarness(t, false, func(c *Config) { c.MaxParallelStatusWrites = limit })
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	h.status.onWrite = func(string, api.PodStatus) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	}
	held := func() int {
		mu.Lock()
		defer mu.Unlock()
		return inFlight
	}
	h.start()
	t.Cleanup(func() { // before h.stop, which waits for the workers
		select {
		case <-release:
		default:
			close(release)
		}
	})
	h.pods.Replace(burst(n))
	h.waitFor(fmt.Sprintf("%d status writes held", limit), func() bool { return held() == limit })
	close(release)
	for i := range n {
		h.waitStatus(fmt.Sprintf("p%d", i), "Running", running)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != limit {
		t.Fatalf("at most %d status writes at once, want the limit %d", most, limit)
	}
}
