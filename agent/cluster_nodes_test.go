package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

func TestRetryBackoffDoublesToItsLimitWithJitter(t *testing.T) {
	lo := retryBackoff{first: 200 * time.Millisecond, limit: 5 * time.Second, rand: func() float64 { return 0 }}
	hi := retryBackoff{first: 200 * time.Millisecond, limit: 5 * time.Second, rand: func() float64 { return 0.999999 }}
	bounds := []time.Duration{200, 400, 800, 1600, 3200, 5000, 5000}
	for i, b := range bounds {
		b *= time.Millisecond
		if got := lo.next(); got != b/2 {
			t.Errorf("failure %d: shortest wait %v, want %v", i+1, got, b/2)
		}
		if got := hi.next(); got > b || got < b-time.Millisecond {
			t.Errorf("failure %d: longest wait %v, want just under %v", i+1, got, b)
		}
	}
	lo.reset()
	if got := lo.next(); got != 100*time.Millisecond {
		t.Errorf("after a reset: %v, want the first wait again (100ms)", got)
	}
	real := retryBackoff{first: time.Second, limit: time.Second}
	for range 100 {
		if got := real.next(); got < 500*time.Millisecond || got > time.Second {
			t.Fatalf("random jitter gave %v, want within [500ms, 1s]", got)
		}
	}
}

// fakeNodeAPI is an agent's own API as registerLoop and waitPodCIDR use it
// (GET and POST of Node n1): it counts requests and answers 503 while
// failing is set, else from the Node it holds (404 while none).
type fakeNodeAPI struct {
	srv      *httptest.Server
	failing  atomic.Bool
	podCIDR  atomic.Value // string: what a GET reports
	node     atomic.Bool  // a Node exists
	gets     atomic.Int64
	creates  atomic.Int64
	requests atomic.Int64
}

func newFakeNodeAPI(t *testing.T) *fakeNodeAPI {
	f := &fakeNodeAPI{}
	f.podCIDR.Store("")
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.failing.Load() {
			http.Error(w, "no leader", http.StatusServiceUnavailable)
			return
		}
		switch r.Method {
		case http.MethodGet:
			f.gets.Add(1)
			if !f.node.Load() {
				http.Error(w, "not found", http.StatusNotFound)
				return
			}
			n := &api.Node{}
			n.Kind, n.APIVersion, n.Name, n.ResourceVersion = "Node", "v1", "n1", "2"
			n.Spec.PodCIDR = f.podCIDR.Load().(string)
			json.NewEncoder(w).Encode(n)
		case http.MethodPost:
			f.creates.Add(1)
			f.node.Store(true)
			b, _ := io.ReadAll(r.Body) // before the answer: see http.ResponseWriter
			w.WriteHeader(http.StatusCreated)
			w.Write(b)
		default:
			http.Error(w, "unexpected", http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// nodeLoopAgent is as much of an agent as registerLoop and waitPodCIDR
// use: a non-voter named n1 whose own API is f.
func nodeLoopAgent(f *fakeNodeAPI) *Agent {
	a := &Agent{log: slog.New(slog.DiscardHandler), client: api.NewClient(f.srv.URL), kicks: newKickers(), role: gossip.RoleNonvoter}
	a.cfg.NodeName, a.cfg.Interval = "n1", time.Second
	return a
}

// runFor runs loop until d has passed and returns when it has stopped.
func runFor(d time.Duration, loop func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	loop(ctx)
}

// A control plane that does not answer is asked less and less often:
// before, registerLoop retried every 200 ms for as long as it failed (15
// attempts in 3 s, a fifth of the dials of a hundred hollow nodes
// starting).
func TestRegisterLoopBacksOffWhileTheAPIFails(t *testing.T) {
	f := newFakeNodeAPI(t)
	f.failing.Store(true)
	a := nodeLoopAgent(f)
	runFor(3*time.Second, a.registerLoop)
	// Attempts at 0 and after at least 0.1, 0.2, 0.4 and 0.8 s more.
	if n := f.requests.Load(); n < 1 || n > 5 {
		t.Errorf("%d registration attempts in 3 s against a failing API, want 1 to 5", n)
	}
}

// When the API answers after a failure, the Node lands within about the
// first retry, and the pod CIDR wait is told.
func TestRegisterLoopLandsQuicklyOnceTheAPIAnswers(t *testing.T) {
	f := newFakeNodeAPI(t)
	f.failing.Store(true)
	a := nodeLoopAgent(f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.registerLoop(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for f.requests.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no registration attempt within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.failing.Store(false)
	healed := time.Now()
	select {
	case <-a.kicks.sub(kickRegistered):
	case <-time.After(30 * time.Second):
		t.Fatal("the Node was not registered within 30s of the API answering")
	}
	// The first retry waits at most registerFirstRetry; the rest is load.
	if took := time.Since(healed); took > 5*time.Second {
		t.Errorf("registered %v after the API answered, want about %v", took, registerFirstRetry)
	}
	if f.creates.Load() != 1 {
		t.Errorf("%d creates, want 1", f.creates.Load())
	}
}

// waitPodCIDR reads the Node less and less often while it has no CIDR:
// before, every 500 ms (7 reads in 3 s) for as long as it lasted.
func TestWaitPodCIDRBacksOff(t *testing.T) {
	f := newFakeNodeAPI(t)
	f.node.Store(true) // registered, no CIDR yet
	a := nodeLoopAgent(f)
	var got string
	runFor(3*time.Second, func(ctx context.Context) { got = a.waitPodCIDR(ctx) })
	if got != "" {
		t.Fatalf("waitPodCIDR = %q with no CIDR set", got)
	}
	// Reads at 0 and after at least 0.25, 0.5 and 1 s more.
	if n := f.gets.Load(); n < 1 || n > 4 {
		t.Errorf("%d reads of the Node in 3 s, want 1 to 4", n)
	}
}

// The CIDR follows a registration closely: waitPodCIDR reads soon after
// registerLoop's kick, whatever its back-off had grown to.
func TestWaitPodCIDRReadsSoonAfterTheRegistration(t *testing.T) {
	f := newFakeNodeAPI(t)
	a := nodeLoopAgent(f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cidr := make(chan string, 1)
	go func() { cidr <- a.waitPodCIDR(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for f.gets.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no read of the Node within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.podCIDR.Store("10.128.0.0/24")
	f.node.Store(true)
	a.kicks.kick(kickRegistered)
	start := time.Now()
	select {
	case got := <-cidr:
		if got != "10.128.0.0/24" {
			t.Fatalf("waitPodCIDR = %q, want 10.128.0.0/24", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no pod CIDR within 30s of the registration")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("pod CIDR read %v after the registration, want about %v", took, podCIDRFirstPoll)
	}
}

// A registration cuts a long wait short: without it, a wait grown to
// podCIDRMaxPoll would hold the CIDR back for seconds.
func TestPodCIDRWaitRestartsOnRegistration(t *testing.T) {
	poll := retryBackoff{first: podCIDRFirstPoll, limit: podCIDRMaxPoll, rand: func() float64 { return 0.999 }}
	for range 10 {
		poll.next() // grown to its limit
	}
	registered := make(chan struct{}, 1)
	registered <- struct{}{}
	start := time.Now()
	if !podCIDRWait(context.Background(), registered, &poll) {
		t.Fatal("podCIDRWait reported its context ended")
	}
	if took := time.Since(start); took >= podCIDRMaxPoll/2 {
		t.Errorf("waited %v after a registration, want about %v, well under %v", took, podCIDRFirstPoll, podCIDRMaxPoll)
	}
}
