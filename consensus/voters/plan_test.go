package voters

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// m builds an alive, eligible member in zone, alive for the given duration.
func m(id, zone string, aliveFor time.Duration) Member {
	return Member{ID: id, RaftAddr: id + ":7001", Zone: zone, Alive: true, Since: t0.Add(-aliveFor), Eligible: true}
}

func dead(mem Member, deadFor time.Duration) Member {
	mem.Alive, mem.Since = false, t0.Add(-deadFor)
	return mem
}

func ineligible(mem Member) Member { mem.Eligible = false; return mem }

func voters(ids ...string) []Server {
	var ss []Server
	for _, id := range ids {
		ss = append(ss, Server{ID: id, Addr: id + ":7001", Voter: true})
	}
	return ss
}

func input(members []Member, servers []Server) Input {
	return Input{Now: t0, Leader: "h1", Members: members, Servers: servers,
		Target: 3, DeadGrace: 30 * time.Second, Stabilize: 10 * time.Second}
}

func TestPlan(t *testing.T) {
	hour := time.Hour
	// Five agents over three zones; h1 (the leader), h2, h3 are the voters.
	five := func() []Member {
		return []Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", hour), m("h4", "b", 20*time.Minute), m("h5", "a", 2*hour)}
	}
	with := func(ms []Member, i int, f func(Member) Member) []Member { ms[i] = f(ms[i]); return ms }

	for _, tc := range []struct {
		name   string
		in     Input
		want   Change // Reason is checked with Contains
		wantOK bool
		why    string // for no change: a piece of the explanation
	}{
		{
			name: "healthy three voters: nothing to do",
			in:   input(five(), voters("h1", "h2", "h3")),
			why:  "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "voter dead within grace keeps its seat",
			in: input(with(five(), 1, func(x Member) Member { return dead(x, 29*time.Second) }),
				voters("h1", "h2", "h3")),
			why: "3 voters (2 alive, 3 seated)",
		},
		{
			// h2 lost its seat; its successor comes first. h5 (zone a)
			// is alive longer, but zone b lost its voter, so h4 wins.
			name: "voter dead past grace: its successor is staged first",
			in: input(with(five(), 1, func(x Member) Member { return dead(x, 42*time.Second) }),
				voters("h1", "h2", "h3")),
			want:   Change{Type: AddNonvoter, ID: "h4", Addr: "h4:7001", Reason: "stage h4 as a non-voter: 2 seated voters < target 3; zone b has no voter"},
			wantOK: true,
		},
		{
			name: "staged successor still catching up: wait",
			in: input(with(five(), 1, func(x Member) Member { return dead(x, 43*time.Second) }),
				append(voters("h1", "h2", "h3"), Server{ID: "h4", Addr: "h4:7001", Unhealthy: "its log ends at 0", UnhealthySince: t0})),
			why: "staged non-voter h4 is not ready to vote yet: its log ends at 0",
		},
		{
			name: "staged successor caught up: promoted",
			in: input(with(five(), 1, func(x Member) Member { return dead(x, 44*time.Second) }),
				append(voters("h1", "h2", "h3"), Server{ID: "h4", Addr: "h4:7001"})),
			want:   Change{Type: AddVoter, ID: "h4", Addr: "h4:7001", Reason: "promote h4: its log has caught up; 2 seated voters < target 3"},
			wantOK: true,
		},
		{
			name: "successor voting: the dead voter leaves as surplus",
			in: input(with(five(), 1, func(x Member) Member { return dead(x, 45*time.Second) }),
				voters("h1", "h2", "h3", "h4")),
			want:   Change{Type: RemoveServer, ID: "h2", Addr: "h2:7001", Reason: "remove surplus voter h2: 4 voters > target 3; it is dead for 45s"},
			wantOK: true,
		},
		{
			// The rule of issue 9, defect 12: no successor at hand,
			// the two healthy voters form a quorum of three, so the
			// dead one keeps its entry (and its log, if it comes back).
			name: "voter dead past grace, no successor: configuration unchanged",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), dead(m("h3", "c", 0), hour)},
				voters("h1", "h2", "h3")),
			why: "3 voters (2 alive, 2 seated), target 1",
		},
		{
			name: "longest dead voter goes first",
			in: func() Input {
				ms := []Member{m("h1", "a", hour), dead(m("h2", "b", 0), time.Minute), dead(m("h3", "c", 0), 5*time.Minute),
					m("h4", "a", hour), m("h5", "b", hour), m("h6", "c", hour)}
				in := input(ms, voters("h1", "h2", "h3", "h4", "h5", "h6"))
				in.Target = 5
				return in
			}(),
			want:   Change{Type: RemoveServer, ID: "h3", Addr: "h3:7001", Reason: "remove surplus voter h3: 6 voters > target 3; it is dead for 5m0s"},
			wantOK: true,
		},
		{
			// 3 voters, 2 dead: removing either leaves 2 voters with 1
			// alive, below quorum 2. Promoting makes 4 voters with 2
			// alive, below quorum 3. Permanent loss of quorum.
			name: "three voters two dead: every change refused",
			in: input(with(with(five(), 1, func(x Member) Member { return dead(x, hour) }), 2, func(x Member) Member { return dead(x, hour) }),
				voters("h1", "h2", "h3")),
			why: "healthy voters below quorum 2",
		},
		{
			name: "five voters two dead, no successor: never shrink below the configured target",
			in: func() Input {
				ms := []Member{m("h1", "a", hour), dead(m("h2", "b", 0), time.Minute), dead(m("h3", "c", 0), time.Minute), m("h4", "a", hour), m("h5", "b", hour)}
				in := input(ms, voters("h1", "h2", "h3", "h4", "h5"))
				in.Target = 5
				return in
			}(),
			why: "5 voters (3 alive, 3 seated), target 3",
		},
		{
			name: "one-agent cluster",
			in:   input([]Member{m("h1", "a", hour)}, voters("h1")),
			why:  "1 voters (1 alive, 1 seated), target 1",
		},
		{
			name: "one-agent cluster, leader missing from gossip, still alive",
			in:   input(nil, voters("h1")),
			why:  "target 1",
		},
		{
			// One agent of three restarting: the two healthy voters keep
			// their seats (the store stays on two disks); the third is
			// promoted back when it is there.
			name: "two alive agents of a target of 3: both voters stay",
			in:   input([]Member{m("h1", "a", hour), m("h2", "b", hour)}, voters("h1", "h2")),
			why:  "2 voters (2 alive, 2 seated), target 1",
		},
		{
			name: "two voters above a configured target of 1: drop the second",
			in: func() Input {
				in := input([]Member{m("h1", "a", hour), m("h2", "b", hour)}, voters("h1", "h2"))
				in.Target = 1
				return in
			}(),
			want:   Change{Type: RemoveServer, ID: "h2", Addr: "h2:7001", Reason: "remove surplus voter h2: 2 voters > target 1"},
			wantOK: true,
		},
		{
			name: "two alive agents: the second is not promoted",
			in:   input([]Member{m("h1", "a", hour), m("h2", "b", hour)}, voters("h1")),
			why:  "target 1",
		},
		{
			name:   "five alive, target 3, one voter: promote",
			in:     input(five(), voters("h1")),
			want:   Change{Type: AddNonvoter, ID: "h2", Addr: "h2:7001", Reason: "stage h2 as a non-voter: 1 seated voters < target 3; zone b has no voter"},
			wantOK: true,
		},
		{
			name: "five alive, target 3, three voters: done",
			in:   input(five(), voters("h1", "h3", "h4")),
			why:  "target 3",
		},
		{
			name:   "departed voter: its successor is staged",
			in:     input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h4", "c", hour)}, voters("h1", "h2", "h3")),
			want:   Change{Type: AddNonvoter, ID: "h4", Addr: "h4:7001", Reason: "stage h4"},
			wantOK: true,
		},
		{
			name:   "departed voter leaves once its successor votes",
			in:     input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h4", "c", hour)}, voters("h1", "h2", "h3", "h4")),
			want:   Change{Type: RemoveServer, ID: "h3", Addr: "h3:7001", Reason: "remove surplus voter h3: 4 voters > target 3; it is no longer a gossip member"},
			wantOK: true,
		},
		{
			name: "departed non-voter goes before departed voter",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h4", "c", hour)},
				append(voters("h1", "h2", "h3"), Server{ID: "h9", Addr: "h9:7001"})),
			want:   Change{Type: RemoveServer, ID: "h9", Addr: "h9:7001", Reason: "non-voter h9 is no longer a gossip member"},
			wantOK: true,
		},
		{
			name: "departed voter kept when removing it breaks quorum",
			in:   input([]Member{m("h1", "a", hour), dead(m("h2", "b", 0), time.Second)}, voters("h1", "h2", "h3")),
			why:  "healthy voters below quorum 2",
		},
		{
			name: "dead non-voter past grace is removed",
			in: input([]Member{m("h1", "a", hour), dead(m("h2", "b", 0), time.Hour)},
				append(voters("h1"), Server{ID: "h2", Addr: "h2:7001"})),
			want:   Change{Type: RemoveServer, ID: "h2", Addr: "h2:7001", Reason: "non-voter h2 dead for 1h0m0s > grace 30s"},
			wantOK: true,
		},
		{
			name: "leader dead in gossip is never removed",
			in: input([]Member{dead(m("h1", "a", 0), time.Hour), m("h2", "b", hour), m("h3", "c", hour)},
				voters("h1", "h2", "h3")),
			why: "3 voters (3 alive, 3 seated)",
		},
		{
			name: "ineligible leader keeps its seat until it hands over",
			in: input([]Member{ineligible(m("h1", "a", hour)), m("h2", "b", hour), m("h3", "c", hour)},
				voters("h1", "h2", "h3")),
			why: "3 voters (3 alive, 3 seated), target 3",
		},
		{
			name:   "surplus never removes the leader",
			in:     func() Input { in := input(five(), voters("h1", "h2", "h3")); in.Target = 1; return in }(),
			want:   Change{Type: RemoveServer, ID: "h3", Addr: "h3:7001", Reason: "3 voters > target 1"},
			wantOK: true,
		},
		{
			name: "promotion prefers the zone without a voter, over alive longest",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "a", 5*hour), m("h4", "c", 20*time.Second)},
				voters("h1", "h2")),
			want:   Change{Type: AddNonvoter, ID: "h4", Reason: "zone c has no voter"},
			wantOK: true,
		},
		{
			name: "promotion then prefers alive longest",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", time.Hour), m("h4", "c", 2*time.Hour)},
				voters("h1", "h2")),
			want:   Change{Type: AddNonvoter, ID: "h4"},
			wantOK: true,
		},
		{
			name: "promotion then prefers the lowest ID",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h4", "c", time.Hour), m("h3", "c", time.Hour)},
				voters("h1", "h2")),
			want:   Change{Type: AddNonvoter, ID: "h3"},
			wantOK: true,
		},
		{
			name: "every zone has a voter: the fewest wins",
			in: func() Input {
				ms := []Member{m("h1", "a", hour), m("h2", "a", hour), m("h3", "b", hour), m("h4", "a", 3*hour), m("h5", "b", hour)}
				in := input(ms, voters("h1", "h2", "h3"))
				in.Target = 5
				return in
			}(),
			want:   Change{Type: AddNonvoter, ID: "h5", Reason: "zone b has 1 voters, the fewest"},
			wantOK: true,
		},
		{
			name: "member alive less than Stabilize is not promoted",
			in:   input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", 9*time.Second)}, voters("h1", "h2")),
			why:  "1 alive < stabilize 10s",
		},
		{
			name: "member alive exactly Stabilize is promoted",
			in:   input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", 10*time.Second)}, voters("h1", "h2")),
			want: Change{Type: AddNonvoter, ID: "h3"}, wantOK: true,
		},
		{
			name: "ineligible member is not promoted",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), ineligible(m("h3", "c", hour)), m("h4", "c", 0)},
				voters("h1", "h2")),
			why: "1 ineligible",
		},
		{
			name: "member without raft address is not promoted",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), {ID: "h3", Zone: "c", Alive: true, Since: t0.Add(-hour), Eligible: true}},
				voters("h1", "h2")),
			why: "1 without a raft address",
		},
		{
			name: "non-voter in the configuration is promoted with its gossip address",
			in: input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", hour)},
				append(voters("h1", "h2"), Server{ID: "h3", Addr: "old:1"})),
			want:   Change{Type: AddVoter, ID: "h3", Addr: "h3:7001"},
			wantOK: true,
		},
		{
			name: "draining voter is replaced first",
			in: input(with(five(), 2, ineligible),
				voters("h1", "h2", "h3")),
			want:   Change{Type: AddNonvoter, ID: "h5", Reason: "stage h5 as a non-voter: 2 seated voters < target 3; zone a has 1 voters"},
			wantOK: true,
		},
		{
			name: "then the draining voter is removed",
			in: input(with(five(), 2, ineligible),
				voters("h1", "h2", "h3", "h5")),
			want:   Change{Type: RemoveServer, ID: "h3", Reason: "remove surplus voter h3: 4 voters > target 3; it is not eligible to vote"},
			wantOK: true,
		},
		{
			name: "surplus: a dead voter within grace goes first",
			in: func() Input {
				ms := append(five(), dead(m("h6", "c", 0), 10*time.Second))
				return input(ms, voters("h1", "h2", "h3", "h4", "h6"))
			}(),
			want:   Change{Type: RemoveServer, ID: "h6", Reason: "remove surplus voter h6: 5 voters > target 3; it is dead for 10s"},
			wantOK: true,
		},
		{
			name: "surplus: from the zone with the most voters, alive the shortest",
			in: func() Input {
				ms := []Member{m("h1", "a", hour), m("h2", "b", 3*hour), m("h3", "b", hour), m("h4", "b", 2*hour), m("h5", "c", time.Minute)}
				return input(ms, voters("h1", "h2", "h3", "h4", "h5"))
			}(),
			want:   Change{Type: RemoveServer, ID: "h3", Reason: "zone b holds the most voters (3)"},
			wantOK: true,
		},
		{
			name: "invalid input: no change",
			in:   func() Input { in := input(five(), voters("h1")); in.Target = 2; return in }(),
			why:  "invalid input: Target must be odd",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Plan(tc.in)
			if ok != tc.wantOK {
				t.Fatalf("Plan ok = %v, want %v; got %v", ok, tc.wantOK, got)
			}
			if !ok {
				if got.Type != 0 || got.ID != "" {
					t.Errorf("no change but Change = %+v", got)
				}
				if !strings.Contains(got.Reason, tc.why) {
					t.Errorf("reason %q does not contain %q", got.Reason, tc.why)
				}
				return
			}
			if got.Type != tc.want.Type || got.ID != tc.want.ID {
				t.Fatalf("Plan = %v, want %v %s", got, tc.want.Type, tc.want.ID)
			}
			if tc.want.Addr != "" && got.Addr != tc.want.Addr {
				t.Errorf("Addr = %q, want %q", got.Addr, tc.want.Addr)
			}
			if !strings.Contains(got.Reason, tc.want.Reason) {
				t.Errorf("reason %q does not contain %q", got.Reason, tc.want.Reason)
			}
		})
	}
}

func TestEffectiveTarget(t *testing.T) {
	for _, tc := range []struct{ target, alive, want int }{
		{3, 0, 1}, {3, 1, 1}, {3, 2, 1}, {3, 3, 3}, {3, 4, 3}, {3, 9, 3},
		{5, 4, 3}, {5, 5, 5}, {5, 6, 5}, {7, 6, 5}, {1, 9, 1}, {1, 0, 1},
	} {
		if got := EffectiveTarget(tc.target, tc.alive); got != tc.want {
			t.Errorf("EffectiveTarget(%d, %d) = %d, want %d", tc.target, tc.alive, got, tc.want)
		}
	}
}

func TestQuorum(t *testing.T) {
	for n, want := range []int{1, 1, 2, 2, 3, 3, 4} {
		if got := Quorum(n); got != want {
			t.Errorf("Quorum(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := input([]Member{m("h1", "a", 0)}, voters("h1"))
	if err := good.Validate(); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
	for _, tc := range []struct {
		name   string
		break_ func(*Input)
		want   string
	}{
		{"even target", func(in *Input) { in.Target = 4 }, "Target must be odd and >= 1, got 4"},
		{"zero target", func(in *Input) { in.Target = 0 }, "Target must be odd and >= 1, got 0"},
		{"negative target", func(in *Input) { in.Target = -1 }, "Target"},
		{"no time", func(in *Input) { in.Now = time.Time{} }, "Now is not set"},
		{"no leader", func(in *Input) { in.Leader = "" }, "Leader is empty"},
		{"negative grace", func(in *Input) { in.DeadGrace = -time.Second }, "DeadGrace is negative"},
		{"negative stabilize", func(in *Input) { in.Stabilize = -time.Second }, "Stabilize is negative"},
		{"empty member ID", func(in *Input) { in.Members = append(in.Members, Member{}) }, "Members[1].ID is empty"},
		{"duplicate member", func(in *Input) { in.Members = append(in.Members, m("h1", "b", 0)) }, `Members[1].ID "h1" appears twice`},
		{"empty server ID", func(in *Input) { in.Servers = append(in.Servers, Server{}) }, "Servers[1].ID is empty"},
		{"duplicate server", func(in *Input) { in.Servers = append(in.Servers, Server{ID: "h1"}) }, `Servers[1].ID "h1" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good
			in.Members, in.Servers = append([]Member(nil), good.Members...), append([]Server(nil), good.Servers...)
			tc.break_(&in)
			err := in.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
			if c, ok := Plan(in); ok {
				t.Fatalf("Plan proposed %v for an invalid input", c)
			}
		})
	}
}

func TestChangeTypeString(t *testing.T) {
	for ct, want := range map[ChangeType]string{0: "None", AddVoter: "AddVoter", RemoveServer: "RemoveServer", 9: "ChangeType(9)"} {
		if got := ct.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(ct), got, want)
		}
	}
}
