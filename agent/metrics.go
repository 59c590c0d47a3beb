package agent

import (
	"github.com/shoal-dev/shoal/agent/controllers"
	"github.com/shoal-dev/shoal/agent/dns"
	"github.com/shoal-dev/shoal/agent/internal/metrics"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// This file wires the agent's Prometheus metrics (agent/internal/metrics):
// the sources read at scrape time. The recorders are handed to the loops
// where they are built (Raft in startRaft, the controllers in leaderWork,
// the node loop in runHost, the proxy in startServices).

// newMetrics builds the agent's registry and sets the sources that live
// as long as the agent.
func (a *Agent) newMetrics() *metrics.Metrics {
	m := metrics.New()
	m.SetRaft(func() (metrics.RaftStatus, bool) {
		n := a.Node()
		if n == nil {
			return metrics.RaftStatus{}, false
		}
		s := n.Status()
		return metrics.RaftStatus{State: s.State, Term: s.Term, CommitIndex: s.CommitIndex,
			AppliedIndex: s.AppliedIndex, LastIndex: s.LastIndex}, true
	})
	m.SetStore(func() (metrics.StoreStats, bool) {
		st := a.Store()
		if st == nil {
			return metrics.StoreStats{}, false
		}
		s := st.Stats()
		return metrics.StoreStats{Revision: s.Revision, Watchers: s.Watchers, Objects: s.Objects}, true
	})
	m.SetGossip(func() (metrics.GossipStats, bool) {
		g := a.gossip
		if g == nil {
			return metrics.GossipStats{}, false
		}
		h := g.Health()
		gs := metrics.GossipStats{Members: map[string]int{}, HealthScore: h.Score}
		for _, mb := range g.Members() {
			switch mb.State {
			case gossip.Alive:
				gs.Members["alive"]++
			case gossip.Dead:
				gs.Members["dead"]++
			case gossip.Left:
				gs.Members["left"]++
			}
		}
		return gs, true
	})
	var names []string
	for _, c := range controllers.Set(a.cfg.clusterNet()) {
		names = append(names, c.Name)
	}
	m.Controllers.Init(names...)
	return m
}

// dnsStats reads a cluster DNS server's counters for the metrics.
func dnsStats(s *dns.Server) func() (metrics.DNSStats, bool) {
	return func() (metrics.DNSStats, bool) {
		st := s.Stats()
		return metrics.DNSStats{Queries: st.Queries, Answered: st.Answered, NXDomain: st.NXDomain,
			Truncated: st.Truncated, Forwarded: st.Forwarded, ServFail: st.ServFail, Rejected: st.Rejected,
			Dropped: st.Dropped, Names: s.Names()}, true
	}
}
