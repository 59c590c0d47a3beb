package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shoal-dev/shoal/agent/internal/metrics"
)

// BenchmarkGetPodMetrics is the cost of the agent's metrics middleware
// (metrics.API.Instrument, with the Local marker the agent puts in front of
// the Server) on the cheapest API request: a stale GET of one pod, served
// in-process without a network round trip.
//
//	go test -run '^$' -bench GetPodMetrics -benchmem ./agent/apiserver
func BenchmarkGetPodMetrics(b *testing.B) {
	e := newEnv(b)
	seedPods(b, e, 1)
	const path = "/api/v1/namespaces/default/pods/web-00000?stale=true"
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != http.StatusOK {
				b.Fatalf("HTTP %d: %s", w.Code, w.Body)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, e.srv.Handler()) })
	b.Run("instrumented", func(b *testing.B) {
		run(b, metrics.New().API.Instrument(metrics.Local(e.srv.Handler())))
	})
}
