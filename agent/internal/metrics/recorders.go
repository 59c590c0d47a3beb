package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Every recorder below does nothing when it is nil, so that the parts of
// the agent run without metrics in their unit tests.

// Raft records what the Raft node measures (it implements the consensus
// package's Observer). It outlives the nodes of the agent's voter terms,
// so its counters do not restart when the agent is demoted and promoted.
type Raft struct {
	apply         prometheus.Histogram
	leaderChanges prometheus.Counter
}

func newRaft() *Raft {
	return &Raft{
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "raft_apply_duration_seconds",
			Help:    "Time from handing a batch of store operations to Raft to its being applied on this leader (commit and FSM apply).",
			Buckets: fastBuckets,
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "raft_leader_changes_total",
			Help: "Times this voter saw the Raft leader change to another (or a first) server.",
		}),
	}
}

func (r *Raft) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.apply, r.leaderChanges}
}

// ApplyDone records one entry's time from raft.Apply to applied.
func (r *Raft) ApplyDone(d time.Duration) {
	if r != nil {
		r.apply.Observe(seconds(d))
	}
}

// LeaderChanged records that the known leader changed.
func (r *Raft) LeaderChanged() {
	if r != nil {
		r.leaderChanges.Inc()
	}
}

// Scheduler records the leader's scheduling passes.
type Scheduler struct {
	scheduled, failed prometheus.Counter
	latency           prometheus.Histogram
	unschedulable     prometheus.Gauge
	attemptsVec       *prometheus.CounterVec
}

func newScheduler() *Scheduler {
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "scheduler_attempts_total",
		Help: "Pods the scheduler tried to place, by result: scheduled (bound to a node) or unschedulable (no node fits).",
	}, []string{"result"})
	s := &Scheduler{
		scheduled: attempts.WithLabelValues("scheduled"),
		failed:    attempts.WithLabelValues("unschedulable"),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "scheduler_duration_seconds",
			Help:    "Time one scheduling pass took to decide for every pending pod.",
			Buckets: fastBuckets,
		}),
		unschedulable: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "scheduler_unschedulable_pods",
			Help: "Pending pods no node fitted at the last scheduling pass on this agent (while it led).",
		}),
	}
	s.attemptsVec = attempts
	return s
}

func (s *Scheduler) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.attemptsVec, s.latency, s.unschedulable}
}

// Pass records one scheduling pass: how long it took, how many pods it
// bound and how many it could not place.
func (s *Scheduler) Pass(d time.Duration, scheduled, unschedulable int) {
	if s == nil {
		return
	}
	s.latency.Observe(seconds(d))
	s.scheduled.Add(float64(scheduled))
	s.failed.Add(float64(unschedulable))
	s.unschedulable.Set(float64(unschedulable))
}

// BoundAtCreation counts pods bound in the plan that created them (see
// placement.BindCreated): scheduled, without a pass of their own.
func (s *Scheduler) BoundAtCreation(scheduled int) {
	if s != nil {
		s.scheduled.Add(float64(scheduled))
	}
}

// Idle records a pass that found no pending pod.
func (s *Scheduler) Idle() {
	if s != nil {
		s.unschedulable.Set(0)
	}
}

// Controllers records the leader's controller loop.
type Controllers struct {
	depth     *prometheus.GaugeVec
	reconcile *prometheus.HistogramVec
}

func newControllers() *Controllers {
	return &Controllers{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "controller_queue_depth",
			Help: "Keys waiting to be reconciled, by controller, when the last batch started.",
		}, []string{"controller"}),
		reconcile: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "controller_reconcile_duration_seconds",
			Help:    "Time one reconcile (one key's decision) took, by controller.",
			Buckets: fastBuckets,
		}, []string{"controller"}),
	}
}

func (c *Controllers) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.depth, c.reconcile}
}

// Init makes the series of the named controllers exist (at zero) before
// this agent ever leads.
func (c *Controllers) Init(names ...string) {
	if c == nil {
		return
	}
	for _, n := range names {
		c.depth.WithLabelValues(n)
		c.reconcile.WithLabelValues(n)
	}
}

// Queue records how many keys the controller has to reconcile.
func (c *Controllers) Queue(controller string, depth int) {
	if c != nil {
		c.depth.WithLabelValues(controller).Set(float64(depth))
	}
}

// Reconciler returns the histogram of one controller's reconciles (nil
// when c is nil), to be looked up once per batch.
func (c *Controllers) Reconciler(controller string) prometheus.Observer {
	if c == nil {
		return nil
	}
	return c.reconcile.WithLabelValues(controller)
}

// NodeLoop records the node loop's host work.
type NodeLoop struct {
	startLatency       prometheus.Histogram
	pullOK, pullFailed prometheus.Counter
	pullLatency        prometheus.Histogram
	pullsVec           *prometheus.CounterVec
}

func newNodeLoop() *NodeLoop {
	pulls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "node_image_pulls_total",
		Help: "Images the node loop made sure of (pulled, or found present), by result.",
	}, []string{"result"})
	return &NodeLoop{
		startLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "node_pod_start_duration_seconds",
			Help:    "Time from a pod's creation to this node first reporting it Running.",
			Buckets: slowBuckets,
		}),
		pullsVec:   pulls,
		pullOK:     pulls.WithLabelValues("success"),
		pullFailed: pulls.WithLabelValues("failure"),
		pullLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "node_image_pull_duration_seconds",
			Help:    "Time one image pull (or presence check) took.",
			Buckets: slowBuckets,
		}),
	}
}

func (n *NodeLoop) collectors() []prometheus.Collector {
	return []prometheus.Collector{n.startLatency, n.pullsVec, n.pullLatency}
}

// PodStarted records a pod's time from creation to Running.
func (n *NodeLoop) PodStarted(d time.Duration) {
	if n != nil {
		n.startLatency.Observe(seconds(max(d, 0)))
	}
}

// ImagePull records one pull and whether it failed.
func (n *NodeLoop) ImagePull(d time.Duration, err error) {
	if n == nil {
		return
	}
	n.pullLatency.Observe(seconds(d))
	if err != nil {
		n.pullFailed.Inc()
	} else {
		n.pullOK.Inc()
	}
}

// Proxy records the service proxy's syncs.
type Proxy struct {
	latency    prometheus.Histogram
	ok, failed prometheus.Counter
	syncsVec   *prometheus.CounterVec
}

func newProxy() *Proxy {
	syncs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "proxy_syncs_total",
		Help: "Load-balancer syncs (changes sent to nftables), by result.",
	}, []string{"result"})
	return &Proxy{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "proxy_sync_duration_seconds",
			Help:    "Time one load-balancer sync took to program nftables.",
			Buckets: fastBuckets,
		}),
		syncsVec: syncs,
		ok:       syncs.WithLabelValues("success"),
		failed:   syncs.WithLabelValues("failure"),
	}
}

func (p *Proxy) collectors() []prometheus.Collector {
	return []prometheus.Collector{p.latency, p.syncsVec}
}

// Synced records one sync.
func (p *Proxy) Synced(d time.Duration, err error) {
	if p == nil {
		return
	}
	p.latency.Observe(seconds(d))
	if err != nil {
		p.failed.Inc()
	} else {
		p.ok.Inc()
	}
}
