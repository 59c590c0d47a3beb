package voters

import (
	"strings"
	"testing"
	"time"
)

// ghost is a voter whose agent is alive in gossip but runs no Raft (its
// disk was wiped), judged so for the given time.
func ghost(s Server, forTime time.Duration) Server {
	s.Unhealthy, s.NoReplica, s.UnhealthySince = "its agent runs no raft", true, t0.Add(-forTime)
	return s
}

func lagging(s Server, forTime time.Duration) Server {
	s.Unhealthy, s.UnhealthySince = "its log ends at 3, 900 entries behind", t0.Add(-forTime)
	return s
}

// Issue 9, defect 2: a voter alive in gossip but not healthy in Raft is a
// ghost; it counts toward no quorum and is replaced. Issue 9, defect 3: no
// change but staging until gossip has settled after leadership and the
// stabilisation period has passed.
func TestPlanHealth(t *testing.T) {
	hour := time.Hour
	three := func() []Member { return []Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", hour)} }
	four := func() []Member { return append(three(), m("h4", "c", hour)) }
	withServer := func(ss []Server, i int, f func(Server) Server) []Server { ss[i] = f(ss[i]); return ss }
	g := func(s Server) Server { return ghost(s, time.Minute) }

	for _, tc := range []struct {
		name   string
		in     Input
		want   Change
		wantOK bool
		why    string
	}{
		{
			name: "ghost within grace keeps its seat but counts as unhealthy",
			in:   input(four(), withServer(voters("h1", "h2", "h3"), 2, func(s Server) Server { return ghost(s, 10*time.Second) })),
			why:  "3 voters (3 alive, 3 seated), target 3; 1 alive but unhealthy in raft",
		},
		{
			name:   "ghost past grace with an agent to spare: its successor is staged",
			in:     input(four(), withServer(voters("h1", "h2", "h3"), 2, g)),
			want:   Change{Type: AddNonvoter, ID: "h4", Reason: "stage h4 as a non-voter: 2 seated voters < target 3"},
			wantOK: true,
		},
		{
			name:   "successor voting: the ghost leaves as surplus",
			in:     input(four(), withServer(voters("h1", "h2", "h3", "h4"), 2, g)),
			want:   Change{Type: RemoveServer, ID: "h3", Reason: "remove surplus voter h3: 4 voters > target 3; it is unhealthy in raft for 1m0s"},
			wantOK: true,
		},
		{
			// Three agents, no successor: the ghost is removed (two of
			// two healthy is no weaker than two of three) and staged
			// again with a fresh log.
			name:   "ghost past grace, no other agent: removed to be staged again",
			in:     input(three(), withServer(voters("h1", "h2", "h3"), 2, g)),
			want:   Change{Type: RemoveServer, ID: "h3", Reason: "remove voter h3: alive but it holds no raft replica"},
			wantOK: true,
		},
		{
			name:   "then the wiped agent is staged with a fresh log",
			in:     input(three(), voters("h1", "h2")),
			want:   Change{Type: AddNonvoter, ID: "h3"},
			wantOK: true,
		},
		{
			// Cut off or lagging but running Raft: it may recover with
			// its log; without a successor it keeps its entry.
			name: "lagging voter past grace, no other agent: kept",
			in:   input(three(), withServer(voters("h1", "h2", "h3"), 2, func(s Server) Server { return lagging(s, hour) })),
			why:  "1 alive but unhealthy in raft",
		},
		{
			// Before the fix a removal here looked safe: h1 and h3
			// alive of two. But h3 has no replica: h1 alone of two.
			name: "a removal that would leave a ghost as the quorum is refused",
			in: func() Input {
				in := input([]Member{m("h1", "a", hour), dead(m("h2", "b", 0), 5*time.Second), m("h3", "c", hour)},
					withServer(voters("h1", "h2", "h3"), 2, func(s Server) Server { return ghost(s, 5*time.Second) }))
				in.Target = 1
				return in
			}(),
			why: "healthy voters below quorum 2",
		},
		{
			name: "a healthy staged non-voter is not promoted over a refused quorum",
			in: input(four(), append(withServer(withServer(voters("h1", "h2", "h3"), 2, g), 1, g),
				Server{ID: "h4", Addr: "h4:7001"})),
			why: "healthy voters below quorum 2",
		},
		{
			name: "settling: a departed voter is not touched while gossip has not settled",
			in: func() Input {
				in := input([]Member{m("h1", "a", hour), m("h2", "b", hour)}, voters("h1", "h2", "h3"))
				in.LeaderSince, in.Settle = t0.Add(-time.Second), 10*time.Second
				in.Members = append(in.Members, m("h4", "c", hour))
				in.Servers = append(in.Servers, Server{ID: "h4", Addr: "h4:7001"})
				return in
			}(),
			why: "waiting for gossip to settle (leader for 1s)",
		},
		{
			name: "settling: staging goes ahead",
			in: func() Input {
				in := input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h4", "c", hour)}, voters("h1", "h2", "h3"))
				in.LeaderSince, in.Settle = t0.Add(-time.Second), 10*time.Second
				return in
			}(),
			want:   Change{Type: AddNonvoter, ID: "h4"},
			wantOK: true,
		},
		{
			name: "settled a moment ago: stabilising, no promotion yet",
			in: func() Input {
				in := input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h4", "c", hour)},
					append(voters("h1", "h2", "h3"), Server{ID: "h4", Addr: "h4:7001"}))
				in.LeaderSince, in.SettledAt, in.Settle = t0.Add(-5*time.Second), t0.Add(-4*time.Second), 10*time.Second
				return in
			}(),
			why: "gossip settled 4s ago, stabilising for 10s",
		},
		{
			name: "settled and stable: the staged server is promoted",
			in: func() Input {
				in := input([]Member{m("h1", "a", hour), m("h2", "b", hour), m("h4", "c", hour)},
					append(voters("h1", "h2", "h3"), Server{ID: "h4", Addr: "h4:7001"}))
				in.LeaderSince, in.SettledAt, in.Settle = t0.Add(-15*time.Second), t0.Add(-10*time.Second), 10*time.Second
				return in
			}(),
			want:   Change{Type: AddVoter, ID: "h4"},
			wantOK: true,
		},
		{
			name: "a non-voter left over once every seat is taken is removed",
			in:   input(four(), append(voters("h1", "h2", "h3"), Server{ID: "h4", Addr: "h4:7001"})),
			want: Change{Type: RemoveServer, ID: "h4", Reason: "every seat is taken"}, wantOK: true,
		},
		{
			name: "a non-voter running no raft past grace is removed",
			in: input(append(three(), m("h4", "c", hour), m("h5", "a", hour)),
				append(voters("h1", "h2"), ghost(Server{ID: "h4", Addr: "h4:7001"}, hour))),
			want: Change{Type: RemoveServer, ID: "h4", Reason: "non-voter h4 runs no raft"}, wantOK: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Plan(tc.in)
			if ok != tc.wantOK {
				t.Fatalf("Plan ok = %v, want %v; got %v", ok, tc.wantOK, got)
			}
			if !ok {
				if !strings.Contains(got.Reason, tc.why) {
					t.Errorf("reason %q does not contain %q", got.Reason, tc.why)
				}
				return
			}
			if got.Type != tc.want.Type || got.ID != tc.want.ID || !strings.Contains(got.Reason, tc.want.Reason) {
				t.Fatalf("Plan = %v, want %v %s (%q)", got, tc.want.Type, tc.want.ID, tc.want.Reason)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	lim := Limits{LastContact: time.Second, MaxTrailingLogs: 100}
	ok := Replica{Reached: true, RunsRaft: true, Term: 4, LastIndex: 950, LastContact: 50 * time.Millisecond}
	for _, tc := range []struct {
		name      string
		r         func(Replica) Replica
		why       string
		noReplica bool
	}{
		{"healthy", func(r Replica) Replica { return r }, "", false},
		{"unreachable", func(r Replica) Replica { r.Reached, r.Err = false, "connection refused"; return r }, "does not answer: connection refused", false},
		{"no raft", func(r Replica) Replica { r.RunsRaft = false; return r }, "runs no raft", true},
		{"old term", func(r Replica) Replica { r.Term = 3; return r }, "term 3, the leader at 4", false},
		{"never heard", func(r Replica) Replica { r.LastContact = -1; return r }, "never heard", false},
		{"cut off", func(r Replica) Replica { r.LastContact = 3 * time.Second; return r }, "3s ago > 1s", false},
		{"trails", func(r Replica) Replica { r.LastIndex = 10; return r }, "990 entries behind", false},
		{"trails exactly the limit", func(r Replica) Replica { r.LastIndex = 900; return r }, "", false},
	} {
		why, no := Judge(tc.r(ok), 4, 1000, lim)
		if (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) || no != tc.noReplica {
			t.Errorf("%s: Judge = %q, %v; want %q, %v", tc.name, why, no, tc.why, tc.noReplica)
		}
	}
}

// Issue 9, defect 4: a change asked for by hand passes the same quorum
// rule as the voter manager's.
func TestCheck(t *testing.T) {
	hour := time.Hour
	ms := []Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", hour), m("h4", "c", hour)}
	for _, tc := range []struct {
		name string
		in   Input
		c    Change
		why  string
	}{
		{"remove a healthy voter of three", input(ms, voters("h1", "h2", "h3")), Change{Type: RemoveServer, ID: "h3"}, ""},
		{"remove the last healthy peer while another is dead",
			input([]Member{m("h1", "a", hour), dead(m("h2", "b", 0), time.Second), m("h3", "c", hour)}, voters("h1", "h2", "h3")),
			Change{Type: RemoveServer, ID: "h3"}, "it would leave 1 healthy of 2 voters, below quorum 2"},
		{"remove beside a ghost",
			input(ms, append(voters("h1", "h2"), ghost(Server{ID: "h3", Addr: "h3:7001", Voter: true}, time.Second))),
			Change{Type: RemoveServer, ID: "h2"}, "below quorum 2"},
		{"remove the leader by hand", input(ms, voters("h1", "h2", "h3")), Change{Type: RemoveServer, ID: "h1"}, "h1 is the leader: stop its agent instead"},
		{"remove a server not in the configuration", input(ms, voters("h1", "h2", "h3")), Change{Type: RemoveServer, ID: "h9"}, "not in the raft configuration"},
		{"add an alive agent", input(ms, voters("h1", "h2", "h3")), Change{Type: AddNonvoter, ID: "h4", Addr: "h4:7001"}, ""},
		{"add a voter twice", input(ms, voters("h1", "h2", "h3")), Change{Type: AddVoter, ID: "h3", Addr: "h3:7001"}, "already a voter"},
		{"add a dead agent beside a dead voter",
			input([]Member{m("h1", "a", hour), m("h2", "b", hour), dead(m("h3", "c", 0), hour), dead(m("h4", "c", 0), hour)}, voters("h1", "h2", "h3")),
			Change{Type: AddVoter, ID: "h4", Addr: "h4:7001"}, "it would leave 2 healthy of 4 voters, below quorum 3"},
	} {
		got := Check(tc.in, tc.c)
		if (tc.why == "") != (got == "") || !strings.Contains(got, tc.why) {
			t.Errorf("%s: Check = %q, want %q", tc.name, got, tc.why)
		}
	}
}

// Growing from one voter to three stages both newcomers first and promotes
// them one right after the other, so that the fragile two-voter
// configuration lasts a moment, not a catch-up.
func TestPlanStagesAllSeatsFirst(t *testing.T) {
	hour := time.Hour
	ms := []Member{m("h1", "a", hour), m("h2", "b", hour), m("h3", "c", hour)}
	in := input(ms, voters("h1"))
	step := func(want ChangeType, id string) {
		t.Helper()
		c, ok := Plan(in)
		if !ok || c.Type != want || c.ID != id {
			t.Fatalf("Plan = %v (%v), want %v %s", c, ok, want, id)
		}
		in = After(in, c)
	}
	step(AddNonvoter, "h2")
	// h2 is staged and caught up, but a seat remains: stage h3 first.
	step(AddNonvoter, "h3")
	// h3 still catching up: h2 waits for it.
	for i := range in.Servers {
		if in.Servers[i].ID == "h3" {
			in.Servers[i] = lagging(in.Servers[i], time.Second)
		}
	}
	if c, ok := Plan(in); ok {
		t.Fatalf("promoted %v while h3 catches up", c)
	}
	for i := range in.Servers {
		if in.Servers[i].ID == "h3" {
			in.Servers[i].Unhealthy = ""
		}
	}
	step(AddVoter, "h2")
	step(AddVoter, "h3")
	if c, ok := Plan(in); ok {
		t.Fatalf("after growing: %v", c)
	}
}
