package placement

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestResourceScorers(t *testing.T) {
	// Node: 4 cpu, 4Gi. Scores are the mean over cpu and memory, in
	// thousandths, after the pod lands.
	cases := []struct {
		name        string
		cpu, mem    string
		used        Resources
		least, pack int64
	}{
		{"empty node, 1 cpu 1Gi", "1", "1Gi", Resources{}, 750, 250},
		{"half used", "1", "1Gi", Resources{MilliCPU: 1000, Memory: 1 << 30}, 500, 500},
		{"cpu full, memory empty", "1", "1Gi", Resources{MilliCPU: 3000}, (0 + 750) / 2, (1000 + 250) / 2},
		{"no requests: scoring defaults 100m and 200Mi", "", "", Resources{}, (975 + 951) / 2, (25 + 48) / 2},
		{"over allocatable scores 0 both ways", "1", "1Gi", Resources{MilliCPU: 4000, Memory: 4 << 30}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, n := schedInfo(schedPod("default", "p", c.cpu, c.mem), schedNode("n", "4", "4Gi", "10", nil), Resources{})
			n.scoreUsed = c.used
			if got := (leastAllocated{}).Score(p, n); got != c.least {
				t.Errorf("least allocated = %d, want %d", got, c.least)
			}
			if got := (binPack{}).Score(p, n); got != c.pack {
				t.Errorf("bin pack = %d, want %d", got, c.pack)
			}
		})
	}
	t.Run("node without allocatable scores 0", func(t *testing.T) {
		p, n := schedInfo(schedPod("default", "p", "1", "1Gi"), &api.Node{}, Resources{})
		if a, b := (leastAllocated{}).Score(p, n), (binPack{}).Score(p, n); a != 0 || b != 0 {
			t.Errorf("scores %d, %d", a, b)
		}
	})
}

func TestNodeSpreadScorer(t *testing.T) {
	cases := []struct {
		count int32
		want  int64
	}{{0, 1000}, {1, 500}, {2, 333}, {9, 100}}
	for _, c := range cases {
		p, n := schedInfo(schedPod("default", "p", "", ""), schedNode("n", "1", "1Gi", "10", nil), Resources{})
		n.idx = 3
		p.owner = &ownerCounts{node: map[int32]int32{3: c.count, 4: 7}}
		if got := (nodeSpread{}).Score(p, n); got != c.want {
			t.Errorf("count %d: got %d, want %d", c.count, got, c.want)
		}
	}
	p, n := schedInfo(schedPod("default", "p", "", ""), schedNode("n", "1", "1Gi", "10", nil), Resources{})
	if got := (nodeSpread{}).Score(p, n); got != MaxScore {
		t.Errorf("no owner counts: got %d", got)
	}
}

func TestPreferredAffinityScore(t *testing.T) {
	labels := map[string]string{"zone": "a", "disk": "ssd"}
	pref := func(w int32, rs ...api.NodeSelectorRequirement) api.PreferredSchedulingTerm {
		return api.PreferredSchedulingTerm{Weight: w, Preference: nsTerm(rs...)}
	}
	cases := []struct {
		name  string
		terms []api.PreferredSchedulingTerm
		want  int64
	}{
		{"none", nil, 0},
		{"one matching", []api.PreferredSchedulingTerm{pref(10, nsReq("zone", "In", "a"))}, 1000},
		{"one missing", []api.PreferredSchedulingTerm{pref(10, nsReq("zone", "In", "b"))}, 0},
		{"share of weight", []api.PreferredSchedulingTerm{pref(30, nsReq("disk", "Exists")), pref(70, nsReq("zone", "In", "b"))}, 300},
		{"zero weight and empty terms do not count",
			[]api.PreferredSchedulingTerm{pref(0, nsReq("zone", "In", "b")), pref(5), pref(5, nsReq("zone", "NotIn", "b"))}, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := preferredScore(c.terms, labels); got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
			pod := schedPod("default", "p", "", "")
			pod.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: c.terms}}
			s := NewScheduler(SchedulerConfig{}, []*api.Node{schedNode("n", "1", "1Gi", "10", labels)}, nil)
			p := &podInfo{pod: pod}
			p.prof = s.profileFor(p)
			if got := (preferredAffinity{}).Score(p, &s.nodes[0]); got != c.want {
				t.Errorf("scorer: got %d, want %d", got, c.want)
			}
		})
	}
}
