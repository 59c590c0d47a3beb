package metrics

import (
	"slices"
	"sync"
	"sync/atomic"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// memberlist reports its failure detector's work only to go-metrics'
// process-wide sink (the go-metrics/compat package it imports), not
// through a delegate: a probe round is a timing sample
// ["memberlist","probeNode"], and a member it or another member's
// gossip marks suspect (a probe unanswered both directly and through
// the indirect checks) is a counter ["memberlist","msg","suspect"].
// probeSink is that sink; it keeps those two counts and drops the rest
// (Raft's and memberlist's other metrics). Being process-wide, the counts
// are the process's: one agent in production; every agent of an
// in-process test cluster shows the sum of them all.

// Keys of the go-metrics samples and counters counted.
var (
	probeKey   = []string{"memberlist", "probeNode"}
	suspectKey = []string{"memberlist", "msg", "suspect"}
)

type probeSink struct {
	probes, suspicions atomic.Uint64
}

// gossipProbes is the process's sink, installed once by installProbeSink.
var (
	gossipProbes     = &probeSink{}
	installProbeOnce sync.Once
)

// installProbeSink makes gossipProbes go-metrics' global sink: no service
// or host name in the keys, no runtime metrics (go-metrics would start a
// goroutine to report them).
func installProbeSink() {
	installProbeOnce.Do(func() {
		conf := gometrics.DefaultConfig("")
		conf.EnableHostname = false
		conf.EnableHostnameLabel = false
		conf.EnableRuntimeMetrics = false
		conf.EnableTypePrefix = false
		gometrics.NewGlobal(conf, gossipProbes)
	})
}

func (s *probeSink) SetGauge([]string, float32)                                         {}
func (s *probeSink) SetGaugeWithLabels([]string, float32, []gometrics.Label)            {}
func (s *probeSink) EmitKey([]string, float32)                                          {}
func (s *probeSink) IncrCounter(key []string, v float32)                                { s.count(key) }
func (s *probeSink) IncrCounterWithLabels(key []string, v float32, _ []gometrics.Label) { s.count(key) }
func (s *probeSink) AddSample(key []string, v float32)                                  { s.sample(key) }
func (s *probeSink) AddSampleWithLabels(key []string, v float32, _ []gometrics.Label) {
	s.sample(key)
}

func (s *probeSink) count(key []string) {
	if slices.Equal(key, suspectKey) {
		s.suspicions.Add(1)
	}
}

func (s *probeSink) sample(key []string) {
	if slices.Equal(key, probeKey) {
		s.probes.Add(1)
	}
}

// probeCollectors expose the sink's counts.
func probeCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gossip_probes_total",
			Help: "Failure-detector probes memberlist sent from this process (one member pinged per probe interval).",
		}, func() float64 { return float64(gossipProbes.probes.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "gossip_probe_failures_total",
			Help: "Members marked suspect in this process's member table: a probe got no ack, directly or through the indirect checks (this agent's probe, or another member's whose suspicion was gossiped here).",
		}, func() float64 { return float64(gossipProbes.suspicions.Load()) }),
	}
}
