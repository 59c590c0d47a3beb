package metrics

import (
	"testing"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
)

// TestGossipProbes reports memberlist's probe samples and suspicions the
// way memberlist does (go-metrics' global functions) and checks the two
// counters; other keys (Raft's, memberlist's other counters) are not
// counted.
func TestGossipProbes(t *testing.T) {
	m := New()
	before := scrapeHandler(t, m)
	probes0 := sample(t, before, "shoal_gossip_probes_total")
	fails0 := sample(t, before, "shoal_gossip_probe_failures_total")

	for range 3 {
		gometrics.MeasureSinceWithLabels([]string{"memberlist", "probeNode"}, time.Now(), nil)
	}
	gometrics.IncrCounterWithLabels([]string{"memberlist", "msg", "suspect"}, 1, nil)
	gometrics.IncrCounterWithLabels([]string{"memberlist", "msg", "dead"}, 1, nil)
	gometrics.IncrCounter([]string{"raft", "apply"}, 1)
	gometrics.MeasureSince([]string{"memberlist", "gossip"}, time.Now())

	after := scrapeHandler(t, New()) // every agent of the process sees them
	if got := sample(t, after, "shoal_gossip_probes_total") - probes0; got != 3 {
		t.Errorf("probes: +%v, want +3", got)
	}
	if got := sample(t, after, "shoal_gossip_probe_failures_total") - fails0; got != 1 {
		t.Errorf("probe failures: +%v, want +1", got)
	}
}
