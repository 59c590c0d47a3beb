package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// fakeRoute is a Route whose answers the test sets.
type fakeRoute struct {
	mu        sync.Mutex
	local     bool
	leader    bool
	leaderAPI string
	voters    []string
	// thenLeaderAPI, if set, becomes leaderAPI after the next LeaderAPI
	// call: leadership moves just after a request was routed.
	thenLeaderAPI string
}

func (r *fakeRoute) LocalStore() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.local }
func (r *fakeRoute) IsLeader() bool   { r.mu.Lock(); defer r.mu.Unlock(); return r.leader }
func (r *fakeRoute) LeaderAPI() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.leaderAPI
	if r.thenLeaderAPI != "" {
		r.leaderAPI, r.thenLeaderAPI = r.thenLeaderAPI, ""
	}
	return l
}
func (r *fakeRoute) VoterAPIs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.voters...)
}

// fwdAgent is one agent of a forwarding test: a local handler that stamps
// X-Served-By on its answers and counts requests, behind a forwarder.
type fwdAgent struct {
	name      string
	env       *env // nil for a non-voter, which has no store
	route     *fakeRoute
	ts        *httptest.Server
	fwd       http.Handler
	hits      atomic.Int64
	forwarded atomic.Value // last ForwardedHeader seen by the local handler
}

func (a *fwdAgent) addr() string { return strings.TrimPrefix(a.ts.URL, "http://") }

func newFwdAgent(t *testing.T, name string, withStore bool, route *fakeRoute, opts ...func(*ForwarderConfig)) *fwdAgent {
	t.Helper()
	a := &fwdAgent{name: name, route: route}
	var inner http.Handler
	if withStore {
		a.env = newEnv(t)
		inner = a.env.srv.Handler()
	} else {
		inner = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				io.WriteString(w, "ok")
				return
			}
			http.Error(w, "the non-voter has no store: "+r.URL.Path, http.StatusTeapot)
		})
	}
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		a.forwarded.Store(r.Header.Get(ForwardedHeader))
		w.Header().Set("X-Served-By", name)
		inner.ServeHTTP(w, r)
	})
	cfg := ForwarderConfig{
		Route:  route,
		Name:   name,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	switch forwardMode {
	case modeBatches:
		cfg.NoStreams = true
	case modeAlone:
		cfg.Unbatched = true
	}
	done := make(chan struct{})
	cfg.Done = done
	for _, o := range opts {
		o(&cfg)
	}
	a.fwd = NewForwarder(local, cfg)
	if b := a.fwd.(*forwarder).batch; b != nil && forwardMode == modeBatches {
		b.batchAll.Store(true)
	}
	a.ts = httptest.NewServer(a.fwd)
	t.Cleanup(a.ts.Close)
	// First (cleanups run last in, first out): the streams end, as when
	// an agent shuts down, so that no server's Close waits for one.
	t.Cleanup(func() { close(done) })
	return a
}

// fwdCluster is a leader, a voter and a non-voter.
type fwdCluster struct {
	leader, voter, nonvoter *fwdAgent
}

func newFwdCluster(t *testing.T, opts ...func(*ForwarderConfig)) *fwdCluster {
	t.Helper()
	c := &fwdCluster{}
	c.leader = newFwdAgent(t, "leader", true, &fakeRoute{local: true, leader: true}, opts...)
	c.voter = newFwdAgent(t, "voter", true, &fakeRoute{local: true}, opts...)
	c.nonvoter = newFwdAgent(t, "nonvoter", false, &fakeRoute{}, opts...)
	for _, a := range []*fwdAgent{c.leader, c.voter, c.nonvoter} {
		a.route.leaderAPI = c.leader.addr()
		a.route.voters = []string{c.voter.addr(), c.leader.addr()}
	}
	return c
}

type fwdResponse struct {
	response
	servedBy string
}

func send(t *testing.T, a *fwdAgent, method, path, body string, header http.Header) fwdResponse {
	t.Helper()
	req, err := http.NewRequest(method, a.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fwdResponse{response{code: resp.StatusCode, header: resp.Header, body: b}, resp.Header.Get("X-Served-By")}
}

const cmPath = "/api/v1/namespaces/default/configmaps"

func TestForwardWritesGoToTheLeader(t *testing.T) {
	c := newFwdCluster(t)
	for _, a := range []*fwdAgent{c.nonvoter, c.voter, c.leader} {
		r := send(t, a, http.MethodPost, cmPath, configMapJSON("via-"+a.name, map[string]string{"k": "v"}), nil)
		mustCode(t, r.response, http.StatusCreated)
		if r.servedBy != "leader" {
			t.Errorf("POST via %s served by %q, want leader", a.name, r.servedBy)
		}
		if got, _ := c.leader.forwarded.Load().(string); a != c.leader && got != a.name {
			t.Errorf("POST via %s reached the leader with %s %q", a.name, ForwardedHeader, got)
		}
	}
	// PUT and DELETE with a query string keep method, path and query.
	cm := decode[api.ConfigMap](t, send(t, c.voter, http.MethodGet, cmPath+"/via-voter", "", nil).response)
	cm.Data["k"] = "w"
	b, _ := json.Marshal(cm)
	r := send(t, c.nonvoter, http.MethodPut, cmPath+"/via-voter", string(b), nil)
	mustCode(t, r.response, http.StatusOK)
	if got := decode[api.ConfigMap](t, r.response).Data["k"]; got != "w" {
		t.Errorf("updated data = %q", got)
	}
	mustCode(t, send(t, c.nonvoter, http.MethodDelete, cmPath+"/via-nonvoter", "", nil).response, http.StatusOK)
	if _, err := c.leader.env.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "via-nonvoter"}); err == nil {
		t.Error("the DELETE did not reach the leader's store")
	}
	// The voter's own store saw none of it: every write went to the leader.
	objs, _, _ := c.voter.env.st.List("ConfigMap", "", store.Selector{})
	if len(objs) != 0 {
		t.Errorf("the voter's store holds %d configmaps, want 0", len(objs))
	}
	if n := c.nonvoter.hits.Load(); n != 0 {
		t.Errorf("the non-voter's local handler served %d requests", n)
	}
	// A voter admin request is a write too.
	r = send(t, c.nonvoter, http.MethodPost, "/v1/cluster/raft/voters", `{"id":"x","address":"127.0.0.1:1"}`, nil)
	if r.servedBy != "leader" {
		t.Errorf("voter change served by %q, want leader", r.servedBy)
	}
}

func TestForwardReads(t *testing.T) {
	c := newFwdCluster(t)
	mustCode(t, send(t, c.leader, http.MethodPost, cmPath, configMapJSON("a", nil), nil).response, http.StatusCreated)
	tests := []struct {
		via  *fwdAgent
		path string
		want string
	}{
		{c.voter, cmPath + "/a", "leader"},                 // linearizable: the leader
		{c.nonvoter, cmPath + "/a", "leader"},              // linearizable: the leader
		{c.leader, cmPath + "/a?stale=true", "leader"},     // local
		{c.voter, cmPath + "?stale=true", "voter"},         // a voter's stale read stays local
		{c.nonvoter, cmPath + "?stale=1", "voter"},         // a non-voter asks the first voter
		{c.nonvoter, "/healthz", "nonvoter"},               // everything else is local
		{c.nonvoter, "/v1/cluster/members", "nonvoter"},    // local
		{c.voter, "/v1/cluster/raft", "voter"},             // local
		{c.nonvoter, cmPath + "?stale=notabool", "leader"}, // not stale: linearizable
		{c.voter, cmPath + "/a?stale=false", "leader"},     // not stale
		{c.voter, "/apis/apps/v1/deployments", "leader"},   // apis too
		{c.voter, "/apis/apps/v1/deployments?stale=true", "voter"},
	}
	for _, tt := range tests {
		r := send(t, tt.via, http.MethodGet, tt.path, "", nil)
		if r.servedBy != tt.want {
			t.Errorf("GET %s via %s served by %q (HTTP %d), want %s", tt.path, tt.via.name, r.servedBy, r.code, tt.want)
		}
	}
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestForwardStaleReadFailsOverToTheNextVoter(t *testing.T) {
	c := newFwdCluster(t)
	dead := deadAddr(t)
	c.nonvoter.route.mu.Lock()
	c.nonvoter.route.voters = []string{dead, c.voter.addr()}
	c.nonvoter.route.mu.Unlock()
	r := send(t, c.nonvoter, http.MethodGet, cmPath+"?stale=true", "", nil)
	mustCode(t, r.response, http.StatusOK)
	if r.servedBy != "voter" {
		t.Fatalf("served by %q, want voter", r.servedBy)
	}

	// With every voter down the answer is a 503 Status naming them.
	c.nonvoter.route.mu.Lock()
	c.nonvoter.route.voters = []string{dead}
	c.nonvoter.route.mu.Unlock()
	r = send(t, c.nonvoter, http.MethodGet, cmPath+"?stale=true", "", nil)
	st := mustCode(t, r.response, http.StatusServiceUnavailable).status(t)
	if !strings.Contains(st.Message, dead) {
		t.Errorf("message %q does not name %s", st.Message, dead)
	}
	// And with none known at all.
	c.nonvoter.route.mu.Lock()
	c.nonvoter.route.voters = nil
	c.nonvoter.route.mu.Unlock()
	mustCode(t, send(t, c.nonvoter, http.MethodGet, cmPath+"?stale=true", "", nil).response, http.StatusServiceUnavailable).status(t)
}

func TestForwardNoLeader(t *testing.T) {
	c := newFwdCluster(t, func(cfg *ForwarderConfig) { cfg.Timeout = 300 * time.Millisecond })
	c.voter.route.mu.Lock()
	c.voter.route.leaderAPI = ""
	c.voter.route.mu.Unlock()
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		body := ""
		if m == http.MethodPost {
			body = configMapJSON("x", nil)
		}
		r := send(t, c.voter, m, cmPath, body, nil)
		st := mustCode(t, r.response, http.StatusServiceUnavailable).status(t)
		if st.Reason != api.ReasonServiceUnavailable || !strings.Contains(st.Message, "no leader") {
			t.Errorf("%s: Status %+v", m, st)
		}
		if r.header.Get("Content-Type") != "application/json" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: headers %v", m, r.header)
		}
	}
	if n := c.voter.hits.Load(); n != 0 {
		t.Errorf("the voter served %d requests locally", n)
	}
}

func TestForwardLeaderUnreachable(t *testing.T) {
	c := newFwdCluster(t, func(cfg *ForwarderConfig) { cfg.Timeout = time.Second })
	dead := deadAddr(t)
	c.nonvoter.route.mu.Lock()
	c.nonvoter.route.leaderAPI = dead
	c.nonvoter.route.mu.Unlock()
	// Nothing could be sent: certainly not applied, safe to retry.
	r := send(t, c.nonvoter, http.MethodPost, cmPath, configMapJSON("x", nil), nil)
	st := mustCode(t, r.response, http.StatusServiceUnavailable).status(t)
	if !strings.Contains(st.Message, dead) {
		t.Errorf("message %q does not name the leader %s", st.Message, dead)
	}

	// A leader that takes the request, body included, and hangs up: the
	// write may have been applied, so 504 with no Retry-After.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
				if req.URL.Path == ForwardStreamPath {
					takeStream(conn, req, 1, func() {}) // one write arrives, then the connection drops
					conn.Close()
					continue
				}
				if req.Header.Get("Expect") == "100-continue" {
					io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n")
				}
				io.Copy(io.Discard, req.Body) // the request arrives, then the connection drops
			}
			conn.Close()
		}
	}()
	c.nonvoter.route.mu.Lock()
	c.nonvoter.route.leaderAPI = ln.Addr().String()
	c.nonvoter.route.mu.Unlock()
	r = send(t, c.nonvoter, http.MethodPost, cmPath, configMapJSON("y", nil), nil)
	st = mustCode(t, r.response, http.StatusGatewayTimeout).status(t)
	if st.Reason != api.ReasonTimeout || r.header.Get("Retry-After") != "" || !strings.Contains(st.Message, "outcome is unknown") {
		t.Errorf("write lost on the way: reason %q, Retry-After %q, message %q", st.Reason, r.header.Get("Retry-After"), st.Message)
	}
}

func TestForwardLoopGuard(t *testing.T) {
	c := newFwdCluster(t)
	// The voter believes the non-voter leads: a request forwarded once
	// must not be forwarded again.
	c.voter.route.mu.Lock()
	c.voter.route.leaderAPI = c.nonvoter.addr()
	c.voter.route.mu.Unlock()
	c.nonvoter.route.mu.Lock()
	c.nonvoter.route.leaderAPI = c.voter.addr()
	c.nonvoter.route.mu.Unlock()
	r := send(t, c.nonvoter, http.MethodPost, cmPath, configMapJSON("x", nil), nil)
	st := mustCode(t, r.response, http.StatusServiceUnavailable).status(t)
	if !strings.Contains(st.Message, "nonvoter forwarded") {
		t.Errorf("message %q", st.Message)
	}
	if c.voter.hits.Load() != 0 || c.nonvoter.hits.Load() != 0 {
		t.Errorf("local handlers ran: voter %d, nonvoter %d", c.voter.hits.Load(), c.nonvoter.hits.Load())
	}
	// A forwarded request that can be served locally is served.
	h := http.Header{ForwardedHeader: {"someone"}}
	mustCode(t, send(t, c.leader, http.MethodPost, cmPath, configMapJSON("y", nil), h).response, http.StatusCreated)
	if r := send(t, c.voter, http.MethodGet, cmPath+"?stale=true", "", h); r.servedBy != "voter" {
		t.Errorf("forwarded stale read served by %q", r.servedBy)
	}
	// A stale read forwarded to a non-voter is refused, not sent on.
	mustCode(t, send(t, c.nonvoter, http.MethodGet, cmPath+"?stale=true", "", h).response, http.StatusServiceUnavailable)
}

func TestForwardBodyLimitEnforcedByTheLeader(t *testing.T) {
	// A generous budget: under -race on a loaded machine, carrying the
	// oversized body to the leader has taken more than the default 5 s,
	// and the answer wanted here is the leader's 413, not a 504.
	c := newFwdCluster(t, func(c *ForwarderConfig) { c.Timeout = 30 * time.Second })
	big := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"` +
		strings.Repeat("x", DefaultMaxBodyBytes) + `"}}`
	for _, chunked := range []bool{false, true} {
		req, err := http.NewRequest(http.MethodPost, c.nonvoter.ts.URL+cmPath, strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(big))
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := response{code: resp.StatusCode, header: resp.Header, body: b}
		st := mustCode(t, r, http.StatusRequestEntityTooLarge).status(t)
		if resp.Header.Get("X-Served-By") != "leader" || st.Reason != api.ReasonRequestEntityTooLarge {
			t.Errorf("chunked=%v: served by %q, Status %+v", chunked, resp.Header.Get("X-Served-By"), st)
		}
	}
}

func TestForwardWatchStreamsFlushEachEvent(t *testing.T) {
	c := newFwdCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.nonvoter.ts.URL+cmPath+"?watch=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Served-By") != "leader" {
		t.Fatalf("watch: HTTP %d served by %q", resp.StatusCode, resp.Header.Get("X-Served-By"))
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	// Each event must arrive before the next write: the proxy flushes it.
	for i, name := range []string{"one", "two", "three"} {
		mustCode(t, send(t, c.leader, http.MethodPost, cmPath, configMapJSON(name, nil), nil).response, http.StatusCreated)
		if !lines.Scan() {
			t.Fatalf("event %d: stream ended: %v", i, lines.Err())
		}
		var ev struct {
			Type   string
			Object api.ConfigMap
		}
		if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "ADDED" || ev.Object.Name != name {
			t.Fatalf("event %d: %s %s, want ADDED %s", i, ev.Type, ev.Object.Name, name)
		}
	}
	// The client going away ends the leader's watch.
	watchers := c.leader.env.rec.all()
	if len(watchers) != 1 {
		t.Fatalf("the leader holds %d watchers, want 1", len(watchers))
	}
	cancel()
	waitStopped(t, watchers[0])
}

// retainBody keeps a body up to maxRetainedBody whole, whether its length
// was declared or not, and one byte more goes on as read-then-rest.
func TestRetainBody(t *testing.T) {
	for _, n := range []int{1, 1000, 70 << 10, maxRetainedBody, maxRetainedBody + 1} {
		for _, declared := range []bool{true, false} {
			body := strings.Repeat("b", n)
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			if !declared {
				r.ContentLength = -1
			}
			got, serr := retainBody(r)
			if serr != nil {
				t.Fatalf("%d bytes: %v", n, serr)
			}
			if got.whole != (n <= maxRetainedBody) {
				t.Fatalf("%d bytes (declared %v): whole %v", n, declared, got.whole)
			}
			rd, length := got.reader()
			all, err := io.ReadAll(rd)
			if err != nil || string(all) != body {
				t.Fatalf("%d bytes (declared %v): read back %d bytes, %v", n, declared, len(all), err)
			}
			if got.whole && length != int64(n) {
				t.Fatalf("%d bytes: length %d", n, length)
			}
		}
	}
}
