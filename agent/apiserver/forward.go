package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// ForwardedHeader marks a request one agent sent on to another. Its value
// names the agent that forwarded it. A request that carries it is never
// forwarded again: a second hop means two agents disagree about who leads,
// and the client is better served by a quick 503 and a retry.
const ForwardedHeader = "X-Shoal-Forwarded"

// Route tells the forwarder where a request must go. The agent implements it.
type Route interface {
	LocalStore() bool    // this agent runs Raft and holds a store replica (a voter)
	IsLeader() bool      // this agent is the Raft leader
	LeaderAPI() string   // leader's API address host:port, "" if unknown
	VoterAPIs() []string // API addresses of alive voters, best first; for stale reads from non-voters
}

// LeaderTroubleRoute is a Route that wants to hear when the leader it named
// failed a forwarded request: no answer, or an answer that it cannot serve
// it (503). The forwarder calls LeaderTrouble with that leader's API
// address; the route should check who leads sooner than it would have.
// It must return at once.
type LeaderTroubleRoute interface {
	Route
	LeaderTrouble(upstream string)
}

// ForwarderConfig configures NewForwarder.
type ForwarderConfig struct {
	// Route says where requests go. Required.
	Route Route
	// Client's Transport carries forwarded requests; nil (or a nil
	// Transport) means a transport with connect and header timeouts.
	// Client.Timeout is ignored: watch streams must not be cut.
	Client *http.Client
	// Logger receives forwarding failures; nil means slog.Default().
	Logger *slog.Logger
	// TLS, if set, makes forwarded requests use https with this
	// configuration (mutual TLS between agents); nil means plain http.
	TLS *tls.Config
	// Name identifies this agent in ForwardedHeader; "" means the hostname.
	Name string
	// Timeout bounds how long a forwarded API request waits for its
	// answer (the upstream's response headers), retries to a new leader
	// included; 0 means DefaultForwardTimeout. A write that may have
	// reached an upstream that does not answer in time is answered 504
	// (outcome unknown); anything else 503 (not applied).
	Timeout time.Duration
	// VoterTimeout is the same bound for manual voter changes
	// (/v1/cluster/raft/voters), which wait for a promotion; 0 means
	// DefaultForwardVoterTimeout.
	VoterTimeout time.Duration
	// Frames, if set, wraps the handler that serves the writes another
	// agent sends in a batch (forward_batch.go) with the authentication
	// every request gets (the agent's NewAuthHandler), since the batch's
	// own request is authenticated as the agent that sent it; nil serves
	// them with the forwarder alone (tests, and insecure set-ups whose
	// authentication passes everything).
	Frames func(http.Handler) http.Handler
	// Unbatched sends every forwarded write as a request of its own
	// instead of in batches or on a stream.
	Unbatched bool
	// NoStreams sends forwarded writes in batches (forward_batch.go)
	// instead of on a long-lived stream to the leader (forward_stream.go).
	NoStreams bool
	// Done, when closed, ends the streams: those other agents opened to
	// this one stop reading, answer what they read and say how much that
	// was; this agent's own close once their writes are answered, and
	// later writes go in batches. The agent closes it when it shuts down.
	Done <-chan struct{}
	// BatchAlways puts every forwarded write that a batch can carry in a
	// batch, even when nothing else is under way (tests).
	BatchAlways bool
	// PollInterval is how often a request waiting for its answer checks
	// whether leadership moved; 0 means DefaultForwardPollInterval.
	PollInterval time.Duration
}

// Defaults and limits of forwarding.
const (
	// DefaultForwardTimeout: a leader that answers nothing for this long is
	// paused, partitioned away or overloaded; Raft elects a new one in
	// about a second, and a client is better served by a clear answer
	// than by a minute of silence.
	DefaultForwardTimeout = 5 * time.Second
	// DefaultForwardVoterTimeout covers a voter change, whose promotion of
	// the new voter may take the whole of DefaultRequestTimeout.
	DefaultForwardVoterTimeout = DefaultRequestTimeout + 5*time.Second
	// DefaultForwardPollInterval: see ForwarderConfig.PollInterval.
	DefaultForwardPollInterval = 25 * time.Millisecond
	// maxForwardAttempts bounds the upstreams one request is sent to (the
	// leaders it follows, or the voters a stale read tries).
	maxForwardAttempts = 3
	// maxRetainedBody is the largest request body kept so that the request
	// can be sent again to a new leader; a larger one (which the leader
	// refuses anyway, see DefaultMaxBodyBytes) is streamed once.
	maxRetainedBody = DefaultMaxBodyBytes
)

// Validate reports the first configuration error, naming the field.
func (c ForwarderConfig) Validate() error {
	switch {
	case c.Route == nil:
		return errors.New("ForwarderConfig.Route: must not be nil")
	case c.Timeout < 0:
		return fmt.Errorf("ForwarderConfig.Timeout: %v must not be negative", c.Timeout)
	case c.VoterTimeout < 0:
		return fmt.Errorf("ForwarderConfig.VoterTimeout: %v must not be negative", c.VoterTimeout)
	case c.PollInterval < 0:
		return fmt.Errorf("ForwarderConfig.PollInterval: %v must not be negative", c.PollInterval)
	}
	return nil
}

// forwardDialTimeout bounds opening a connection to another agent.
const forwardDialTimeout = 5 * time.Second

// forwarder routes each request to the local handler or to another agent.
type forwarder struct {
	local        http.Handler
	route        Route
	transport    http.RoundTripper
	scheme       string
	name         string
	log          *slog.Logger
	timeout      time.Duration
	voterTimeout time.Duration
	poll         time.Duration
	leaders      *leaderWatch // wakes waiting requests when leadership moves
	batch        *fwdBatcher  // nil: unbatched
	streams      *fwdStreams  // streams in and out
	streamsOut   bool         // forwarded writes go on streams
	frames       http.Handler // serves batched writes (serveBatch)
}

// NewForwarder wraps the local API handler so that any agent answers any
// request:
//
//   - writes (POST, PUT, DELETE, PATCH) to /api/, /apis/ and
//     /v1/cluster/raft/voters run on the leader: locally if this agent
//     leads, else proxied to it;
//   - reads (GET, HEAD) of /api/ and /apis/, watches included, are
//     linearizable on the leader by default; with stale=true a voter
//     answers from its own replica and a non-voter asks the first voter of
//     Route.VoterAPIs that answers;
//   - everything else (/healthz, /version, discovery such as /api/v1 and
//     /apis/apps/v1, /openapi/..., /v1/cluster/members, ...) is local.
//
// A request proxied to the leader follows leadership: while it waits for
// the answer, a move of leadership (or the timeout) ends the wait; a read,
// or a write that certainly did not reach the old leader, is sent to the
// new one, and a write that may have reached it is answered 504 (outcome
// unknown, read before writing again).
//
// Failures are api.Status JSON: 503 when there is no leader, when the
// upstream cannot be reached, or when a request already forwarded once
// would need a second hop; 504 when a write's outcome is unknown.
//
// NewForwarder panics if cfg.Validate fails: the configuration is the
// program's own, not a user's.
func NewForwarder(local http.Handler, cfg ForwarderConfig) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	f := &forwarder{
		local: local, route: cfg.Route, log: cfg.Logger, name: cfg.Name, scheme: "http",
		timeout: cfg.Timeout, voterTimeout: cfg.VoterTimeout, poll: cfg.PollInterval,
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.name == "" {
		f.name, _ = os.Hostname()
	}
	if f.timeout == 0 {
		f.timeout = DefaultForwardTimeout
	}
	if f.voterTimeout == 0 {
		f.voterTimeout = DefaultForwardVoterTimeout
	}
	if f.poll == 0 {
		f.poll = DefaultForwardPollInterval
	}
	f.leaders = newLeaderWatch(f.route, f.poll)
	if cfg.Client != nil && cfg.Client.Transport != nil {
		f.transport = cfg.Client.Transport
	} else {
		// The forwarder's own deadlines end a wait for an answer; these
		// are backstops.
		backstop := max(f.timeout, f.voterTimeout) + 5*time.Second
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // agent-to-agent traffic never goes through an HTTP proxy
		tr.DialContext = (&net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = forwardDialTimeout
		tr.ResponseHeaderTimeout = backstop
		// A body leaves only once the upstream's handler asks for it (see
		// forward_attempt.go), never because a short timer ran out.
		tr.ExpectContinueTimeout = backstop
		tr.MaxIdleConnsPerHost = 32
		tr.TLSClientConfig = cfg.TLS
		f.transport = tr
	}
	if cfg.TLS != nil {
		f.scheme = "https"
	}
	if !cfg.Unbatched {
		f.batch = &fwdBatcher{f: f, queues: map[string]*upstreamQueue{}}
		f.batch.batchAll.Store(cfg.BatchAlways)
	}
	// Streams serve the frames other agents send even when this agent
	// sends none of its own (f.streams.done tells them the server stops).
	f.streams = newFwdStreams(f)
	f.streamsOut = !cfg.Unbatched && !cfg.NoStreams
	if cfg.Done != nil {
		go func() {
			<-cfg.Done
			f.streams.stop()
		}()
	}
	f.frames = f
	if cfg.Frames != nil {
		f.frames = cfg.Frames(f)
	}
	return f
}

// isWrite reports whether a method changes state.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	}
	return false
}

// isResourcePath reports whether p names resources (and so is answered on
// the leader or a voter). The discovery documents under /api/ and /apis/
// (/api/v1, /apis/apps, /apis/apps/v1) depend on nothing but the binary:
// every agent answers them itself, with or without a leader.
func isResourcePath(p string) bool {
	return (strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/")) && !isDiscovery(p)
}

func isVoterPath(p string) bool {
	return p == "/v1/cluster/raft/voters" || strings.HasPrefix(p, "/v1/cluster/raft/voters/")
}

// staleRead reports whether the query asks for a stale read. A malformed
// value counts as false; the server that answers rejects it.
func staleRead(r *http.Request) bool {
	b, err := strconv.ParseBool(r.URL.Query().Get("stale"))
	return err == nil && b
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == ForwardBatchPath:
		f.serveBatch(w, r)
	case p == ForwardStreamPath:
		f.serveStream(w, r)
	case isWrite(r.Method) && (isResourcePath(p) || isVoterPath(p)):
		f.toLeader(w, r)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && isResourcePath(p):
		stale := staleRead(r)
		switch {
		case stale && f.route.LocalStore(), f.route.IsLeader():
			f.local.ServeHTTP(w, r)
		case stale:
			f.toVoter(w, r)
		default:
			f.toLeader(w, r)
		}
	default:
		f.local.ServeHTTP(w, r)
	}
}

// toLeader serves r locally on the leader, else proxies it to the
// leader, following leadership while it waits (see NewForwarder).
func (f *forwarder) toLeader(w http.ResponseWriter, r *http.Request) {
	if f.route.IsLeader() {
		f.local.ServeHTTP(w, r)
		return
	}
	if f.refuseSecondHop(w, r) {
		return
	}
	timeout := f.timeout
	if isVoterPath(r.URL.Path) {
		timeout = f.voterTimeout
	}
	deadline := time.Now().Add(timeout)
	leader := f.route.LeaderAPI()
	if leader == "" {
		// An election is under way, most likely: wait for its outcome.
		next, local := f.nextLeader(r.Context(), "", deadline)
		if local {
			f.local.ServeHTTP(w, r)
			return
		}
		if next == "" {
			f.writeStatus(w, r, api.NewServiceUnavailable(fmt.Sprintf("no leader at the moment (none known within %v); retry shortly", timeout)))
			return
		}
		leader = next
	}
	body, serr := retainBody(r)
	if serr != nil {
		f.writeStatus(w, r, serr)
		return
	}
	write := isWrite(r.Method)
	var failures []string
	for attempt := 1; ; attempt++ {
		from := leader
		res := f.forwardOnce(w, r, from, body, time.Until(deadline))
		if res.troubled || (!res.answered && !errors.Is(res.err, errLeaderMoved)) {
			f.leaderTrouble(from)
		}
		if res.answered {
			return
		}
		failures = append(failures, fmt.Sprintf("the leader at %s: %v", from, res.err))
		if write && res.delivered {
			// The request may have reached the leader: a retry must first
			// read whether it took effect.
			f.writeStatus(w, r, api.NewTimeout(fmt.Sprintf(
				"the write's outcome is unknown (it may have been applied): read the object before writing it again: %s", strings.Join(failures, "; "))))
			return
		}
		f.log.Info("forward: following the leader", "method", r.Method, "path", r.URL.Path, "from", from, "err", res.err)
		if !body.whole || attempt >= maxForwardAttempts {
			break
		}
		next, local := f.nextLeader(r.Context(), from, deadline)
		if local {
			r.Body, r.ContentLength = http.NoBody, 0
			if rd, length := body.reader(); rd != nil {
				r.Body, r.ContentLength = io.NopCloser(rd), length
			}
			f.local.ServeHTTP(w, r)
			return
		}
		if next == "" {
			failures = append(failures, fmt.Sprintf("no other leader known after %v", timeout))
			break
		}
		leader = next
	}
	what := "the read failed"
	if write {
		what = "the write was not applied"
	}
	f.writeStatus(w, r, api.NewServiceUnavailable(fmt.Sprintf("%s: %s; retry shortly", what, strings.Join(failures, "; "))))
}

// leaderTrouble tells the route, if it wants to hear it, that the leader
// at upstream failed a request.
func (f *forwarder) leaderTrouble(upstream string) {
	if tr, ok := f.route.(LeaderTroubleRoute); ok {
		tr.LeaderTrouble(upstream)
	}
}

// movedFrom returns a check of whether leadership left upstream: it names
// the new leader's API address ("this agent" when it is this one), or ""
// while upstream still leads or no other leader is known.
//
// It reads the route through the leader watch (leaderWatch.look), so that
// what it saw is what the watch measures the next change from.
func (f *forwarder) movedFrom(upstream string) func() string {
	return func() string {
		v := f.leaders.look()
		if v.leader {
			return "this agent (" + f.name + ")"
		}
		if v.api != "" && v.api != upstream {
			return "the agent at " + v.api
		}
		return ""
	}
}

// nextLeader waits until a leader other than old is known, or until the
// deadline. It returns that leader's API address, or local=true when this
// agent now leads, or "" when none came in time.
func (f *forwarder) nextLeader(ctx context.Context, old string, deadline time.Time) (next string, local bool) {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		if f.route.IsLeader() {
			return "", true
		}
		if l := f.route.LeaderAPI(); l != "" && l != old {
			return l, false
		}
		if !time.Now().Before(deadline) {
			return "", false
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-t.C:
		}
	}
}

// requestBody is a forwarded request's body.
type requestBody struct {
	data  []byte    // the whole body, when whole
	whole bool      // data holds all of it: the request can be sent again
	rest  io.Reader // otherwise: what was read, then the rest (sent once)
}

// reader returns the body to send and its length (-1: unknown).
func (b requestBody) reader() (io.Reader, int64) {
	if !b.whole {
		return b.rest, -1
	}
	if len(b.data) == 0 {
		return nil, 0
	}
	return bytes.NewReader(b.data), int64(len(b.data))
}

// retainBody reads r's body so that it can be sent again, up to
// maxRetainedBody. A larger body is kept as a stream that can be sent once.
func retainBody(r *http.Request) (requestBody, *api.StatusError) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return requestBody{whole: true}, nil
	}
	// One buffer of the declared length (io.ReadAll's doublings were a
	// quarter of what a forwarding agent allocated for each write).
	b, err := readAllSized(io.LimitReader(r.Body, maxRetainedBody+1), min(r.ContentLength, maxRetainedBody+1))
	if err != nil {
		return requestBody{}, api.NewBadRequest("reading the request body: %v", err)
	}
	if len(b) > maxRetainedBody {
		return requestBody{rest: io.MultiReader(bytes.NewReader(b), r.Body)}, nil
	}
	return requestBody{data: b, whole: true}, nil
}

// toVoter proxies a stale read to the first voter that answers. A voter
// that cannot be reached, or does not answer within the timeout, is
// skipped; any answer, an error Status included, is passed back.
func (f *forwarder) toVoter(w http.ResponseWriter, r *http.Request) {
	if f.refuseSecondHop(w, r) {
		return
	}
	voters := f.route.VoterAPIs()
	if len(voters) == 0 {
		f.writeStatus(w, r, api.NewServiceUnavailable("no voter is known at the moment; retry shortly"))
		return
	}
	if len(voters) > maxForwardAttempts {
		voters = voters[:maxForwardAttempts]
	}
	var failed []string
	for _, v := range voters {
		res := f.proxy(w, r, v, nil, 0, nil, f.timeout)
		if res.answered {
			return
		}
		f.log.Warn("forward: voter unreachable, trying the next", "voter", v, "path", r.URL.Path, "err", res.err)
		failed = append(failed, fmt.Sprintf("%s (%v)", v, res.err))
	}
	f.writeStatus(w, r, api.NewServiceUnavailable("no voter can be reached: "+strings.Join(failed, "; ")))
}

// refuseSecondHop answers 503 to a request another agent already
// forwarded, and reports whether it did.
func (f *forwarder) refuseSecondHop(w http.ResponseWriter, r *http.Request) bool {
	from := r.Header.Get(ForwardedHeader)
	if from == "" {
		return false
	}
	f.writeStatus(w, r, api.NewServiceUnavailable(fmt.Sprintf(
		"agent %s forwarded this request to %s, which cannot serve it either (leadership is changing); retry shortly", from, f.name)))
	return true
}

// writeStatus sends a Status as the API server does.
func (f *forwarder) writeStatus(w http.ResponseWriter, r *http.Request, se *api.StatusError) {
	st := se.Status()
	f.log.Warn("forward: request failed", "method", r.Method, "path", r.URL.Path, "code", st.Code, "err", st.Message)
	b, _ := json.Marshal(st)
	if st.Code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	w.Write(append(b, '\n'))
}
