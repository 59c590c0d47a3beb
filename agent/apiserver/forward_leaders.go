package apiserver

import (
	"fmt"
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
	last    leaderView    // the view the next change is measured from
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
	w.mu.Lock()
	w.waiters++
	changed = w.sampleLocked()
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
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

// look samples the route (waking the waiters if it changed) and returns
// what it saw: the view the watch measures the next change from.
func (w *leaderWatch) look() leaderView {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sampleLocked()
	return w.last
}

// current is the channel the next change closes.
func (w *leaderWatch) current() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sampleLocked()
}

// sampleLocked looks at the route and, when it changed since the last
// look, wakes the waiters; it returns the channel the next change closes.
// Waiters look at the route only through it (look, via movedFrom), so
// the watch's baseline is always what a waiter last saw: a leader that
// moves away and back between two polls still wakes the waiter that saw
// it away. Caller holds w.mu.
func (w *leaderWatch) sampleLocked() chan struct{} {
	if v := w.view(); v != w.last {
		close(w.changed)
		w.changed = make(chan struct{})
		w.last = v
	}
	return w.changed
}

func (w *leaderWatch) run() {
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for range t.C {
		w.mu.Lock()
		w.sampleLocked()
		if w.waiters == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// followMoves starts a request's watch of leadership moves, for moved
// (nil: the request follows no leader, and the channel is nil, never
// ready): the channel the next change closes, what ends the watch, and
// errLeaderMoved if leadership has already left (the look after
// subscribing, see subscribe).
func (f *forwarder) followMoves(moved func() string) (changed <-chan struct{}, release func(), err error) {
	if moved == nil {
		return nil, func() {}, nil
	}
	changed, release = f.leaders.subscribe()
	if to := moved(); to != "" {
		err = fmt.Errorf("%w to %s", errLeaderMoved, to)
	}
	return changed, release, err
}

// movedAgain is the look after changed fired: the channel of the next
// change, taken before looking, and errLeaderMoved if leadership left.
func (f *forwarder) movedAgain(moved func() string) (<-chan struct{}, error) {
	changed := f.leaders.current()
	if to := moved(); to != "" {
		return changed, fmt.Errorf("%w to %s", errLeaderMoved, to)
	}
	return changed, nil
}
