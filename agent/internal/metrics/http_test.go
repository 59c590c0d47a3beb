package metrics

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClassify(t *testing.T) {
	a := newAPI()
	cases := []struct {
		method, url    string
		verb, resource string
	}{
		{"GET", "/api/v1/namespaces/default/pods", "list", "pods"},
		{"GET", "/api/v1/pods", "list", "pods"},
		{"GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=3", "watch", "pods"},
		{"GET", "/api/v1/namespaces/default/pods?labelSelector=a&watch=1", "watch", "pods"},
		{"GET", "/api/v1/namespaces/default/pods?watch=false", "list", "pods"},
		{"GET", "/api/v1/namespaces/default/pods/web", "get", "pods"},
		{"GET", "/api/v1/namespaces/default/pods/web/log", "get", "pods/log"},
		{"POST", "/api/v1/namespaces/default/pods/web/exec", "create", "pods/exec"},
		{"PUT", "/api/v1/namespaces/default/pods/web/status", "update", "pods/status"},
		{"PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", "patch", "deployments/scale"},
		{"DELETE", "/apis/apps/v1/namespaces/default/deployments/web", "delete", "deployments"},
		{"DELETE", "/apis/apps/v1/namespaces/default/deployments", "deletecollection", "deployments"},
		{"POST", "/apis/apps/v1/namespaces/default/replicasets", "create", "replicasets"},
		{"GET", "/api/v1/namespaces", "list", "namespaces"},
		{"GET", "/api/v1/namespaces/default", "get", "namespaces"},
		{"PUT", "/api/v1/namespaces/default/status", "update", "namespaces/status"},
		{"GET", "/api/v1/nodes/n1", "get", "nodes"},
		{"GET", "/api/v1/namespaces/default/pods/web/nosuch", "get", "pods"},
		// Nothing from the URL becomes a label: unknown resources and
		// paths outside the resource API have an empty resource.
		{"GET", "/api/v1/namespaces/default/widgets/x", "get", ""},
		{"GET", "/apis/evil/v1/" + strings.Repeat("x", 100), "get", ""},
		{"GET", "/api/v1", "get", ""},
		{"GET", "/metrics", "get", ""},
		{"POST", "/v1/cluster/promote", "post", ""},
		{"BREW", "/healthz", "other", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.url, nil)
		verb, res := a.classify(r)
		if verb != c.verb || res != c.resource {
			t.Errorf("%s %s: got (%q, %q), want (%q, %q)", c.method, c.url, verb, res, c.verb, c.resource)
		}
	}
}

func TestCodeLabel(t *testing.T) {
	for code, want := range map[int]string{200: "200", 404: "404", 101: "101", 599: "599", 600: "other", 42: "other"} {
		if got := codeLabel(code); got != want {
			t.Errorf("codeLabel(%d) = %q, want %q", code, got, want)
		}
	}
}

// TestInstrumentCounts checks the code, the forwarded count (a request no
// Local handler saw) and the latency histogram's exclusions.
func TestInstrumentCounts(t *testing.T) {
	a := newAPI()
	local := Local(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/namespaces/default/pods/web" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	mux := http.NewServeMux()
	mux.Handle("/api/v1/namespaces/default/pods/", local)
	mux.HandleFunc("/api/v1/namespaces/default/services", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated) // "forwarded": no Local on the way
	})
	h := a.Instrument(mux)
	do := func(method, url string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, url, nil))
	}
	do("GET", "/api/v1/namespaces/default/pods/web")
	do("GET", "/api/v1/namespaces/default/pods/other")
	do("GET", "/api/v1/namespaces/default/pods/other")
	do("POST", "/api/v1/namespaces/default/services")
	do("GET", "/api/v1/namespaces/default/pods/?watch=true")
	do("POST", forwardStreamPath)

	for _, c := range []struct {
		verb, res, code string
		want            float64
	}{
		{"get", "pods", "404", 1}, {"get", "pods", "200", 2}, {"create", "services", "201", 1}, {"watch", "pods", "200", 1},
	} {
		if got := testutil.ToFloat64(a.requests.WithLabelValues(c.verb, c.res, c.code)); got != c.want {
			t.Errorf("requests{%s,%s,%s} = %v, want %v", c.verb, c.res, c.code, got, c.want)
		}
	}
	if got := testutil.ToFloat64(a.forwarded.WithLabelValues("create", "services", "201")); got != 1 {
		t.Errorf("forwarded create services = %v, want 1", got)
	}
	if got := testutil.ToFloat64(a.forwarded.WithLabelValues("get", "pods", "200")); got != 0 {
		t.Errorf("forwarded get pods = %v, want 0 (answered locally)", got)
	}
	// Watches and streams of forwarded writes are counted but not timed.
	if got := testutil.ToFloat64(a.requests.WithLabelValues("post", "", "404")); got != 1 {
		t.Errorf("requests{post,,404} (the stream) = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(a.latency); n != 2 {
		t.Errorf("latency series = %d, want 2 (get pods, create services; no watch, no stream)", n)
	}
}

// hijackable is a ResponseWriter that can be hijacked and flushed.
type hijackable struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (h *hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, bufio.NewReadWriter(bufio.NewReader(c1), bufio.NewWriter(c1)), nil
}

// TestInstrumentKeepsInterfaces: watch streams flush and exec upgrades
// hijack through the recorder, directly or via http.ResponseController.
func TestInstrumentKeepsInterfaces(t *testing.T) {
	a := newAPI()
	under := &hijackable{ResponseRecorder: httptest.NewRecorder()}
	h := a.Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the recorder is not an http.Flusher")
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Fatalf("ResponseController.Hijack: %v", err)
		}
		c.Close()
	}))
	h.ServeHTTP(under, httptest.NewRequest("POST", "/api/v1/namespaces/default/pods/web/exec", nil))
	if !under.hijacked || !under.Flushed {
		t.Errorf("hijacked %v, flushed %v: want both", under.hijacked, under.Flushed)
	}
	// A flush before any write is a 200 (a watch stream's headers).
	if got := testutil.ToFloat64(a.requests.WithLabelValues("create", "pods/exec", "200")); got != 1 {
		t.Errorf("exec requests{200} = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(a.latency); n != 0 {
		t.Errorf("latency series = %d, want 0 (exec is not timed)", n)
	}
}

// TestInstrumentNoAllocs: the middleware adds no allocation per request
// once its series exist (the recorder is pooled, labels are constants).
func TestInstrumentNoAllocs(t *testing.T) {
	a := newAPI()
	h := a.Instrument(Local(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })))
	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/web", nil)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r) // creates the series
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) }); n > 0 {
		t.Errorf("Instrument allocates %v times per request, want 0", n)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkInstrument(b *testing.B) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	r := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods/web", nil)
	w := &discard{h: http.Header{}}
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			inner.ServeHTTP(w, r)
		}
	})
	b.Run("instrumented", func(b *testing.B) {
		h := newAPI().Instrument(Local(inner))
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
}
