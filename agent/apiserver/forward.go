package apiserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
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
}

// Timeouts of the default forwarding transport.
const (
	forwardDialTimeout = 5 * time.Second
	// forwardHeaderTimeout bounds the wait for the upstream's response
	// headers; it covers a proposal (DefaultRequestTimeout) with room to
	// spare. Watch streams send their headers at once.
	forwardHeaderTimeout = 2*DefaultRequestTimeout + 5*time.Second
)

// forwarder routes each request to the local handler or to another agent.
type forwarder struct {
	local     http.Handler
	route     Route
	transport http.RoundTripper
	scheme    string
	name      string
	log       *slog.Logger
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
//   - everything else (/healthz, /version, /v1/cluster/members, ...) is
//     local.
//
// Failures are api.Status JSON: 503 when there is no leader, when the
// upstream cannot be reached, or when a request already forwarded once
// would need a second hop.
func NewForwarder(local http.Handler, cfg ForwarderConfig) http.Handler {
	f := &forwarder{local: local, route: cfg.Route, log: cfg.Logger, name: cfg.Name, scheme: "http"}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.name == "" {
		f.name, _ = os.Hostname()
	}
	if cfg.Client != nil && cfg.Client.Transport != nil {
		f.transport = cfg.Client.Transport
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // agent-to-agent traffic never goes through an HTTP proxy
		tr.DialContext = (&net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = forwardDialTimeout
		tr.ResponseHeaderTimeout = forwardHeaderTimeout
		tr.MaxIdleConnsPerHost = 32
		tr.TLSClientConfig = cfg.TLS
		f.transport = tr
	}
	if cfg.TLS != nil {
		f.scheme = "https"
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

func isResourcePath(p string) bool {
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/")
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

// toLeader serves r locally on the leader, else proxies it to the leader.
func (f *forwarder) toLeader(w http.ResponseWriter, r *http.Request) {
	if f.route.IsLeader() {
		f.local.ServeHTTP(w, r)
		return
	}
	if f.refuseSecondHop(w, r) {
		return
	}
	leader := f.route.LeaderAPI()
	if leader == "" {
		f.writeStatus(w, r, api.NewServiceUnavailable("no leader at the moment; retry shortly"))
		return
	}
	if err := f.proxy(w, r, leader); err != nil {
		var op *net.OpError
		if r.Method == http.MethodGet || r.Method == http.MethodHead || (errors.As(err, &op) && op.Op == "dial") {
			// A read, or a write that never left: safe to retry.
			f.writeStatus(w, r, api.NewServiceUnavailable(fmt.Sprintf("the leader at %s cannot be reached: %v", leader, err)))
			return
		}
		// The request may have reached the leader before the failure: a
		// retry must first read whether it took effect.
		f.writeStatus(w, r, api.NewTimeout(fmt.Sprintf("the write's outcome is unknown: the leader at %s did not answer: %v", leader, err)))
	}
}

// toVoter proxies a stale read to the first voter that answers. Only a
// connection failure moves on to the next voter; any answer, an error
// Status included, is passed back.
func (f *forwarder) toVoter(w http.ResponseWriter, r *http.Request) {
	if f.refuseSecondHop(w, r) {
		return
	}
	voters := f.route.VoterAPIs()
	if len(voters) == 0 {
		f.writeStatus(w, r, api.NewServiceUnavailable("no voter is known at the moment; retry shortly"))
		return
	}
	var failed []string
	for _, v := range voters {
		err := f.proxy(w, r, v)
		if err == nil {
			return
		}
		if r.Context().Err() != nil {
			return // the client went away
		}
		f.log.Warn("forward: voter unreachable, trying the next", "voter", v, "path", r.URL.Path, "err", err)
		failed = append(failed, fmt.Sprintf("%s (%v)", v, err))
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

// proxy sends r to upstream (host:port) and copies the answer to w. It
// returns an error, having written nothing, when the upstream could not be
// reached; once the upstream has answered it returns nil.
func (f *forwarder) proxy(w http.ResponseWriter, r *http.Request, upstream string) error {
	var rtErr error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = f.scheme
			pr.Out.URL.Host = upstream
			pr.Out.Host = upstream
			pr.Out.Header.Set(ForwardedHeader, f.name)
			pr.SetXForwarded()
		},
		Transport: f.transport,
		// Watch streams flush every event; for other answers the cost of
		// a flush per write is negligible.
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) {
			rtErr = err
		},
	}
	rp.ServeHTTP(w, r)
	if rtErr != nil && errors.Is(rtErr, context.Canceled) && r.Context().Err() != nil {
		return nil // the client went away; there is nobody to answer
	}
	return rtErr
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
