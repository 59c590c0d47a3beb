package apiserver

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// stuckLeader is a leader that answers nothing, as a paused (SIGSTOPped)
// process: the kernel still accepts connections, nobody reads them. With
// takeBodies it first reads each request, body included (asking for it
// with "100 Continue" as Go's server does), or accepts a stream and reads
// its frames (each frame counts as a request), then goes silent: the
// request has reached it.
type stuckLeader struct {
	ln       net.Listener
	accepted atomic.Int64
	received atomic.Int64 // requests read whole
	mu       sync.Mutex
	conns    []net.Conn
}

func newStuckLeader(t *testing.T, takeBodies bool) *stuckLeader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stuckLeader{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			s.accepted.Add(1)
			if !takeBodies {
				continue
			}
			go func() {
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				if req.URL.Path == ForwardStreamPath {
					takeStream(conn, req, -1, func() { s.received.Add(1) })
					return
				}
				if req.Header.Get("Expect") == "100-continue" {
					io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n")
				}
				if _, err := io.Copy(io.Discard, req.Body); err == nil {
					s.received.Add(1)
				}
			}()
		}
	}()
	return s
}

// takeStream accepts a stream of forwarded writes as a leader does (its
// "100 Continue"), then reads up to n of its frames (all of them if n <
// 0), calling onFrame for each, and answers none.
func takeStream(conn net.Conn, req *http.Request, n int, onFrame func()) {
	io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n")
	br := bufio.NewReader(req.Body)
	for i := 0; n < 0 || i < n; i++ {
		if _, err := readRequestFrame(br); err != nil {
			return
		}
		onFrame()
	}
}

func (s *stuckLeader) addr() string { return s.ln.Addr().String() }

func (r *fakeRoute) set(leader bool, leaderAPI string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leader, r.leaderAPI = leader, leaderAPI
}

// timedResponse is an answer and how long it took.
type timedResponse struct {
	fwdResponse
	took time.Duration
	err  error
}

// sendAsync sends a request in the background with a client timeout of
// limit; before the forwarder followed leadership, these requests waited
// a minute.
func sendAsync(a *fwdAgent, method, path, body string, limit time.Duration) <-chan timedResponse {
	ch := make(chan timedResponse, 1)
	go func() {
		start := time.Now()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, a.ts.URL+path, rd)
		if err != nil {
			ch <- timedResponse{err: err}
			return
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := (&http.Client{Timeout: limit}).Do(req)
		if err != nil {
			ch <- timedResponse{err: err, took: time.Since(start)}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- timedResponse{
			fwdResponse: fwdResponse{response{code: resp.StatusCode, header: resp.Header, body: b}, resp.Header.Get("X-Served-By")},
			took:        time.Since(start),
			err:         err,
		}
	}()
	return ch
}

func waitCount(t *testing.T, what string, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, n.Load(), want)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func answer(t *testing.T, what string, ch <-chan timedResponse) timedResponse {
	t.Helper()
	r := <-ch
	if r.err != nil {
		t.Fatalf("%s: no answer after %v: %v", what, r.took, r.err)
	}
	return r
}

// longTimeout makes the forwarder's own timeout long: an answer that comes
// quickly then comes from following leadership, not from the timeout.
func longTimeout(cfg *ForwarderConfig) { cfg.Timeout = time.Minute }

// clientLimit bounds how long a test's client waits; far below
// longTimeout, generous for a loaded machine.
const clientLimit = 20 * time.Second

// TestForwardFollowsTheLeader: the leader pauses with requests in flight
// that it never read; leadership moves; the read and the write go to the
// new leader and succeed, the write exactly once.
func TestForwardFollowsTheLeader(t *testing.T) {
	c := newFwdCluster(t, longTimeout)
	mustCode(t, send(t, c.leader, http.MethodPost, cmPath, configMapJSON("a", nil), nil).response, http.StatusCreated)
	stuck := newStuckLeader(t, false)
	c.nonvoter.route.set(false, stuck.addr())

	read := sendAsync(c.nonvoter, http.MethodGet, cmPath+"/a", "", clientLimit)
	write := sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("during-pause", nil), clientLimit)
	waitCount(t, "connections to the paused leader", &stuck.accepted, 2)
	c.nonvoter.route.set(false, c.leader.addr()) // a new leader is elected

	r := answer(t, "read", read)
	mustCode(t, r.response, http.StatusOK)
	if r.servedBy != "leader" {
		t.Errorf("read served by %q, want the new leader", r.servedBy)
	}
	r = answer(t, "write", write)
	mustCode(t, r.response, http.StatusCreated)
	if r.servedBy != "leader" {
		t.Errorf("write served by %q, want the new leader", r.servedBy)
	}
	if stuck.received.Load() != 0 {
		t.Errorf("the paused leader read %d requests", stuck.received.Load())
	}
	if _, err := c.leader.env.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "during-pause"}); err != nil {
		t.Errorf("the write is not in the new leader's store: %v", err)
	}
}

// TestForwardDeliveredWriteOnLeaderMove: a write the old leader may have
// received is not sent again when leadership moves: 504 with reason
// Timeout and no Retry-After, at once, naming the old leader's API
// address. A DELETE, which has no body, counts as received once a
// connection was open.
func TestForwardDeliveredWriteOnLeaderMove(t *testing.T) {
	c := newFwdCluster(t, longTimeout)
	mustCode(t, send(t, c.leader, http.MethodPost, cmPath, configMapJSON("old", nil), nil).response, http.StatusCreated)
	stuck := newStuckLeader(t, true)
	c.nonvoter.route.set(false, stuck.addr())

	write := sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("maybe", nil), clientLimit)
	del := sendAsync(c.nonvoter, http.MethodDelete, cmPath+"/old", "", clientLimit)
	waitCount(t, "requests the stuck leader read", &stuck.received, 2)
	c.nonvoter.route.set(false, c.leader.addr())

	for what, ch := range map[string]<-chan timedResponse{"POST": write, "DELETE": del} {
		r := answer(t, what, ch)
		st := mustCode(t, r.response, http.StatusGatewayTimeout).status(t)
		if st.Reason != api.ReasonTimeout || r.header.Get("Retry-After") != "" {
			t.Errorf("%s: reason %q, Retry-After %q", what, st.Reason, r.header.Get("Retry-After"))
		}
		if !strings.Contains(st.Message, "outcome is unknown") || !strings.Contains(st.Message, stuck.addr()) ||
			!strings.Contains(st.Message, c.leader.addr()) {
			t.Errorf("%s: message %q should say the outcome is unknown and name %s and %s", what, st.Message, stuck.addr(), c.leader.addr())
		}
	}
	// Neither was sent again to the new leader.
	if _, err := c.leader.env.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "maybe"}); err == nil {
		t.Error("the write whose outcome is unknown was sent again to the new leader")
	}
	if _, err := c.leader.env.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "old"}); err != nil {
		t.Errorf("the DELETE whose outcome is unknown was sent again to the new leader: %v", err)
	}
}

// TestForwardNoAnswerTimesOut: the leader goes silent and leadership does
// not move (it is cut off from this agent only). After Timeout: a write it
// received is 504 (outcome unknown), a write it never read is 503 (not
// applied), a read is 503; all in seconds, not a minute.
func TestForwardNoAnswerTimesOut(t *testing.T) {
	const timeout = time.Second
	c := newFwdCluster(t, func(cfg *ForwarderConfig) { cfg.Timeout = timeout })
	taking := newStuckLeader(t, true)
	paused := newStuckLeader(t, false)

	c.nonvoter.route.set(false, taking.addr())
	r := answer(t, "received write", sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("x", nil), clientLimit))
	st := mustCode(t, r.response, http.StatusGatewayTimeout).status(t)
	if st.Reason != api.ReasonTimeout || !strings.Contains(st.Message, taking.addr()) {
		t.Errorf("received write: %+v", st)
	}
	if taking.received.Load() != 1 {
		t.Errorf("the leader received %d requests, want 1", taking.received.Load())
	}

	c.nonvoter.route.set(false, paused.addr())
	r = answer(t, "unread write", sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("y", nil), clientLimit))
	st = mustCode(t, r.response, http.StatusServiceUnavailable).status(t)
	if !strings.Contains(st.Message, "not applied") || !strings.Contains(st.Message, paused.addr()) || r.header.Get("Retry-After") == "" {
		t.Errorf("unread write: %+v, Retry-After %q", st, r.header.Get("Retry-After"))
	}
	r = answer(t, "read", sendAsync(c.nonvoter, http.MethodGet, cmPath, "", clientLimit))
	st = mustCode(t, r.response, http.StatusServiceUnavailable).status(t)
	if !strings.Contains(st.Message, paused.addr()) {
		t.Errorf("read: %+v", st)
	}
	// Each took about the timeout (the transport's own backstop is a
	// minute and more).
	if r.took < timeout || r.took > clientLimit/2 {
		t.Errorf("the read took %v, want about %v", r.took, timeout)
	}
}

// TestForwardLeadershipComesHere: while a write waits on a paused leader
// that never read it, this agent becomes the leader: it serves the write
// itself.
func TestForwardLeadershipComesHere(t *testing.T) {
	c := newFwdCluster(t, longTimeout)
	stuck := newStuckLeader(t, false)
	c.voter.route.set(false, stuck.addr())
	write := sendAsync(c.voter, http.MethodPost, cmPath, configMapJSON("here", nil), clientLimit)
	waitCount(t, "connections to the paused leader", &stuck.accepted, 1)
	c.voter.route.set(true, "")
	r := answer(t, "write", write)
	mustCode(t, r.response, http.StatusCreated)
	if r.servedBy != "voter" {
		t.Errorf("served by %q, want the new leader (voter)", r.servedBy)
	}
	if _, err := c.voter.env.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "here"}); err != nil {
		t.Errorf("not in the new leader's store: %v", err)
	}
}

// TestForwardOldLeaderRefuses: the request reaches an agent that has just
// lost leadership; it refuses the second hop with 503 (not applied). As
// leadership has moved, the forwarder sends the request to the new leader
// instead of passing the 503 on.
func TestForwardOldLeaderRefuses(t *testing.T) {
	c := newFwdCluster(t, longTimeout)
	c.nonvoter.route.mu.Lock()
	c.nonvoter.route.leaderAPI = c.voter.addr() // the old leader, which now forwards to the leader
	c.nonvoter.route.thenLeaderAPI = c.leader.addr()
	c.nonvoter.route.mu.Unlock()
	r := answer(t, "write", sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("refused", nil), clientLimit))
	mustCode(t, r.response, http.StatusCreated)
	if r.servedBy != "leader" {
		t.Errorf("served by %q, want the new leader", r.servedBy)
	}
	// Without a move the 503 is the answer.
	c.nonvoter.route.set(false, c.voter.addr())
	r = answer(t, "write", sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("refused2", nil), clientLimit))
	if st := mustCode(t, r.response, http.StatusServiceUnavailable).status(t); !strings.Contains(st.Message, "cannot serve it either") {
		t.Errorf("message %q", st.Message)
	}
}

// TestForwardWaitsForAnElection: no leader is known when the request
// arrives; one is elected soon after, and the request goes there.
func TestForwardWaitsForAnElection(t *testing.T) {
	c := newFwdCluster(t, longTimeout)
	c.nonvoter.route.set(false, "")
	hits := c.leader.hits.Load()
	write := sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("elected", nil), clientLimit)
	read := sendAsync(c.nonvoter, http.MethodGet, cmPath, "", clientLimit)
	// Both wait: neither reached any agent yet.
	for range 3 {
		select {
		case r := <-write:
			t.Fatalf("the write was answered before any leader was known: %d %s", r.code, r.body)
		case r := <-read:
			t.Fatalf("the read was answered before any leader was known: %d %s", r.code, r.body)
		case <-time.After(50 * time.Millisecond): // checking that nothing happens
		}
	}
	if c.leader.hits.Load() != hits {
		t.Fatal("the leader was reached before it was known")
	}
	c.nonvoter.route.set(false, c.leader.addr())
	mustCode(t, answer(t, "write", write).response, http.StatusCreated)
	mustCode(t, answer(t, "read", read).response, http.StatusOK)
}

func TestForwarderConfigValidate(t *testing.T) {
	for field, cfg := range map[string]ForwarderConfig{
		"Route":        {},
		"Timeout":      {Route: &fakeRoute{}, Timeout: -1},
		"VoterTimeout": {Route: &fakeRoute{}, VoterTimeout: -1},
		"PollInterval": {Route: &fakeRoute{}, PollInterval: -1},
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ForwarderConfig."+field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := (ForwarderConfig{Route: &fakeRoute{}}).Validate(); err != nil {
		t.Error(err)
	}
}
