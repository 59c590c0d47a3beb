package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeHandler serves m's handler once and parses the text answer.
func scrapeHandler(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("HTTP %d: %s", w.Code, w.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams
}

// sample finds the value of the one series of f whose labels include lv.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, f string, lv ...string) float64 {
	t.Helper()
	fam := fams[f]
	if fam == nil {
		t.Fatalf("family %s missing", f)
	}
outer:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(lv); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == lv[i] && l.GetValue() == lv[i+1] {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("%s%v: no such series", f, lv)
	return 0
}

// With no source set (a non-voter without pods), every family is there,
// at zero, and the Raft state is "none".
func TestStateWithoutSources(t *testing.T) {
	m := New()
	fams := scrapeHandler(t, m)
	for _, f := range []string{"shoal_raft_term", "shoal_store_revision", "shoal_gossip_health_score", "shoal_dns_names",
		"shoal_proxy_services", "shoal_scheduler_unschedulable_pods", "shoal_raft_apply_duration_seconds"} {
		if v := sample(t, fams, f); v != 0 {
			t.Errorf("%s = %v, want 0", f, v)
		}
	}
	if v := sample(t, fams, "shoal_raft_state", "state", "none"); v != 1 {
		t.Errorf("raft_state{none} = %v, want 1", v)
	}
	if v := sample(t, fams, "shoal_node_pods", "phase", "Running"); v != 0 {
		t.Errorf("node_pods{Running} = %v, want 0", v)
	}
	if v := sample(t, fams, "shoal_store_objects", "kind", "Pod"); v != 0 {
		t.Errorf("store_objects{Pod} = %v, want 0", v)
	}
	if v := sample(t, fams, "shoal_scheduler_attempts_total", "result", "unschedulable"); v != 0 {
		t.Errorf("scheduler_attempts_total{unschedulable} = %v, want 0", v)
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("the Go runtime's and the process's families are missing")
	}
}

// Sources are read at scrape time; DNS counters become outcomes.
func TestStateFromSources(t *testing.T) {
	m := New()
	m.SetRaft(func() (RaftStatus, bool) {
		return RaftStatus{State: "Leader", Term: 7, CommitIndex: 40, AppliedIndex: 39, LastIndex: 41}, true
	})
	m.SetStore(func() (StoreStats, bool) {
		return StoreStats{Revision: 12, Watchers: 3, Objects: map[string]int{"Pod": 5}}, true
	})
	m.SetGossip(func() (GossipStats, bool) {
		return GossipStats{Members: map[string]int{"alive": 2, "dead": 1}, HealthScore: 2}, true
	})
	m.SetPods(func() map[string]int { return map[string]int{"Running": 4, "Pending": 1} })
	m.SetDNS(func() (DNSStats, bool) {
		return DNSStats{Queries: 20, Answered: 10, NXDomain: 3, Forwarded: 6, ServFail: 1, Rejected: 2, Dropped: 2, Names: 9}, true
	})
	m.SetProxyServices(func() int { return 6 })
	m.Scheduler.Pass(0, 2, 1)
	fams := scrapeHandler(t, m)
	for _, c := range []struct {
		f    string
		lv   []string
		want float64
	}{
		{"shoal_raft_state", []string{"state", "leader"}, 1},
		{"shoal_raft_state", []string{"state", "none"}, 0},
		{"shoal_raft_term", nil, 7},
		{"shoal_raft_commit_index", nil, 40},
		{"shoal_raft_applied_index", nil, 39},
		{"shoal_store_objects", []string{"kind", "Pod"}, 5},
		{"shoal_store_watchers", nil, 3},
		{"shoal_store_revision", nil, 12},
		{"shoal_gossip_members", []string{"state", "dead"}, 1},
		{"shoal_gossip_members", []string{"state", "left"}, 0},
		{"shoal_gossip_health_score", nil, 2},
		{"shoal_node_pods", []string{"phase", "Running"}, 4},
		{"shoal_dns_queries_total", []string{"rcode", "NOERROR"}, 7},
		{"shoal_dns_queries_total", []string{"rcode", "NXDOMAIN"}, 3},
		{"shoal_dns_queries_total", []string{"rcode", "SERVFAIL"}, 1},
		{"shoal_dns_queries_total", []string{"rcode", "forwarded"}, 5},
		{"shoal_dns_queries_total", []string{"rcode", "rejected"}, 2},
		{"shoal_dns_queries_total", []string{"rcode", "dropped"}, 2},
		{"shoal_dns_names", nil, 9},
		{"shoal_proxy_services", nil, 6},
		{"shoal_scheduler_attempts_total", []string{"result", "scheduled"}, 2},
		{"shoal_scheduler_unschedulable_pods", nil, 1},
	} {
		if got := sample(t, fams, c.f, c.lv...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.f, c.lv, got, c.want)
		}
	}
}

// Two agents in one process have their own registries.
func TestRegistriesApart(t *testing.T) {
	a, b := New(), New()
	a.Raft.LeaderChanged()
	if v := sample(t, scrapeHandler(t, b), "shoal_raft_leader_changes_total"); v != 0 {
		t.Errorf("b sees a's leader change: %v", v)
	}
	if v := sample(t, scrapeHandler(t, a), "shoal_raft_leader_changes_total"); v != 1 {
		t.Errorf("a's leader changes = %v, want 1", v)
	}
}

// Nil recorders do nothing (parts under test run without metrics).
func TestNilRecorders(t *testing.T) {
	var m Metrics
	m.Raft.ApplyDone(1)
	m.Raft.LeaderChanged()
	m.Scheduler.Pass(1, 1, 1)
	m.Scheduler.Idle()
	m.Controllers.Init("x")
	m.Controllers.Queue("x", 1)
	if m.Controllers.Reconciler("x") != nil {
		t.Error("a nil Controllers gave an observer")
	}
	m.Node.PodStarted(1)
	m.Node.ImagePull(1, nil)
	m.Proxy.Synced(1, nil)
	if h := m.API.Instrument(nil); h != nil {
		t.Error("a nil API wrapped the handler")
	}
}
