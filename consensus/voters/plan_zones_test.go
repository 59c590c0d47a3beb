package voters

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// settle runs Plan to its fixpoint with the clock stopped, applying each
// change as if it succeeded at once (a staged server stays unhealthy while
// caughtUp says no). It fails if the voters ever drop below the target or
// if no fixpoint comes within 20 changes.
func settle(t *testing.T, in Input, caughtUp func(id string) bool) (Input, []Change) {
	t.Helper()
	var trail []Change
	for range 20 {
		c, ok := Plan(in)
		if !ok {
			return in, trail
		}
		trail = append(trail, c)
		in = After(in, c)
		for i, s := range in.Servers {
			if !s.Voter && caughtUp != nil && !caughtUp(s.ID) {
				in.Servers[i].Unhealthy, in.Servers[i].UnhealthySince = "its log is behind", in.Now
			}
		}
		if n := voterCount(in); n < in.Target {
			t.Fatalf("after %v: %d voters < target %d", trail, n, in.Target)
		}
	}
	t.Fatalf("no fixpoint after 20 changes: %v", trail)
	return in, trail
}

func voterCount(in Input) int {
	n := 0
	for _, s := range in.Servers {
		if s.Voter {
			n++
		}
	}
	return n
}

// voterZones lists the voters' zones in server order, for messages.
func voterZones(in Input) string {
	zone := map[string]string{}
	for _, m := range in.Members {
		zone[m.ID] = m.Zone
	}
	var zs []string
	for _, s := range in.Servers {
		if s.Voter {
			zs = append(zs, s.ID+"@"+zone[s.ID])
		} else {
			zs = append(zs, s.ID+"@"+zone[s.ID]+"(non-voter)")
		}
	}
	return strings.Join(zs, ",")
}

func TestPlanSpreadsZones(t *testing.T) {
	hour := time.Hour
	// h1 (leader) and h2 in zone a, h3 in b: the founders; h4 in c.
	crowded := func(h4 Member) Input {
		return input([]Member{m("h1", "a", hour), m("h2", "a", hour), m("h3", "b", hour), h4}, voters("h1", "h2", "h3"))
	}
	for _, tc := range []struct {
		name   string
		in     Input
		want   Change // Reason is checked with Contains
		wantOK bool
		why    string
	}{
		{
			name:   "a,a,b with a stable agent in c: stage it",
			in:     crowded(m("h4", "c", hour)),
			want:   Change{Type: AddNonvoter, ID: "h4", Addr: "h4:7001", Reason: "zone c has no voter, zone a holds 2 voters"},
			wantOK: true,
		},
		{
			name: "staged, still catching up: wait, and keep it staged",
			in: func() Input {
				in := crowded(m("h4", "c", hour))
				in.Servers = append(in.Servers, Server{ID: "h4", Addr: "h4:7001", Unhealthy: "its log ends at 3", UnhealthySince: t0})
				return in
			}(),
			why: "staged non-voter h4 (zone c, which has no voter) is not ready to vote yet: its log ends at 3",
		},
		{
			name: "staged and caught up: promoted",
			in: func() Input {
				in := crowded(m("h4", "c", hour))
				in.Servers = append(in.Servers, Server{ID: "h4", Addr: "h4:7001"})
				return in
			}(),
			want:   Change{Type: AddVoter, ID: "h4", Addr: "h4:7001", Reason: "promote h4 to spread the voters"},
			wantOK: true,
		},
		{
			name: "promoted: the voter of zone a that is not the leader leaves",
			in: func() Input {
				in := crowded(m("h4", "c", hour))
				in.Servers = voters("h1", "h2", "h3", "h4")
				return in
			}(),
			want:   Change{Type: RemoveServer, ID: "h2", Addr: "h2:7001", Reason: "zone a holds the most voters (2)"},
			wantOK: true,
		},
		{
			name: "promoted, the leader is h2: h1 leaves",
			in: func() Input {
				in := crowded(m("h4", "c", hour))
				in.Servers, in.Leader = voters("h1", "h2", "h3", "h4"), "h2"
				return in
			}(),
			want:   Change{Type: RemoveServer, ID: "h1", Addr: "h1:7001", Reason: "zone a holds the most voters (2)"},
			wantOK: true,
		},
		{
			name: "no agent in a zone without a voter: no change",
			in:   crowded(m("h4", "b", hour)),
			why:  "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "the agent in c is not stable yet: wait",
			in:   crowded(m("h4", "c", 5*time.Second)),
			why:  "zone a holds 2 voters while 1 agents in zones without a voter are alive < stabilize 10s",
		},
		{
			name: "the agent in c may not vote: no change",
			in:   crowded(ineligible(m("h4", "c", hour))),
			why:  "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "the agent in c is dead: no change",
			in:   crowded(dead(m("h4", "c", hour), time.Minute)),
			why:  "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "a voter unhealthy: the cluster is not at rest, no move",
			in: func() Input {
				in := crowded(m("h4", "c", hour))
				in.Servers[1].Unhealthy, in.Servers[1].UnhealthySince = "lagging", t0
				return in
			}(),
			why: "3 voters (3 alive, 3 seated), target 3; 1 alive but unhealthy in raft",
		},
		{
			// a,b,c and a,b,d are equal layouts: moving between them
			// would be flapping.
			name: "already one voter per zone, an agent in a fourth zone: no change",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", hour), m("h4", "d", hour)},
				voters("h1", "h2", "h3")),
			why: "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "target 5 in a,a,b,b,c, the spare agent in zone a: no change",
			in: func() Input {
				in := input([]Member{m("h1", "a", hour), m("h2", "a", hour), m("h3", "b", hour), m("h4", "b", hour),
					m("h5", "c", hour), m("h6", "a", hour)}, voters("h1", "h2", "h3", "h4", "h5"))
				in.Target = 5
				return in
			}(),
			why: "5 voters (5 alive, 5 seated), target 5",
		},
		{
			name: "no zones at all: unchanged",
			in: input([]Member{m("h1", "", hour), m("h2", "", hour), m("h3", "", hour), m("h4", "", hour)},
				voters("h1", "h2", "h3")),
			why: "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "an agent without a zone is no destination",
			in:   crowded(m("h4", "", hour)),
			why:  "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "gossip not settled yet after a change of leader: no move",
			in: func() Input {
				in := crowded(m("h4", "c", hour))
				in.LeaderSince, in.Settle = t0.Add(-time.Second), 5*time.Second
				return in
			}(),
			why: "waiting for gossip to settle",
		},
		{
			name: "target 5 but four agents can vote: no move (the surplus voter could not leave)",
			in: func() Input {
				in := crowded(m("h4", "c", hour))
				in.Target = 5
				return in
			}(),
			why: "3 voters (3 alive, 3 seated), target 3",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := Plan(tc.in)
			if ok != tc.wantOK {
				t.Fatalf("Plan ok = %v, want %v: %v", ok, tc.wantOK, c)
			}
			if !ok {
				if !strings.Contains(c.Reason, tc.why) {
					t.Fatalf("reason %q does not contain %q", c.Reason, tc.why)
				}
				return
			}
			if c.Type != tc.want.Type || c.ID != tc.want.ID || c.Addr != tc.want.Addr || !strings.Contains(c.Reason, tc.want.Reason) {
				t.Fatalf("got %v\nwant %v", c, tc.want)
			}
		})
	}
}

// TestPlanSpreadsZonesLoop runs the whole move: stage h4, wait while it
// catches up (the staged non-voter is not removed meanwhile), promote it,
// remove h2; never fewer than three voters, and then nothing more.
func TestPlanSpreadsZonesLoop(t *testing.T) {
	hour := time.Hour
	in := input([]Member{m("h1", "a", hour), m("h2", "a", hour), m("h3", "b", hour), m("h4", "c", hour)}, voters("h1", "h2", "h3"))
	caught := false
	in, trail := settle(t, in, func(string) bool { return caught })
	if len(trail) != 1 || trail[0].Type != AddNonvoter || trail[0].ID != "h4" {
		t.Fatalf("while h4 catches up: %v, want only its staging", trail)
	}
	caught = true
	for i := range in.Servers {
		in.Servers[i].Unhealthy = ""
	}
	in, trail = settle(t, in, nil)
	want := []string{"AddVoter h4", "RemoveServer h2"}
	if len(trail) != len(want) {
		t.Fatalf("trail %v, want %v", trail, want)
	}
	for i, c := range trail {
		if got := c.Type.String() + " " + c.ID; got != want[i] {
			t.Fatalf("change %d is %v, want %s", i, c, want[i])
		}
	}
	if got := voterZones(in); got != "h1@a,h3@b,h4@c" {
		t.Fatalf("voters %s, want h1@a,h3@b,h4@c", got)
	}
	// h2, now outside the configuration, is a candidate in zone a, which
	// has a voter: nothing moves back.
	if c, ok := Plan(in); ok {
		t.Fatalf("after the move: %v", c)
	}
}

// TestPlanSpreadsZonesProperty: healthy clusters with the target's number
// of voters in random zones (some agents without a zone), under any
// leader: the loop reaches a fixpoint, the voters never drop below the
// target, the number of zones holding a voter never shrinks, and at the end
// no named zone without a voter holds an agent while a named zone holds two
// voters.
func TestPlanSpreadsZonesProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		target := rapid.SampledFrom([]int{1, 3, 5}).Draw(rt, "target")
		n := rapid.IntRange(target, 8).Draw(rt, "agents")
		in := Input{Now: t0, Target: target, DeadGrace: time.Minute, Stabilize: 10 * time.Second}
		zone := map[string]string{}
		for k := range n {
			id := fmt.Sprintf("h%d", k)
			zone[id] = rapid.SampledFrom([]string{"a", "b", "c", "d", ""}).Draw(rt, "zone "+id)
			in.Members = append(in.Members, m(id, zone[id], time.Hour))
		}
		var ids []string
		for k := range target {
			ids = append(ids, fmt.Sprintf("h%d", k))
		}
		in.Servers = voters(ids...)
		in.Leader = rapid.SampledFrom(ids).Draw(rt, "leader")
		spread := func(in Input) (named map[string]int) {
			named = map[string]int{}
			for _, s := range in.Servers {
				if s.Voter && zone[s.ID] != "" {
					named[zone[s.ID]]++
				}
			}
			return named
		}
		var trail []Change
		for {
			c, ok := Plan(in)
			if !ok {
				break
			}
			trail = append(trail, c)
			if len(trail) > 20 {
				rt.Fatalf("no fixpoint: %v", trail)
			}
			before := len(spread(in))
			if c.Type == RemoveServer && c.ID == in.Leader {
				rt.Fatalf("removed the leader: %v", c)
			}
			in = After(in, c)
			if v := voterCount(in); v < target {
				rt.Fatalf("%d voters < target %d after %v", v, target, trail)
			}
			if after := len(spread(in)); after < before {
				rt.Fatalf("zones with a voter went from %d to %d after %v", before, after, trail)
			}
		}
		if v := voterCount(in); v != target {
			rt.Fatalf("settled with %d voters, want %d: %v", v, target, trail)
		}
		named := spread(in)
		crowdedZone := false
		for _, k := range named {
			crowdedZone = crowdedZone || k >= 2
		}
		inConfig := map[string]bool{}
		for _, s := range in.Servers {
			inConfig[s.ID] = true
		}
		for id, z := range zone {
			if crowdedZone && z != "" && named[z] == 0 && !inConfig[id] {
				rt.Fatalf("settled with voters %s while %s in zone %s could take a vote; trail %v", voterZones(in), id, z, trail)
			}
		}
	})
}
