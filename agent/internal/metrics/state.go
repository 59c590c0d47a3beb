package metrics

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/api"
)

// RaftStatus is what the state collector reads from this agent's Raft node.
type RaftStatus struct {
	// State is raft's state name ("Leader", "Follower", "Candidate",
	// "Shutdown"), any case.
	State                                      string
	Term, CommitIndex, AppliedIndex, LastIndex uint64
}

// StoreStats is what the state collector reads from the local store.
type StoreStats struct {
	Revision int64
	Watchers int
	Objects  map[string]int // by kind
}

// GossipStats is this agent's view of the membership.
type GossipStats struct {
	// Members counts members by state: "alive", "dead", "left". (A
	// suspected member is alive until declared dead: memberlist does not
	// say which members it suspects, see gossip.Health.)
	Members map[string]int
	// HealthScore is memberlist's awareness score: 0 is healthy; it rises
	// when this agent's probes go unanswered and its own acks come late.
	HealthScore int
}

// DNSStats are the cluster DNS server's counters since it started (the
// fields of agent/dns.Stats).
type DNSStats struct {
	Queries, Answered, NXDomain, Truncated, Forwarded, ServFail, Rejected, Dropped uint64
	Names                                                                          int
}

// Label values the state families always expose.
var (
	raftStates   = []string{"leader", "follower", "candidate", "shutdown", "none"}
	memberStates = []string{"alive", "dead", "left"}
	podPhases    = []string{api.PodPending, api.PodRunning, api.PodSucceeded, api.PodFailed, api.PodUnknown}
)

// stateCollector reads, at scrape time, state kept elsewhere. Sources are
// set (and replaced, as roles change) with the Set* methods; a source not
// set reads as zero.
type stateCollector struct {
	mu      sync.Mutex
	raft    func() (RaftStatus, bool)
	store   func() (StoreStats, bool)
	gossip  func() (GossipStats, bool)
	pods    func() map[string]int
	dns     func() (DNSStats, bool)
	proxied func() int

	raftState, raftTerm, raftCommit, raftApplied, raftLast *prometheus.Desc
	storeObjects, storeWatchers, storeRevision             *prometheus.Desc
	members, health                                        *prometheus.Desc
	podsDesc                                               *prometheus.Desc
	dnsQueries, dnsTruncated, dnsNames                     *prometheus.Desc
	proxyServices                                          *prometheus.Desc
	kinds                                                  []string
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

func newStateCollector() *stateCollector {
	c := &stateCollector{
		raftState:     desc("raft_state", "1 for this agent's Raft state (none: not a voter), 0 for the others.", "state"),
		raftTerm:      desc("raft_term", "Current Raft term on this voter (0 on a non-voter)."),
		raftCommit:    desc("raft_commit_index", "Highest Raft log index known committed on this voter."),
		raftApplied:   desc("raft_applied_index", "Last Raft log index applied to this voter's store."),
		raftLast:      desc("raft_last_index", "Last index in this voter's Raft log."),
		storeObjects:  desc("store_objects", "Objects in this agent's replica of the store, by kind.", "kind"),
		storeWatchers: desc("store_watchers", "Open watches on this agent's replica of the store."),
		storeRevision: desc("store_revision", "Revision of this agent's replica of the store."),
		members:       desc("gossip_members", "Gossip members as this agent sees them, by state.", "state"),
		health:        desc("gossip_health_score", "Memberlist's awareness score (0 healthy; rises with failed probes and late acks)."),
		podsDesc:      desc("node_pods", "Pods bound to this agent's node and not being deleted, by phase as stored.", "phase"),
		dnsQueries:    desc("dns_queries_total", "Cluster DNS queries by outcome: rcode NOERROR, NXDOMAIN or SERVFAIL for answers Shoal made, forwarded for those an upstream answered, rejected for FORMERR/NOTIMP/REFUSED/BADVERS, dropped for those not answered.", "rcode"),
		dnsTruncated:  desc("dns_truncated_responses_total", "Cluster DNS answers cut to fit UDP (TC set)."),
		dnsNames:      desc("dns_names", "Names in the cluster DNS index."),
		proxyServices: desc("proxy_services", "Services the service proxy follows."),
	}
	for _, k := range api.Kinds() {
		c.kinds = append(c.kinds, k.Kind)
	}
	return c
}

// Describe sends every family's description.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.raftState, c.raftTerm, c.raftCommit, c.raftApplied, c.raftLast,
		c.storeObjects, c.storeWatchers, c.storeRevision, c.members, c.health, c.podsDesc,
		c.dnsQueries, c.dnsTruncated, c.dnsNames, c.proxyServices} {
		ch <- d
	}
}

// Collect reads every source once.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	raft, st, gs, pods, dns, proxied := c.raft, c.store, c.gossip, c.pods, c.dns, c.proxied
	c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}

	var rs RaftStatus
	ok := false
	if raft != nil {
		rs, ok = raft()
	}
	state := "none"
	if ok {
		state = strings.ToLower(rs.State)
	}
	for _, s := range raftStates {
		gauge(c.raftState, b2f(s == state), s)
	}
	gauge(c.raftTerm, float64(rs.Term))
	gauge(c.raftCommit, float64(rs.CommitIndex))
	gauge(c.raftApplied, float64(rs.AppliedIndex))
	gauge(c.raftLast, float64(rs.LastIndex))

	var ss StoreStats
	if st != nil {
		ss, _ = st()
	}
	for _, k := range c.kinds {
		gauge(c.storeObjects, float64(ss.Objects[k]), k)
	}
	gauge(c.storeWatchers, float64(ss.Watchers))
	gauge(c.storeRevision, float64(ss.Revision))

	var g GossipStats
	if gs != nil {
		g, _ = gs()
	}
	for _, s := range memberStates {
		gauge(c.members, float64(g.Members[s]), s)
	}
	gauge(c.health, float64(g.HealthScore))

	var phases map[string]int
	if pods != nil {
		phases = pods()
	}
	for _, p := range podPhases {
		gauge(c.podsDesc, float64(phases[p]), p)
	}

	var d DNSStats
	if dns != nil {
		d, _ = dns()
	}
	counter(c.dnsQueries, sub(d.Answered, d.NXDomain), "NOERROR")
	counter(c.dnsQueries, d.NXDomain, "NXDOMAIN")
	counter(c.dnsQueries, d.ServFail, "SERVFAIL")
	counter(c.dnsQueries, sub(d.Forwarded, d.ServFail), "forwarded")
	counter(c.dnsQueries, d.Rejected, "rejected")
	counter(c.dnsQueries, d.Dropped, "dropped")
	counter(c.dnsTruncated, d.Truncated)
	gauge(c.dnsNames, float64(d.Names))

	n := 0
	if proxied != nil {
		n = proxied()
	}
	gauge(c.proxyServices, float64(n))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sub is a-b, 0 when the counters were read in between two increments.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// SetRaft sets the function that reads the Raft node; ok false means this
// agent is not a voter (state "none").
func (m *Metrics) SetRaft(f func() (RaftStatus, bool)) {
	m.state.set(func(c *stateCollector) { c.raft = f })
}

// SetStore sets the function that reads the local store.
func (m *Metrics) SetStore(f func() (StoreStats, bool)) {
	m.state.set(func(c *stateCollector) { c.store = f })
}

// SetGossip sets the function that reads the membership.
func (m *Metrics) SetGossip(f func() (GossipStats, bool)) {
	m.state.set(func(c *stateCollector) { c.gossip = f })
}

// SetPods sets the function that counts this node's pods by phase; nil
// when the node loop stops.
func (m *Metrics) SetPods(f func() map[string]int) {
	m.state.set(func(c *stateCollector) { c.pods = f })
}

// SetDNS sets the function that reads the cluster DNS server's counters.
func (m *Metrics) SetDNS(f func() (DNSStats, bool)) {
	m.state.set(func(c *stateCollector) { c.dns = f })
}

// SetProxyServices sets the function that counts the services the proxy
// follows.
func (m *Metrics) SetProxyServices(f func() int) {
	m.state.set(func(c *stateCollector) { c.proxied = f })
}

func (c *stateCollector) set(f func(*stateCollector)) {
	c.mu.Lock()
	f(c)
	c.mu.Unlock()
}
