package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every family of Shoal's own.
const Namespace = "shoal"

// Limits of the /metrics handler.
const (
	// MaxScrapesInFlight bounds concurrent scrapes of one agent; more are
	// answered 503.
	MaxScrapesInFlight = 4
	// ScrapeTimeout bounds the gathering of one scrape.
	ScrapeTimeout = 10 * time.Second
)

// Buckets of the latency histograms, in seconds.
var (
	// requestBuckets cover API requests: a local read takes well under a
	// millisecond, a forwarded write a few, a slow list seconds.
	requestBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	// fastBuckets cover in-memory decisions and Raft commits.
	fastBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	// slowBuckets cover host work: pulls and pod starts.
	slowBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}
)

// Metrics is one agent's registry and recorders.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	state   *stateCollector

	API         *API
	Raft        *Raft
	Scheduler   *Scheduler
	Controllers *Controllers
	Node        *NodeLoop
	Proxy       *Proxy
}

// New builds an agent's registry with every family registered, the Go
// runtime's and the process's own metrics included. The first call makes
// go-metrics' process-wide sink the one that counts memberlist's probes
// (probes.go).
func New() *Metrics {
	installProbeSink()
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg:         reg,
		state:       newStateCollector(),
		API:         newAPI(),
		Raft:        newRaft(),
		Scheduler:   newScheduler(),
		Controllers: newControllers(),
		Node:        newNodeLoop(),
		Proxy:       newProxy(),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.state,
	)
	for _, c := range [][]prometheus.Collector{
		m.API.collectors(), m.Raft.collectors(), m.Scheduler.collectors(),
		m.Controllers.collectors(), m.Node.collectors(), m.Proxy.collectors(),
		probeCollectors(),
	} {
		reg.MustRegister(c...)
	}
	m.handler = promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: MaxScrapesInFlight,
		Timeout:             ScrapeTimeout,
	}))
	return m
}

// Registry is the agent's registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' text format (or OpenMetrics
// or protobuf, as the scraper's Accept header asks).
func (m *Metrics) Handler() http.Handler { return m.handler }

// seconds is d in the base unit.
func seconds(d time.Duration) float64 { return d.Seconds() }
