package metrics

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/api"
)

// API records the HTTP API's requests.
type API struct {
	requests  *prometheus.CounterVec
	forwarded *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	// resources maps a URL's resource segment to its label value, and its
	// subresources to theirs: label values come from this fixed table,
	// never from the URL, so a client cannot grow the series.
	resources map[string]*resourceLabel
}

type resourceLabel struct {
	name string
	subs map[string]string // subresource → "pods/log"
}

// The subresources Shoal serves, or that a client may ask for.
var subresourceNames = []string{"status", "scale", "log", "exec", "attach", "portforward", "binding", "eviction"}

// long reports whether a subresource streams for as long as the client
// wants: its latency says nothing about the server.
// forwardStreamPath is apiserver.ForwardStreamPath: the long-lived stream
// of forwarded writes an agent keeps open to the leader, which takes no
// latency sample (its frames are counted where they were received).
const forwardStreamPath = "/v1/cluster/forward/stream"

func longSubresource(label string) bool {
	return strings.HasSuffix(label, "/log") || strings.HasSuffix(label, "/exec") ||
		strings.HasSuffix(label, "/attach") || strings.HasSuffix(label, "/portforward")
}

func newAPI() *API {
	labels := []string{"verb", "resource", "code"}
	a := &API{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "api_requests_total",
			Help: "HTTP API requests this agent answered, by Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection; the method's name outside the resource API), resource (empty outside the resource API) and status code.",
		}, labels),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "api_forwarded_requests_total",
			Help: "Of shoal_api_requests_total, those this agent did not answer itself but sent on (writes to the leader, reads to a voter, logs and exec to the pod's node), with the code the client got: 503 or 504 when forwarding failed.",
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "api_request_duration_seconds",
			Help:    "Time to answer an API request, by verb and resource; watches, logs, exec, attach and port-forward (which last as long as the client wants) are left out.",
			Buckets: requestBuckets,
		}, []string{"verb", "resource"}),
		resources: map[string]*resourceLabel{},
	}
	for _, k := range api.Kinds() {
		rl := &resourceLabel{name: k.Resource, subs: map[string]string{}}
		for _, s := range subresourceNames {
			rl.subs[s] = k.Resource + "/" + s
		}
		a.resources[k.Resource] = rl
	}
	return a
}

func (a *API) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.requests, a.forwarded, a.latency}
}

// codes holds the label value of every status code, so that recording one
// does not format it.
var codes = func() (c [600]string) {
	for i := 100; i < len(c); i++ {
		c[i] = itoa3(i)
	}
	return c
}()

func itoa3(i int) string {
	return string([]byte{byte('0' + i/100), byte('0' + i/10%10), byte('0' + i%10)})
}

func codeLabel(code int) string {
	if code >= 100 && code < len(codes) {
		return codes[code]
	}
	return "other"
}

// recorder is the ResponseWriter Instrument hands on: it notes the status
// code, and whether this agent answered (MarkLocal). It keeps the
// Flusher and Hijacker of the writer it wraps, and Unwrap for
// http.ResponseController.
type recorder struct {
	http.ResponseWriter
	code     int
	local    bool
	hijacked bool
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// errNoHijack: the connection under the writer cannot be taken over.
var errNoHijack = errors.New("metrics: the response writer does not support hijacking")

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errNoHijack
	}
	c, rw, err := h.Hijack()
	if err == nil {
		r.hijacked = true
		if r.code == 0 {
			r.code = http.StatusSwitchingProtocols
		}
	}
	return c, rw, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// MarkLocal notes that this agent answers the request whose writer is w
// (rather than another agent it forwards the request to). It finds
// Instrument's recorder through Unwrap; without one it does nothing.
func MarkLocal(w http.ResponseWriter) {
	for range 8 { // wrappers are few; the bound only guards against a cycle
		if rec, ok := w.(*recorder); ok {
			rec.local = true
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// Local wraps the handler that answers requests on this agent: what
// reaches it is not forwarded.
func Local(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		MarkLocal(w)
		next.ServeHTTP(w, r)
	})
}

// Instrument counts and times every request next answers. Requests that
// no handler wrapped by Local (or calling MarkLocal) saw were forwarded.
// With a nil API it returns next.
func (a *API) Instrument(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recorders.Get().(*recorder)
		*rec = recorder{ResponseWriter: w}
		defer func() {
			verb, resource := a.classify(r)
			code := rec.code
			if code == 0 {
				code = http.StatusOK // the handler wrote nothing: net/http sends 200
			}
			cl := codeLabel(code)
			a.requests.WithLabelValues(verb, resource, cl).Inc()
			if !rec.local {
				a.forwarded.WithLabelValues(verb, resource, cl).Inc()
			}
			if verb != "watch" && !rec.hijacked && !longSubresource(resource) && r.URL.Path != forwardStreamPath {
				a.latency.WithLabelValues(verb, resource).Observe(time.Since(start).Seconds())
			}
			*rec = recorder{}
			recorders.Put(rec)
		}()
		next.ServeHTTP(rec, r)
	})
}

// classify names a request's verb and resource the way Kubernetes' API
// server does, without allocating. Outside the resource API the resource
// is "" and the verb the method's name.
func (a *API) classify(r *http.Request) (verb, resource string) {
	p := r.URL.Path
	var rest string
	switch {
	case strings.HasPrefix(p, "/api/"):
		rest = p[len("/api/"):]
		_, rest = cut(rest) // version
	case strings.HasPrefix(p, "/apis/"):
		rest = p[len("/apis/"):]
		_, rest = cut(rest) // group
		_, rest = cut(rest) // version
	default:
		return methodVerb(r.Method), ""
	}
	seg, after := cut(rest)
	if seg == "namespaces" {
		// namespaces/{ns}/{resource}/... names a namespaced resource;
		// namespaces/{name} and namespaces/{name}/status (or /finalize)
		// the Namespace itself.
		if _, tail := cut(after); tail != "" {
			if next, _ := cut(tail); (next != "status" && next != "finalize") || strings.Contains(tail, "/") {
				seg, after = cut(tail)
			}
		}
	}
	rl := a.resources[seg]
	if rl == nil {
		return methodVerb(r.Method), ""
	}
	name, sub := cut(after)
	resource = rl.name
	if sub != "" {
		s, _ := cut(sub)
		if l, ok := rl.subs[s]; ok {
			resource = l
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case isWatch(r.URL.RawQuery):
			return "watch", resource
		case name == "":
			return "list", resource
		}
		return "get", resource
	case http.MethodPost:
		return "create", resource
	case http.MethodPut:
		return "update", resource
	case http.MethodPatch:
		return "patch", resource
	case http.MethodDelete:
		if name == "" {
			return "deletecollection", resource
		}
		return "delete", resource
	}
	return methodVerb(r.Method), resource
}

// cut splits p at its first slash.
func cut(p string) (string, string) {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

// isWatch reports whether the query asks for a watch (watch=true or 1).
func isWatch(q string) bool {
	for q != "" {
		var kv string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, ""
		}
		if kv == "watch=true" || kv == "watch=1" || kv == "watch=True" {
			return true
		}
	}
	return false
}

func methodVerb(m string) string {
	switch m {
	case http.MethodGet:
		return "get"
	case http.MethodHead:
		return "head"
	case http.MethodPost:
		return "post"
	case http.MethodPut:
		return "put"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	case http.MethodOptions:
		return "options"
	}
	return "other"
}
