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
