package apiserver

import (
	"sync"
	"time"
)

// leaderWatch tells the requests waiting for a forwarded answer when the
// route's view of the leader changes, so that they follow leadership
// without each polling the route: one goroutine per forwarder looks every
// poll interval, and only while some request waits. On a busy agent
// thousands of forwarded writes may wait at once (a hundred hollow nodes'
// status writes during a large apply); each with its own ticker, their
// wake-ups took about a tenth of the process's CPU.
type leaderWatch struct {
	route Route
	poll  time.Duration

	mu      sync.Mutex
	waiters int
	running bool
	changed chan struct{} // closed at the next change seen, then replaced
}

// leaderView is what a change is measured on: what movedFrom reads.
type leaderView struct {
	leader bool
	api    string
}

func newLeaderWatch(route Route, poll time.Duration) *leaderWatch {
	return &leaderWatch{route: route, poll: poll, changed: make(chan struct{})}
}

func (w *leaderWatch) view() leaderView {
	return leaderView{leader: w.route.IsLeader(), api: w.route.LeaderAPI()}
}

// subscribe registers a waiter. It returns the channel that the next
// change closes; after it fires, the waiter takes the following one with
// current BEFORE it looks at the route again, so that no change between
// the two is missed. A waiter must also look at the route once after
// subscribe: a change just before it may already be in the watch's view.
// release ends the waiter's interest; the goroutine stops within a poll
// interval of the last release.
func (w *leaderWatch) subscribe() (changed <-chan struct{}, release func()) {
	var start *leaderView
	w.mu.Lock()
	w.waiters++
	if !w.running {
		w.running = true
		v := w.view()
		start = &v
	}
	changed = w.changed
	w.mu.Unlock()
	if start != nil {
		go w.run(*start)
	}
	var once sync.Once
	return changed, func() {
		once.Do(func() {
			w.mu.Lock()
			w.waiters--
			w.mu.Unlock()
		})
	}
}

// current is the channel the next change closes.
func (w *leaderWatch) current() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

func (w *leaderWatch) run(last leaderView) {
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for range t.C {
		v := w.view()
		w.mu.Lock()
		if v != last {
			close(w.changed)
			w.changed = make(chan struct{})
			last = v
		}
		if w.waiters == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}
