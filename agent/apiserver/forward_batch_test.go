package apiserver

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoal-dev/shoal/consensus/store"
)

// TestForwardBatchesConcurrentWrites: writes that wait for the leader at
// the same moment go in one batch. The leader holds the first requests
// (writes that went alone, or batches) unread until every other write is
// queued; the rest then go in one or two batches, not one request each,
// and every write is answered by the leader and stored once.
func TestForwardBatchesConcurrentWrites(t *testing.T) {
	c := newFwdCluster(t, longTimeout, noStreams)
	var requests, batches, held atomic.Int64
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == ForwardBatchPath {
			batches.Add(1)
		}
		if requests.Add(1) <= maxInflightForwardBatches {
			held.Add(1)
			<-gate
		}
		c.leader.fwd.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Cleanup(release) // before front.Close, which waits for held handlers
	c.nonvoter.route.set(false, strings.TrimPrefix(front.URL, "http://"))

	const n = 40
	answers := make([]<-chan timedResponse, n)
	for i := range n {
		answers[i] = sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON(fmt.Sprintf("b%d", i), nil), clientLimit)
	}
	waitCount(t, "requests the leader holds", &held, maxInflightForwardBatches)
	waitCount(t, "writes queued", &c.nonvoter.fwd.(*forwarder).batch.enqueued, n-maxInflightForwardBatches)
	release()
	for i, ch := range answers {
		r := answer(t, fmt.Sprintf("write %d", i), ch)
		mustCode(t, r.response, http.StatusCreated)
		if r.servedBy != "leader" {
			t.Errorf("write %d served by %q", i, r.servedBy)
		}
		if _, err := c.leader.env.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: fmt.Sprintf("b%d", i)}); err != nil {
			t.Errorf("write %d not stored: %v", i, err)
		}
	}
	if got := requests.Load(); got > 2*maxInflightForwardBatches || batches.Load() == 0 {
		t.Errorf("%d writes went in %d requests (%d batches), want at most %d", n, got, batches.Load(), 2*maxInflightForwardBatches)
	}
}

// TestForwardBatchCarriesWritesOnly: a frame that is not a write of a
// resource is answered 400, and never served.
func TestForwardBatchCarriesWritesOnly(t *testing.T) {
	c := newFwdCluster(t)
	var body bytes.Buffer
	for _, it := range []*fwdItem{
		{method: http.MethodGet, uri: cmPath, header: http.Header{}, body: []byte("{}")},
		{method: http.MethodPost, uri: "/v1/cluster/raft/voters", header: http.Header{}, body: []byte("{}")},
		{method: http.MethodPost, uri: ForwardBatchPath, header: http.Header{}, body: []byte("x")},
		{method: http.MethodPost, uri: cmPath, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(configMapJSON("ok", nil))},
	} {
		writeRequestFrame(&body, it)
	}
	hits := c.leader.hits.Load()
	resp, err := http.Post(c.leader.ts.URL+ForwardBatchPath, batchContentType, &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("batch answered %s", resp.Status)
	}
	got := map[int]int{}
	br := bufio.NewReader(resp.Body)
	for {
		idx, ans, err := readResponseFrame(br)
		if err != nil {
			break
		}
		got[idx] = ans.status
	}
	want := map[int]int{0: 400, 1: 400, 2: 400, 3: 201}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	if d := c.leader.hits.Load() - hits; d != 1 {
		t.Errorf("the leader's handler served %d requests, want 1 (the write)", d)
	}
}

// tlsFront puts a TLS server in front of c's leader that calls seen with
// each request and counts its connections, and makes a non-voter (with
// opts) that speaks TLS to it, as agents do.
func tlsFront(t *testing.T, c *fwdCluster, seen func(*http.Request), opts ...func(*ForwarderConfig)) (*fwdAgent, *atomic.Int64) {
	t.Helper()
	conns := new(atomic.Int64)
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen(r)
		c.leader.fwd.ServeHTTP(w, r)
	}))
	front.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	front.StartTLS()
	t.Cleanup(front.Close)
	tlsCfg := front.Client().Transport.(*http.Transport).TLSClientConfig
	nv := newFwdAgent(t, "nonvoter-tls", false, &fakeRoute{leaderAPI: strings.TrimPrefix(front.URL, "https://")},
		append([]func(*ForwarderConfig){func(cfg *ForwarderConfig) { cfg.TLS = tlsCfg }}, opts...)...)
	return nv, conns
}

// noStreams makes a forwarder send batches instead of streams.
func noStreams(cfg *ForwarderConfig) { cfg.NoStreams = true }

// TestForwardBatchesReuseTheConnection: one write after another, each in
// a batch of its own (none alone: batchAll), share one connection to the leader (a batch's
// answer is read whole before the batch ends, so its connection goes back
// to the pool instead of being cut and opened again, with a new TLS
// handshake each time).
func TestForwardBatchesReuseTheConnection(t *testing.T) {
	c := newFwdCluster(t)
	var batches atomic.Int64
	nv, conns := tlsFront(t, c, func(r *http.Request) {
		if r.URL.Path == ForwardBatchPath {
			batches.Add(1)
		}
	}, noStreams)
	nv.fwd.(*forwarder).batch.batchAll.Store(true)
	const n = 5
	for i := range n {
		mustCode(t, send(t, nv, http.MethodPost, cmPath, configMapJSON(fmt.Sprintf("seq%d", i), nil), nil).response, http.StatusCreated)
	}
	if batches.Load() != n {
		t.Errorf("%d writes one after another went in %d batches, want %d", n, batches.Load(), n)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d batches one after another opened %d connections, want 1", n, got)
	}
}

// How newFwdAgent's forwarders send writes: on streams (the default), every
// write in a batch, or every write alone.
const (
	modeStreams = iota
	modeBatches
	modeAlone
)

var forwardMode = modeStreams

// forwardSuite is the forwarding tests that run in every mode.
var forwardSuite = []struct {
	name string
	run  func(*testing.T)
}{
	{"WritesGoToTheLeader", TestForwardWritesGoToTheLeader},
	{"LeaderUnreachable", TestForwardLeaderUnreachable},
	{"LoopGuard", TestForwardLoopGuard},
	{"FollowsTheLeader", TestForwardFollowsTheLeader},
	{"DeliveredWriteOnLeaderMove", TestForwardDeliveredWriteOnLeaderMove},
	{"NoAnswerTimesOut", TestForwardNoAnswerTimesOut},
	{"LeadershipComesHere", TestForwardLeadershipComesHere},
	{"OldLeaderRefuses", TestForwardOldLeaderRefuses},
	{"WaitsForAnElection", TestForwardWaitsForAnElection},
}

// inMode runs fn with newFwdAgent's forwarders in mode.
func inMode(mode int, fn func()) {
	forwardMode = mode
	defer func() { forwardMode = modeStreams }()
	fn()
}

// TestForwardInBatches runs the forwarding tests with every write in a
// batch: a batched write follows leadership, and is 503 (not applied) or
// 504 (outcome unknown) exactly as a write sent alone.
func TestForwardInBatches(t *testing.T) {
	inMode(modeBatches, func() {
		for _, tc := range forwardSuite {
			t.Run(tc.name, tc.run)
		}
	})
}

// TestForwardAlone runs the forwarding tests with every write sent as a
// request of its own (ForwarderConfig.Unbatched, and a leader's answer to
// a write too large for a frame).
func TestForwardAlone(t *testing.T) {
	inMode(modeAlone, func() {
		for _, tc := range forwardSuite {
			t.Run(tc.name, tc.run)
		}
	})
}

// TestForwardBatchRefusedGoesAlone: a leader that refuses batches (an
// older agent: 404 or 403) reads no frame; each write then goes to it
// alone, and is applied once.
func TestForwardBatchRefusedGoesAlone(t *testing.T) {
	forwardMode = modeBatches
	defer func() { forwardMode = modeStreams }()
	for _, code := range []int{http.StatusNotFound, http.StatusForbidden} {
		c := newFwdCluster(t)
		var refused atomic.Int64
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == ForwardBatchPath {
				refused.Add(1)
				http.Error(w, "no batches here", code)
				return
			}
			c.leader.fwd.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		c.nonvoter.route.set(false, strings.TrimPrefix(front.URL, "http://"))
		r := send(t, c.nonvoter, http.MethodPost, cmPath, configMapJSON("alone", nil), nil)
		mustCode(t, r.response, http.StatusCreated)
		if r.servedBy != "leader" || refused.Load() != 1 {
			t.Errorf("%d: served by %q after %d refused batches, want the leader after 1", code, r.servedBy, refused.Load())
		}
	}
}
