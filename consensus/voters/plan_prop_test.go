package voters

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// genInput draws a cluster as the leader sees it: up to nine agents, some in
// gossip, some in the Raft configuration as voters or non-voters, alive or
// dead for various times, in three zones or none. The leader is always a
// voter, but may be missing from gossip or seen there as dead.
func genInput(t *rapid.T) Input {
	in := Input{
		Now:       t0,
		Target:    rapid.SampledFrom([]int{1, 3, 5, 7}).Draw(t, "target"),
		DeadGrace: time.Duration(rapid.IntRange(0, 60).Draw(t, "grace")) * time.Second,
		Stabilize: time.Duration(rapid.IntRange(0, 60).Draw(t, "stabilize")) * time.Second,
	}
	n := rapid.IntRange(1, 9).Draw(t, "agents")
	for k := range n {
		id := fmt.Sprintf("h%d", k)
		if rapid.IntRange(0, 9).Draw(t, "member "+id) > 0 {
			mem := Member{
				ID:       id,
				RaftAddr: id + ":7001",
				Zone:     rapid.SampledFrom([]string{"a", "b", "c", ""}).Draw(t, "zone "+id),
				Alive:    rapid.IntRange(0, 2).Draw(t, "alive "+id) > 0,
				Since:    t0.Add(-time.Duration(rapid.IntRange(-5, 120).Draw(t, "since "+id)) * time.Second),
				Eligible: rapid.IntRange(0, 3).Draw(t, "eligible "+id) > 0,
			}
			if rapid.IntRange(0, 9).Draw(t, "noaddr "+id) == 0 {
				mem.RaftAddr = ""
			}
			in.Members = append(in.Members, mem)
		}
		var s Server
		switch rapid.IntRange(0, 2).Draw(t, "server "+id) {
		case 0:
			continue
		case 1:
			s = Server{ID: id, Addr: id + ":7001", Voter: true}
		case 2:
			s = Server{ID: id, Addr: id + ":7001"}
		}
		// Raft health, as the caller judged it: mostly healthy, else
		// lagging or cut off, or with no replica at all.
		switch rapid.IntRange(0, 5).Draw(t, "health "+id) {
		case 4:
			s.Unhealthy = "lagging"
		case 5:
			s.Unhealthy, s.NoReplica = "runs no raft", true
		}
		if s.Unhealthy != "" {
			s.UnhealthySince = t0.Add(-time.Duration(rapid.IntRange(0, 120).Draw(t, "unhealthy since "+id)) * time.Second)
		}
		in.Servers = append(in.Servers, s)
	}
	var vs []string
	for _, s := range in.Servers {
		if s.Voter {
			vs = append(vs, s.ID)
		}
	}
	if len(vs) == 0 {
		in.Servers = append(in.Servers, Server{ID: "h9", Addr: "h9:7001", Voter: true})
		vs = append(vs, "h9")
	}
	in.Leader = rapid.SampledFrom(vs).Draw(t, "leader")
	// Leadership: untracked, fresh with gossip not settled yet, or
	// settled some time ago.
	switch rapid.IntRange(0, 2).Draw(t, "leadership") {
	case 1:
		in.LeaderSince = t0.Add(-time.Duration(rapid.IntRange(0, 60).Draw(t, "leader since")) * time.Second)
		in.Settle = time.Duration(rapid.IntRange(0, 20).Draw(t, "settle")) * time.Second
	case 2:
		in.LeaderSince = t0.Add(-time.Minute)
		in.SettledAt = t0.Add(-time.Duration(rapid.IntRange(0, 30).Draw(t, "settled since")) * time.Second)
		in.Settle = time.Duration(rapid.IntRange(0, 20).Draw(t, "settle")) * time.Second
	}
	return in
}

// checkChange states the rules every proposal obeys, computed here from the
// input alone rather than through Plan's own helpers.
func checkChange(t *rapid.T, in Input, c Change, ok bool) {
	if !ok {
		if c.Type != 0 || c.Reason == "" {
			t.Fatalf("no change must come with a reason and no type: %+v", c)
		}
		return
	}
	if c.Reason == "" {
		t.Fatalf("change without a reason: %+v", c)
	}
	settling := !in.LeaderSince.IsZero() && (in.SettledAt.IsZero() || in.Now.Sub(in.SettledAt) < in.Settle)
	if settling && c.Type != AddNonvoter {
		t.Fatalf("%v while gossip settles (leader since %v, settled at %v, settle %v)", c, in.LeaderSince, in.SettledAt, in.Settle)
	}
	members := map[string]Member{}
	for _, m := range in.Members {
		members[m.ID] = m
	}
	newVoters, servers := map[string]bool{}, map[string]Server{}
	for _, s := range in.Servers {
		servers[s.ID] = s
		if s.Voter {
			newVoters[s.ID] = true
		}
	}
	switch c.Type {
	case RemoveServer:
		if c.ID == in.Leader {
			t.Fatalf("removes the leader: %v", c)
		}
		i := slices.IndexFunc(in.Servers, func(s Server) bool { return s.ID == c.ID })
		if i < 0 || in.Servers[i].Addr != c.Addr {
			t.Fatalf("removes %s at %s, not in the configuration %v", c.ID, c.Addr, in.Servers)
		}
		delete(newVoters, c.ID)
	case AddNonvoter:
		m, known := members[c.ID]
		_, inConfig := servers[c.ID]
		switch {
		case !known:
			t.Fatalf("stages %s, not a member", c.ID)
		case !m.Alive:
			t.Fatalf("stages dead %s", c.ID)
		case !m.Eligible:
			t.Fatalf("stages ineligible %s", c.ID)
		case in.Now.Sub(m.Since) < in.Stabilize:
			t.Fatalf("stages %s alive for %s < %s", c.ID, in.Now.Sub(m.Since), in.Stabilize)
		case inConfig:
			t.Fatalf("stages %s, already in the configuration", c.ID)
		case c.Addr == "" || c.Addr != m.RaftAddr:
			t.Fatalf("stages %s at %q, gossip says %q", c.ID, c.Addr, m.RaftAddr)
		}
	case AddVoter:
		// Only a staged non-voter whose log has caught up gets a vote.
		m := members[c.ID]
		s, inConfig := servers[c.ID]
		switch {
		case !inConfig || s.Voter:
			t.Fatalf("promotes %s, not a staged non-voter (%+v)", c.ID, s)
		case s.Unhealthy != "":
			t.Fatalf("promotes %s, not caught up: %s", c.ID, s.Unhealthy)
		case !m.Alive || !m.Eligible:
			t.Fatalf("promotes %s, dead or ineligible: %+v", c.ID, m)
		case c.Addr == "" || c.Addr != m.RaftAddr:
			t.Fatalf("promotes %s at %q, gossip says %q", c.ID, c.Addr, m.RaftAddr)
		}
		newVoters[c.ID] = true
	default:
		t.Fatalf("unknown change type: %+v", c)
	}
	up := 0
	for id := range newVoters {
		if id == in.Leader || (members[id].Alive && servers[id].Unhealthy == "") {
			up++
		}
	}
	if n := len(newVoters); up < n/2+1 {
		t.Fatalf("%v leaves %d alive of %d voters, below quorum %d", c, up, n, n/2+1)
	}
}

func shuffled(t *rapid.T, in Input) Input {
	out := in
	out.Members = rapid.Permutation(in.Members).Draw(t, "members order")
	out.Servers = rapid.Permutation(in.Servers).Draw(t, "servers order")
	return out
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		c, ok := Plan(in)
		checkChange(t, in, c, ok)
		if c2, ok2 := Plan(in); c2 != c || ok2 != ok {
			t.Fatalf("not deterministic: %v then %v", c, c2)
		}
		if c2, ok2 := Plan(shuffled(t, in)); c2 != c || ok2 != ok {
			t.Fatalf("input order changed the plan: %v then %v", c, c2)
		}
	})
}

// apply does to the configuration what the caller's loop would do; a
// staged server catches up at once.
func apply(in Input, c Change) Input { return After(in, c) }

// TestPlanConverges applies plans one after another with the clock stopped:
// every step obeys the rules, the loop settles (no two steps undo each other
// forever), and if the settled cluster still has an alive quorum then no
// stale server remains and the voters do not exceed the target.
func TestPlanConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := shuffled(t, genInput(t))
		var trail []Change
		for {
			c, ok := Plan(in)
			checkChange(t, in, c, ok)
			if !ok {
				break
			}
			trail = append(trail, c)
			if len(trail) > 30 {
				t.Fatalf("no fixpoint after 30 changes: %v", trail)
			}
			in = apply(in, c)
		}

		members := map[string]Member{}
		for _, m := range in.Members {
			members[m.ID] = m
		}
		n, up := 0, 0
		inConfig := map[string]bool{}
		for _, s := range in.Servers {
			inConfig[s.ID] = true
			if s.Voter {
				n++
				if s.ID == in.Leader || (members[s.ID].Alive && s.Unhealthy == "") {
					up++
				}
			}
		}
		if up < n/2+1 {
			return // stuck by design: only manual recovery helps
		}
		if !in.LeaderSince.IsZero() && (in.SettledAt.IsZero() || in.Now.Sub(in.SettledAt) < in.Settle) {
			return // the clock is stopped before the wait ends
		}
		if n > in.Target {
			t.Fatalf("settled with %d voters > target %d after %v", n, in.Target, trail)
		}
		// A stale voter stays only while the configuration is not above
		// the target: it is never dropped just for being absent, only
		// once its successor made the count exceed the target.
		// A staged non-voter still catching up (the clock is stopped
		// here) holds the rest until it votes.
		catchingUp := slices.ContainsFunc(in.Servers, func(s Server) bool { return !s.Voter && !s.NoReplica && s.Unhealthy != "" })
		for _, s := range in.Servers {
			m, known := members[s.ID]
			if s.ID == in.Leader {
				continue
			}
			// Unhealthy past grace is stale for a voter (it lost its
			// seat); a non-voter that lags is still catching up.
			stale := !known || (!m.Alive && in.Now.Sub(m.Since) > in.DeadGrace) ||
				(m.Alive && s.Unhealthy != "" && in.Now.Sub(s.UnhealthySince) > in.DeadGrace && (s.Voter || s.NoReplica))
			if stale && (!s.Voter || n > in.Target) {
				t.Fatalf("settled with stale server %+v (member %+v) after %v", s, m, trail)
			}
			if s.Voter && s.NoReplica && m.Alive && in.Now.Sub(s.UnhealthySince) > in.DeadGrace && !catchingUp {
				t.Fatalf("settled with voter %s holding no replica after %v", s.ID, trail)
			}
		}
	})
}

// TestPlanGrowsAcrossZones starts from a freshly bootstrapped cluster (the
// leader alone) among healthy agents: the loop ends with exactly the
// effective target of voters, spread over as many zones as possible.
func TestPlanGrowsAcrossZones(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 9).Draw(t, "agents")
		in := Input{Now: t0, Leader: "h0", Target: rapid.SampledFrom([]int{1, 3, 5, 7}).Draw(t, "target"),
			DeadGrace: time.Minute, Stabilize: 10 * time.Second}
		zones := map[string]string{}
		for k := range n {
			id := fmt.Sprintf("h%d", k)
			zones[id] = rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "zone "+id)
			in.Members = append(in.Members, m(id, zones[id], time.Duration(rapid.IntRange(10, 100).Draw(t, "age "+id))*time.Second))
		}
		in.Servers = voters("h0")
		for range 40 {
			c, ok := Plan(in)
			checkChange(t, in, c, ok)
			if !ok {
				break
			}
			if c.Type != AddVoter && c.Type != AddNonvoter {
				t.Fatalf("healthy growth removed a server: %v", c)
			}
			in = apply(in, c)
		}
		want := EffectiveTarget(in.Target, n)
		if len(in.Servers) != want {
			t.Fatalf("%d voters, want %d: %v", len(in.Servers), want, in.Servers)
		}
		all, got := map[string]bool{}, map[string]bool{}
		for _, z := range zones {
			all[z] = true
		}
		for _, s := range in.Servers {
			got[zones[s.ID]] = true
		}
		if len(got) != min(want, len(all)) {
			t.Fatalf("voters %v cover zones %v of %v", in.Servers, got, all)
		}
	})
}
