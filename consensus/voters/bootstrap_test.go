package voters

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func alive(ids ...string) []Candidate {
	var cs []Candidate
	for _, id := range ids {
		cs = append(cs, Candidate{ID: id, Alive: true})
	}
	return cs
}

func TestDecideBootstrap(t *testing.T) {
	for _, tc := range []struct {
		name         string
		self         string
		expect       int
		cands        []Candidate
		want         Action
		wantCluster  string
		wantConflict bool
		why          string
	}{
		{name: "dev: one agent bootstraps alone", self: "h1", expect: 1, want: Bootstrap, why: "1 agents ready (h1), expect 1"},
		{name: "too few agents", self: "h1", expect: 3, cands: alive("h1", "h2"), want: Wait, why: "waiting for 3 agents, see 2: h1, h2"},
		{name: "self counts even when absent from the view", self: "h1", expect: 3, cands: alive("h2", "h3"), want: Bootstrap},
		{name: "lowest bootstraps", self: "h1", expect: 3, cands: alive("h3", "h2", "h1"), want: Bootstrap, why: "h1 has the lowest ID"},
		{name: "others wait for the lowest", self: "h2", expect: 3, cands: alive("h3", "h2", "h1"), want: Wait, why: "h1 has the lowest ID and bootstraps"},
		{name: "more than expect: still only the lowest", self: "h1", expect: 3, cands: alive("h1", "h2", "h3", "h4"), want: Bootstrap},
		{name: "IDs compare as strings", self: "h10", expect: 2, cands: alive("h9", "h10"), want: Bootstrap},
		{
			name: "dead agents do not count", self: "h1", expect: 3,
			cands: append(alive("h1", "h2"), Candidate{ID: "h3"}),
			want:  Wait, why: "see 2: h1, h2",
		},
		{
			name: "a dead lower agent does not block", self: "h2", expect: 2,
			cands: append(alive("h2", "h3"), Candidate{ID: "h1"}),
			want:  Bootstrap,
		},
		{
			name: "existing cluster is joined even by the lowest", self: "h1", expect: 3,
			cands: []Candidate{{ID: "h1", Alive: true}, {ID: "h2", Alive: true}, {ID: "h3", Alive: true}, {ID: "h9", Alive: true, ClusterID: "c-x"}},
			want:  Join, wantCluster: "c-x", why: "join cluster c-x advertised by h9",
		},
		{
			name: "existing cluster is joined before expect is reached", self: "h5", expect: 5,
			cands: []Candidate{{ID: "h2", Alive: true, ClusterID: "c-x"}},
			want:  Join, wantCluster: "c-x",
		},
		{
			name: "a dead advertiser is no cluster to join", self: "h1", expect: 2,
			cands: []Candidate{{ID: "h1", Alive: true}, {ID: "h2", Alive: true}, {ID: "h0", ClusterID: "c-x"}},
			want:  Bootstrap,
		},
		{
			name: "two clusters: the one more agents advertise, flagged", self: "h1", expect: 3,
			cands: []Candidate{{ID: "h2", Alive: true, ClusterID: "c-b"}, {ID: "h3", Alive: true, ClusterID: "c-b"}, {ID: "h4", Alive: true, ClusterID: "c-a"}},
			want:  Join, wantCluster: "c-b", wantConflict: true, why: "more than one cluster is visible, also c-a (by h4)",
		},
		{
			name: "two clusters, as many advertisers: the lowest ID", self: "h1", expect: 3,
			cands: []Candidate{{ID: "h2", Alive: true, ClusterID: "c-b"}, {ID: "h4", Alive: true, ClusterID: "c-a"}},
			want:  Join, wantCluster: "c-a", wantConflict: true,
		},
		{name: "expect 0 never bootstraps", self: "h1", expect: 0, cands: alive("h1"), want: Wait, why: "invalid input"},
		{name: "empty self never bootstraps", self: "", expect: 1, want: Wait, why: "invalid input"},
		{
			name: "duplicate entries: the alive one wins", self: "h2", expect: 2,
			cands: []Candidate{{ID: "h1"}, {ID: "h2", Alive: true}, {ID: "h1", Alive: true}},
			want:  Wait, why: "h1 has the lowest ID",
		},
		{
			// The documented caveat: with more agents than expect, an
			// agent that does not see h1 yet may bootstrap too. Use
			// expect = number of agents started together.
			name: "caveat: partial view with expect below the agent count", self: "h2", expect: 3,
			cands: alive("h2", "h3", "h4"),
			want:  Bootstrap,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideBootstrap(tc.self, tc.expect, tc.cands)
			if d.Action != tc.want || d.ClusterID != tc.wantCluster || d.Conflict != tc.wantConflict {
				t.Fatalf("got %+v, want %v cluster %q conflict %v", d, tc.want, tc.wantCluster, tc.wantConflict)
			}
			if d.Reason == "" || !strings.Contains(d.Reason, tc.why) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.why)
			}
		})
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Wait: "Wait", Bootstrap: "Bootstrap", Join: "Join", 7: "Action(7)"} {
		if got := a.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(a), got, want)
		}
	}
}

// genIDs draws n distinct agent names; their string order is not their
// index order, so "the lowest" is not always agent 0.
func genIDs(t *rapid.T, n int) []string {
	nums := rapid.SliceOfNDistinct(rapid.IntRange(0, 40), n, n, rapid.ID).Draw(t, "ids")
	ids := make([]string, n)
	for i, k := range nums {
		ids[i] = fmt.Sprintf("h%d", k)
	}
	return ids
}

// TestBootstrapSimulation runs N agents started together with expect = N.
// Each agent decides from its own view, which gossip fills in one entry at
// a time and which can be stale (an entry shows what the agent advertised
// when it was last heard from) or wrong (an agent briefly seen dead).
// Whatever the order, only the lowest ID ever bootstraps, and once every
// view is complete and fresh, everyone ends up in that one cluster.
func TestBootstrapSimulation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(3, 7).Draw(t, "n")
		ids := genIDs(t, n)
		lowest := slices.Min(ids)

		type entry struct {
			known, alive bool
			cluster      string
		}
		view := make([][]entry, n) // view[i][j]: what agent i knows of agent j
		for i := range view {
			view[i] = make([]entry, n)
			view[i][i] = entry{known: true, alive: true}
		}
		cluster := make([]string, n)
		var bootstrapped []string

		decide := func(i int) {
			if cluster[i] != "" {
				return // in a cluster: it no longer runs the decision
			}
			var cands []Candidate
			for j, e := range view[i] {
				if e.known {
					cands = append(cands, Candidate{ID: ids[j], Alive: e.alive, ClusterID: e.cluster})
				}
			}
			d := DecideBootstrap(ids[i], n, cands)
			switch d.Action {
			case Bootstrap:
				bootstrapped = append(bootstrapped, ids[i])
				cluster[i] = "c-" + ids[i]
			case Join:
				cluster[i] = d.ClusterID
			}
			view[i][i].cluster = cluster[i]
		}
		hear := func(i, j int, alive bool) {
			view[i][j] = entry{known: true, alive: alive, cluster: cluster[j]}
		}

		steps := rapid.IntRange(0, 80).Draw(t, "steps")
		for range steps {
			i := rapid.IntRange(0, n-1).Draw(t, "i")
			switch rapid.IntRange(0, 2).Draw(t, "event") {
			case 0:
				decide(i)
			case 1:
				hear(i, rapid.IntRange(0, n-1).Draw(t, "j"), true)
			case 2:
				if j := rapid.IntRange(0, n-1).Draw(t, "j"); j != i {
					hear(i, j, false)
				}
			}
		}
		// Gossip converges: every view becomes complete and fresh, and
		// everyone decides again, a few rounds in a random order.
		for round := range n + 1 {
			for _, i := range rapid.Permutation(seq(n)).Draw(t, fmt.Sprintf("order%d", round)) {
				for j := range n {
					hear(i, j, true)
				}
				decide(i)
			}
		}

		if len(bootstrapped) != 1 || bootstrapped[0] != lowest {
			t.Fatalf("bootstrapped by %v, want exactly [%s]", bootstrapped, lowest)
		}
		for i, c := range cluster {
			if c != "c-"+lowest {
				t.Fatalf("agent %s ended in cluster %q, want c-%s (all: %v)", ids[i], c, lowest, cluster)
			}
		}
	})
}

// TestBootstrapSameView: agents that all see the same set (some dead, expect
// anywhere from 1 to past the count) make at most one Bootstrap between
// them, by the lowest alive ID, and exactly one when enough are alive.
func TestBootstrapSameView(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 7).Draw(t, "n")
		ids := genIDs(t, n)
		expect := rapid.IntRange(1, n+1).Draw(t, "expect")
		var cands []Candidate
		var up []string
		for _, id := range ids {
			a := rapid.Bool().Draw(t, "alive "+id)
			cands = append(cands, Candidate{ID: id, Alive: a})
			if a {
				up = append(up, id)
			}
		}
		var boots []string
		for _, self := range up {
			view := rapid.Permutation(cands).Draw(t, "view of "+self)
			if d := DecideBootstrap(self, expect, view); d.Action == Bootstrap {
				boots = append(boots, self)
			} else if d.Action != Wait {
				t.Fatalf("%s: %v with no cluster visible", self, d)
			}
		}
		switch {
		case len(up) >= expect:
			if len(boots) != 1 || boots[0] != slices.Min(up) {
				t.Fatalf("bootstrapped by %v, want exactly [%s]", boots, slices.Min(up))
			}
		case len(boots) != 0:
			t.Fatalf("bootstrapped by %v with %d alive < expect %d", boots, len(up), expect)
		}
	})
}

// TestDecideBootstrapOrder: the decision does not depend on the order of the
// candidates, duplicates included.
func TestDecideBootstrapOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cand := rapid.Custom(func(t *rapid.T) Candidate {
			return Candidate{
				ID:        rapid.SampledFrom([]string{"h1", "h2", "h3", "h4", "h5"}).Draw(t, "id"),
				Alive:     rapid.Bool().Draw(t, "alive"),
				ClusterID: rapid.SampledFrom([]string{"", "", "", "c-a", "c-b"}).Draw(t, "cluster"),
			}
		})
		cands := rapid.SliceOfN(cand, 0, 8).Draw(t, "cands")
		self := rapid.SampledFrom([]string{"h1", "h2", "h3", "h6"}).Draw(t, "self")
		expect := rapid.IntRange(1, 4).Draw(t, "expect")
		want := DecideBootstrap(self, expect, cands)
		got := DecideBootstrap(self, expect, rapid.Permutation(cands).Draw(t, "shuffled"))
		if got != want {
			t.Fatalf("order changed the decision:\n %+v\n %+v", want, got)
		}
	})
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestDecideBootstrapFor (issue 9, defect 10): the rules that keep a second
// cluster from forming.
func TestDecideBootstrapFor(t *testing.T) {
	withCluster := func(id string, ids ...string) []Candidate {
		cs := alive(ids...)
		for i := range cs {
			cs[i].ClusterID = id
		}
		return cs
	}
	for _, tc := range []struct {
		name        string
		in          BootstrapInput
		want        Action
		wantCluster string
		why         string
	}{
		{
			name: "hosts added later that see only each other wait for their --join member",
			in:   BootstrapInput{Self: "h4", Expect: 3, Candidates: alive("h4", "h5", "h6"), Unreached: []string{"10.0.0.1:7946"}},
			want: Wait, why: "no agent has answered yet at --join 10.0.0.1:7946",
		},
		{
			name: "once the --join member answers, they join its cluster",
			in:   BootstrapInput{Self: "h4", Expect: 3, Candidates: append(alive("h4", "h5", "h6"), withCluster("c1", "h1")...)},
			want: Join, wantCluster: "c1",
		},
		{
			name: "a cluster in view is joined even with a --join address unreached",
			in:   BootstrapInput{Self: "h4", Expect: 3, Candidates: withCluster("c1", "h2"), Unreached: []string{"10.0.0.1:7946"}},
			want: Join, wantCluster: "c1",
		},
		{
			name: "agents started together, every --join answered, bootstrap as before",
			in:   BootstrapInput{Self: "h1", Expect: 3, Candidates: alive("h1", "h2", "h3")},
			want: Bootstrap,
		},
		{
			name: "an agent with a cluster id in its data dir never bootstraps",
			in:   BootstrapInput{Self: "h1", Expect: 1, Candidates: alive("h1", "h2", "h3"), ClusterID: "c1"},
			want: Wait, why: "belongs to cluster c1",
		},
		{
			name: "nor joins another cluster",
			in:   BootstrapInput{Self: "h1", Expect: 3, Candidates: withCluster("c2", "h2", "h3"), ClusterID: "c1"},
			want: Wait, why: "never bootstraps or joins another",
		},
		{
			name: "it joins its own cluster again",
			in:   BootstrapInput{Self: "h1", Expect: 3, Candidates: append(withCluster("c2", "h2", "h3"), withCluster("c1", "h4")...), ClusterID: "c1"},
			want: Join, wantCluster: "c1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideBootstrapFor(tc.in)
			if d.Action != tc.want || d.ClusterID != tc.wantCluster || !strings.Contains(d.Reason, tc.why) {
				t.Fatalf("got %v %q (%s), want %v %q with reason containing %q", d.Action, d.ClusterID, d.Reason, tc.want, tc.wantCluster, tc.why)
			}
		})
	}
}
