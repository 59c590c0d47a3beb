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

// lateWaitsForSlot starts a loop with one status slot, held by the write
// of a pod "hold" until release, and a second pod "late" whose status
// write after its steps waits for that slot.
func lateWaitsForSlot(t *testing.T) (h *nodeHarness, release func()) {
	h = newNodeHarness(t, false, func(c *Config) { c.MaxParallelStatusWrites = 1 })
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	h.status.onWrite = func(name string, _ api.PodStatus) {
		if name == "hold" {
			<-ch
		}
	}
	h.start()
	t.Cleanup(release) // runs before h.stop, which waits for the held write
	hold := boundPod("hold", "uid-hold", api.Container{Name: "c", Image: "reg/app:1"})
	h.pods.Replace([]*api.Pod{hold})
	h.waitFor("the held pod's write under way", func() bool { return len(h.status.all("hold")) == 1 })
	h.pods.Replace([]*api.Pod{hold, boundPod("late", "uid-late", api.Container{Name: "c", Image: "reg/app:1"})})
	h.waitFor("the late pod's write after its steps waiting for the slot", func() bool { return h.loop.waiting.Load() == 1 })
	return h, release
}

// A new pod's Pending write alongside its steps gives way when the steps
// end before a slot for it is free: with the one slot held, the pod's
// first status written is the one after its steps (Running), not Pending
// and then Running.
func TestNodeLoopPendingGivesWayToNewerStatus(t *testing.T) {
	h, release := lateWaitsForSlot(t)
	release()
	h.waitStatus("late", "Running", running)
	if got := h.status.all("late"); len(got) != 1 {
		var phases []string
		for _, st := range got {
			phases = append(phases, string(st.Phase))
		}
		t.Fatalf("the late pod's statuses written: %v, want one (Running)", phases)
	}
}

// A status write that waited for a slot carries what arrived meanwhile:
// the container exited while its Running status waited, and the status
// written says so, instead of a Running container followed by the exit.
func TestNodeLoopStatusWriteTakesWhatArrivedWhileWaiting(t *testing.T) {
	h, release := lateWaitsForSlot(t)
	h.rt.exit(runtime.ContainerID("uid-late", "c", 0), 3, false)
	h.waitFor("the exit offered to the late pod's worker", func() bool {
		h.loop.mu.Lock()
		w := h.loop.workers["uid-late"]
		h.loop.mu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.events) > 0
	})
	release()
	h.waitFor("a status of the late pod written", func() bool { return len(h.status.all("late")) > 0 })
	first := h.status.all("late")[0]
	if len(first.ContainerStatuses) != 1 || first.ContainerStatuses[0].State.Running != nil {
		t.Fatalf("the late pod's first status written: %+v, want its container no longer running", first.ContainerStatuses)
	}
}
