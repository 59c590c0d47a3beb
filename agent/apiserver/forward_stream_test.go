package apiserver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/store"
)

// pendingOn is how many writes wait on nv's stream to upstream, frames
// not yet sent.
func pendingOn(nv *fwdAgent, upstream string) int {
	s := nv.fwd.(*forwarder).streams
	s.mu.Lock()
	st := s.open[upstream]
	s.mu.Unlock()
	if st == nil {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.pending)
}

func mustBeStored(t *testing.T, c *fwdCluster, name string) {
	t.Helper()
	if _, err := c.leader.env.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: name}); err != nil {
		t.Errorf("%s is not in the leader's store: %v", name, err)
	}
}

// TestForwardStreamCarriesWrites: writes forwarded at once and one after
// another all travel on one stream, over one TLS connection to the
// leader, each answered by the leader and stored once.
func TestForwardStreamCarriesWrites(t *testing.T) {
	c := newFwdCluster(t, longTimeout)
	var streams, others atomic.Int64
	nv, conns := tlsFront(t, c, func(r *http.Request) {
		if r.URL.Path == ForwardStreamPath {
			streams.Add(1)
		} else {
			others.Add(1)
		}
	}, longTimeout)

	const n = 40
	answers := make([]<-chan timedResponse, n)
	for i := range n {
		answers[i] = sendAsync(nv, http.MethodPost, cmPath, configMapJSON(fmt.Sprintf("s%d", i), nil), clientLimit)
	}
	for i, ch := range answers {
		r := answer(t, fmt.Sprintf("write %d", i), ch)
		mustCode(t, r.response, http.StatusCreated)
		mustBeStored(t, c, fmt.Sprintf("s%d", i))
	}
	for i := range 5 {
		mustCode(t, send(t, nv, http.MethodPost, cmPath, configMapJSON(fmt.Sprintf("seq%d", i), nil), nil).response, http.StatusCreated)
		mustBeStored(t, c, fmt.Sprintf("seq%d", i))
	}
	if streams.Load() != 1 || others.Load() != 0 || conns.Load() != 1 {
		t.Errorf("%d writes went in %d streams and %d other requests over %d connections, want 1 stream, 0, 1",
			n+5, streams.Load(), others.Load(), conns.Load())
	}
}

// TestForwardStreamEndResendsUnreadFrames: a leader that stops reading a
// stream (it shuts down) answers the frames it read and says how many; the
// writes after those were certainly not applied and go on a new stream,
// each applied once.
func TestForwardStreamEndResendsUnreadFrames(t *testing.T) {
	c := newFwdCluster(t, longTimeout)
	var streams atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ForwardStreamPath || streams.Add(1) > 1 {
			c.leader.fwd.ServeHTTP(w, r)
			return
		}
		// The first stream: accepted (its first read sends "100
		// Continue") once three writes wait on it, so that their frames
		// leave together; one frame read and served, then the end.
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		deadline := time.Now().Add(10 * time.Second)
		for pendingOn(c.nonvoter, r.Host) < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
		}
		fr, err := readRequestFrame(bufio.NewReader(r.Body))
		if err != nil {
			t.Errorf("reading the first frame: %v", err)
			return
		}
		rec := &frameRecorder{header: http.Header{}}
		req := httptest.NewRequest(fr.method, fr.uri, bytes.NewReader(fr.body))
		req.Header = fr.header
		c.leader.fwd.ServeHTTP(rec, req)
		w.Header().Set("Content-Type", streamContentType)
		w.WriteHeader(http.StatusOK)
		var buf bytes.Buffer
		writeAnswerFrame(&buf, 0, rec)
		putUvarint(&buf, 1)
		putUvarint(&buf, endFrameStatus)
		w.Write(buf.Bytes())
	}))
	t.Cleanup(front.Close)
	// Before front.Close: the non-voter's stream to it ends.
	t.Cleanup(c.nonvoter.fwd.(*forwarder).streams.stop)
	c.nonvoter.route.set(false, strings.TrimPrefix(front.URL, "http://"))

	hits := c.leader.hits.Load()
	answers := make([]<-chan timedResponse, 3)
	for i := range answers {
		answers[i] = sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON(fmt.Sprintf("e%d", i), nil), clientLimit)
	}
	for i, ch := range answers {
		r := answer(t, fmt.Sprintf("write %d", i), ch)
		mustCode(t, r.response, http.StatusCreated)
		mustBeStored(t, c, fmt.Sprintf("e%d", i))
	}
	if got := c.leader.hits.Load() - hits; got != 3 {
		t.Errorf("the leader served %d writes, want 3 (each once)", got)
	}
	if streams.Load() != 2 {
		t.Errorf("%d streams, want 2 (the unread frames on a second)", streams.Load())
	}
}

// TestForwardStreamServerStops: a stream's frames are served as they
// arrive, a frame that is not a write of a resource is answered 400; when
// the server stops (Done), the stream says how many frames it read and
// ends, and a new stream is refused with 503.
func TestForwardStreamServerStops(t *testing.T) {
	stop := make(chan struct{})
	leader := newFwdAgent(t, "leader", true, &fakeRoute{local: true, leader: true}, func(cfg *ForwarderConfig) { cfg.Done = stop })
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, _ := http.NewRequest(http.MethodPost, leader.ts.URL+ForwardStreamPath, pr)
	type result struct {
		resp *http.Response
		err  error
	}
	opened := make(chan result, 1)
	go func() {
		resp, err := http.DefaultTransport.RoundTrip(req)
		opened <- result{resp, err}
	}()
	send := func(it *fwdItem) {
		var b bytes.Buffer
		writeRequestFrame(&b, it)
		if _, err := pw.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	// The answers' header comes with the first answer.
	send(&fwdItem{method: http.MethodGet, uri: cmPath, header: http.Header{}, body: []byte("{}")})
	res := <-opened
	if res.err != nil {
		t.Fatal(res.err)
	}
	resp := res.resp
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the stream was answered %s", resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	next := func(what string) (int, itemAnswer) {
		idx, ans, err := readResponseFrameUpTo(br, maxStreamFrames)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return idx, ans
	}
	if idx, ans := next("a read's answer"); idx != 0 || ans.status != http.StatusBadRequest {
		t.Errorf("a read in a stream: frame %d answered %d, want frame 0 answered 400", idx, ans.status)
	}
	send(&fwdItem{method: http.MethodPost, uri: cmPath, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(configMapJSON("st", nil))})
	if idx, ans := next("a write's answer"); idx != 1 || ans.status != http.StatusCreated {
		t.Errorf("a write in a stream: frame %d answered %d (%s), want frame 1 answered 201", idx, ans.status, ans.body)
	}
	close(stop)
	if idx, ans := next("the end"); idx != 2 || ans.status != endFrameStatus {
		t.Errorf("after the stop: frame %d status %d, want the end after 2 frames", idx, ans.status)
	}
	if _, err := br.Peek(1); err != io.EOF {
		t.Errorf("after the end: %v, want EOF", err)
	}
	again, err := http.Post(leader.ts.URL+ForwardStreamPath, streamContentType, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream opened after the stop: %s, want 503", again.Status)
	}
}

// TestForwardStreamRefusedGoesWithoutStreams: a leader that refuses
// streams (an older agent: 404, 405 or 403) reads no frame; the write goes
// without a stream, is applied once, and the writes after it do not try a
// stream again for a while.
func TestForwardStreamRefusedGoesWithoutStreams(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusForbidden} {
		c := newFwdCluster(t)
		var refused atomic.Int64
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == ForwardStreamPath {
				refused.Add(1)
				http.Error(w, "no streams here", code)
				return
			}
			c.leader.fwd.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		c.nonvoter.route.set(false, strings.TrimPrefix(front.URL, "http://"))
		for i := range 3 {
			name := fmt.Sprintf("old-%d-%d", code, i)
			r := send(t, c.nonvoter, http.MethodPost, cmPath, configMapJSON(name, nil), nil)
			mustCode(t, r.response, http.StatusCreated)
			if r.servedBy != "leader" {
				t.Errorf("%d: served by %q", code, r.servedBy)
			}
			mustBeStored(t, c, name)
		}
		if refused.Load() != 1 {
			t.Errorf("%d: %d streams refused, want 1 (then none tried)", code, refused.Load())
		}
	}
}

// TestForwardStreamDropsGivenUpWrites: while a stream waits for a paused
// leader, the writes given up meanwhile do not pile up in its queue.
func TestForwardStreamDropsGivenUpWrites(t *testing.T) {
	c := newFwdCluster(t, func(cfg *ForwarderConfig) { cfg.Timeout = 300 * time.Millisecond })
	paused := newStuckLeader(t, false)
	c.nonvoter.route.set(false, paused.addr())
	const n = pruneStreamQueue + 50
	answers := make([]<-chan timedResponse, n)
	for i := range n {
		answers[i] = sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON(fmt.Sprintf("g%d", i), nil), clientLimit)
	}
	for i, ch := range answers {
		mustCode(t, answer(t, fmt.Sprintf("write %d", i), ch).response, http.StatusServiceUnavailable)
	}
	// One more write, queued after all those were given up.
	mustCode(t, answer(t, "the last write", sendAsync(c.nonvoter, http.MethodPost, cmPath, configMapJSON("last", nil), clientLimit)).response,
		http.StatusServiceUnavailable)
	if q := pendingOn(c.nonvoter, paused.addr()); q > 1 {
		t.Errorf("%d writes queued on the stream after %d were given up, want at most the last", q, n+1)
	}
}

// The metrics package names the stream's path without importing this one.
func TestForwardStreamPathIsStable(t *testing.T) {
	if ForwardStreamPath != "/v1/cluster/forward/stream" {
		t.Errorf("ForwardStreamPath changed to %q: change agent/internal/metrics' forwardStreamPath too", ForwardStreamPath)
	}
}

// openStreams is how many streams nv holds open.
func openStreams(nv *fwdAgent) int {
	s := nv.fwd.(*forwarder).streams
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// TestForwardStreamUnacceptedGoes: a stream the leader does not take (it
// is paused) is dropped after the forwarder's timeout, not held for
// minutes; and one still waiting when the forwarder stops goes at once,
// its write then sent without a stream.
func TestForwardStreamUnacceptedGoes(t *testing.T) {
	c := newFwdCluster(t, func(cfg *ForwarderConfig) { cfg.Timeout = 300 * time.Millisecond })
	paused := newStuckLeader(t, false)
	c.nonvoter.route.set(false, paused.addr())
	mustCode(t, send(t, c.nonvoter, http.MethodPost, cmPath, configMapJSON("p", nil), nil).response, http.StatusServiceUnavailable)
	deadline := time.Now().Add(10 * time.Second)
	for openStreams(c.nonvoter) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream to the paused leader is still open 10 s after its write was given up")
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}

	const timeout = 5 * time.Second
	nv := newFwdAgent(t, "nonvoter2", false, &fakeRoute{leaderAPI: paused.addr()}, func(cfg *ForwarderConfig) { cfg.Timeout = timeout })
	write := sendAsync(nv, http.MethodPost, cmPath, configMapJSON("q", nil), clientLimit)
	deadline = time.Now().Add(10 * time.Second)
	for pendingOn(nv, paused.addr()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the write never waited on a stream")
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
	stopped := time.Now()
	nv.fwd.(*forwarder).streams.stop()
	for openStreams(nv) != 0 {
		if time.Since(stopped) > timeout/2 {
			t.Fatalf("the unaccepted stream is still open %v after the forwarder stopped", timeout/2)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
	// The write then waits on the paused leader as a request of its own,
	// and is not applied.
	mustCode(t, answer(t, "the write", write).response, http.StatusServiceUnavailable)
}
