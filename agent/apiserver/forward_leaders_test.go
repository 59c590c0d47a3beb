package apiserver

import (
	"testing"
	"time"
)

// TestLeaderWatch: a waiter hears of a change of leader within a few poll
// intervals, the next change closes the channel current returned, and the
// watch's goroutine stops once no one waits, starting again for the next
// waiter.
func TestLeaderWatch(t *testing.T) {
	route := &fakeRoute{leaderAPI: "a:1"}
	w := newLeaderWatch(route, 5*time.Millisecond)
	heard := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no change heard within 10s", what)
		}
	}
	quiet := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
			t.Fatalf("%s: a change heard while the leader stayed", what)
		default:
		}
	}

	ch, release := w.subscribe()
	quiet(ch, "subscribed")
	route.mu.Lock()
	route.leaderAPI = "b:2"
	route.mu.Unlock()
	heard(ch, "leader a:1 → b:2")

	next := w.current()
	quiet(next, "after the change")
	route.mu.Lock()
	route.leader = true
	route.mu.Unlock()
	heard(next, "this agent became leader")

	release()
	release() // twice is harmless
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		running, waiters := w.running, w.waiters
		w.mu.Unlock()
		if waiters != 0 {
			t.Fatalf("%d waiters after the only one released (twice)", waiters)
		}
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch still runs 10s after its last waiter left")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}

	// A later waiter starts it again.
	ch, release = w.subscribe()
	defer release()
	route.mu.Lock()
	route.leader, route.leaderAPI = false, "c:3"
	route.mu.Unlock()
	heard(ch, "after a restart")
}

// TestLeaderWatchSeesAFlap: a waiter that saw the leader move away (A to
// B) hears of its return to A even when the watch never polled while it
// was at B: the watch measures changes from what the waiter last saw.
func TestLeaderWatchSeesAFlap(t *testing.T) {
	route := &fakeRoute{leaderAPI: "a:1"}
	w := newLeaderWatch(route, 20*time.Millisecond)
	first, release1 := w.subscribe() // the watch now runs, from A
	defer release1()

	route.mu.Lock()
	route.leaderAPI = "b:2"
	route.mu.Unlock()
	// A request routed to B subscribes and looks: it sees B.
	ch, release := w.subscribe()
	defer release()
	if v := w.look(); v.api != "b:2" {
		t.Fatalf("the waiter sees %+v, want b:2", v)
	}
	select {
	case <-first:
	default:
		t.Fatal("the waiter from before the move was not woken by it")
	}
	// Back to A before any poll compared B with anything.
	route.mu.Lock()
	route.leaderAPI = "a:1"
	route.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter that saw B never heard that A leads again")
	}
}
