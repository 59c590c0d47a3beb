package apiserver

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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

// troubleRoute is a fakeRoute that records LeaderTrouble reports.
type troubleRoute struct {
	*fakeRoute
	mu      sync.Mutex
	reports []string
}

func (r *troubleRoute) LeaderTrouble(upstream string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, upstream)
}

func (r *troubleRoute) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reports...)
}

// TestForwarderReportsLeaderTrouble: a write forwarded to a leader that
// answers 503, or to one that cannot be reached, is reported to a route
// that wants to hear it (alone, in a batch and on a stream); a write the
// leader serves is not.
func TestForwarderReportsLeaderTrouble(t *testing.T) {
	for _, mode := range []struct {
		name string
		cfg  func(*ForwarderConfig)
	}{
		{"alone", func(c *ForwarderConfig) { c.Unbatched = true }},
		{"batch", func(c *ForwarderConfig) { c.NoStreams, c.BatchAlways = true, true }},
		{"stream", func(c *ForwarderConfig) { c.BatchAlways = true }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			status := atomic.Int32{}
			status.Store(http.StatusServiceUnavailable)
			// The leader is a forwarder too: it serves batches and
			// streams, and its API answers what status says.
			leaderDone := make(chan struct{})
			defer close(leaderDone)
			leader := httptest.NewServer(NewForwarder(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(int(status.Load()))
				io.WriteString(w, `{"kind":"Status","message":"not now"}`)
			}), ForwarderConfig{Route: &fakeRoute{local: true, leader: true}, Name: "leader",
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Done: leaderDone}))
			defer leader.Close()
			addr := strings.TrimPrefix(leader.URL, "http://")
			route := &troubleRoute{fakeRoute: &fakeRoute{leaderAPI: addr}}
			cfg := ForwarderConfig{Route: route, Name: "nv", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeout: 2 * time.Second}
			mode.cfg(&cfg)
			done := make(chan struct{})
			defer close(done)
			cfg.Done = done
			fwd := httptest.NewServer(NewForwarder(http.NotFoundHandler(), cfg))
			defer fwd.Close()
			write := func() int {
				t.Helper()
				resp, err := http.Post(fwd.URL+"/api/v1/namespaces/default/configmaps", "application/json", strings.NewReader(`{"metadata":{"name":"x"}}`))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := write(); code != http.StatusServiceUnavailable {
				t.Fatalf("answer %d, want the leader's 503", code)
			}
			// The answer may reach the client just before the report is
			// made: wait for it.
			reported := func(n int, what string) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for {
					got := route.got()
					if len(got) >= n && got[n-1] == addr {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("reports %v %s, want %d, the last for %s", got, what, n, addr)
					}
					time.Sleep(time.Millisecond) // polling a condition with a deadline
				}
			}
			reported(1, "after the leader's 503")
			status.Store(http.StatusCreated)
			if code := write(); code != http.StatusCreated {
				t.Fatalf("answer %d, want 201", code)
			}
			if got := route.got(); len(got) != 1 {
				t.Fatalf("reports %v after a served write, want still one", got)
			}
			// Unreachable now: no new connection, and the stream cut.
			leader.Listener.Close()
			leader.CloseClientConnections()
			// 503 (not applied), or 504 when the write went out on the
			// stream just before it was cut (outcome unknown): either way
			// the route hears of it.
			if code := write(); code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout {
				t.Fatalf("answer %d with the leader gone, want 503 or 504", code)
			}
			reported(2, "with the leader gone")
		})
	}
}
