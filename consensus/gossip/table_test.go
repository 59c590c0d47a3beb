package gossip

import (
	"bytes"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTableLifecycle(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tb := newTable(time.Hour)
	m := Member{Name: "b", Addr: "10.0.0.2", Port: 7946, Meta: Meta{Zone: "z1"}}

	ev := tb.alive(m, at(0))
	if ev.Type != EventJoin || ev.Member.State != Alive || !ev.Member.Since.Equal(at(0)) {
		t.Fatalf("first sight: %+v", ev)
	}
	m.Meta.Role = RoleVoter
	ev = tb.alive(m, at(5))
	if ev.Type != EventUpdate || !ev.Member.Since.Equal(at(0)) || ev.Member.Meta.Role != RoleVoter {
		t.Fatalf("update must keep Since and carry the new meta: %+v", ev)
	}
	ev = tb.gone(m, at(10))
	if ev.Type != EventLeave || ev.Member.State != Dead || !ev.Member.Since.Equal(at(10)) {
		t.Fatalf("death: %+v", ev)
	}
	ev = tb.alive(m, at(20))
	if ev.Type != EventJoin || ev.Member.State != Alive || !ev.Member.Since.Equal(at(20)) {
		t.Fatalf("comeback: %+v", ev)
	}
	leaving := m
	leaving.Meta.Leaving = true
	tb.alive(leaving, at(30))
	ev = tb.gone(leaving, at(31))
	if ev.Member.State != Left {
		t.Fatalf("a member whose last meta said leaving is Left, got %+v", ev)
	}

	// Retention: forgotten only after DeadRetention, alive members never.
	tb.alive(Member{Name: "a"}, at(0))
	if got := tb.list(at(31).Add(time.Hour)); len(got) != 2 {
		t.Fatalf("at exactly the retention both remain: %v", got)
	}
	got := tb.list(at(32).Add(time.Hour))
	if len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("after the retention only the alive member remains: %v", got)
	}
}

func TestTableListSortedCopy(t *testing.T) {
	tb := newTable(time.Hour)
	now := time.Now()
	for _, n := range []string{"c", "a", "b"} {
		tb.alive(Member{Name: n}, now)
	}
	l := tb.list(now)
	if l[0].Name != "a" || l[1].Name != "b" || l[2].Name != "c" {
		t.Fatalf("not sorted: %v", l)
	}
	l[0].Name = "mutated"
	if _, ok := tb.get("a"); !ok {
		t.Fatal("list must return a copy")
	}
}

func TestLogBridgeLevels(t *testing.T) {
	var buf bytes.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Printf("[DEBUG] memberlist: noisy detail")
	l.Printf("[INFO] memberlist: Marking b as failed")
	l.Printf("[WARN] memberlist: refuting")
	l.Printf("[ERR] memberlist: failed to receive: no installed keys could decrypt the message")
	out := buf.String()
	if strings.Contains(out, "noisy detail") {
		t.Error("debug line passed an Info logger")
	}
	for _, want := range []string{
		`level=INFO msg="Marking b as failed"`,
		`level=WARN msg=refuting`,
		`level=ERROR msg="failed to receive: no installed keys could decrypt the message (a node with a different --gossip-key?)"`,
		`component=memberlist`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in:\n%s", want, out)
		}
	}
}

// Member(name) answers what Members() holds for that name, and Each sees
// what Members() lists, retention included, without copying the table.
func TestMemberLookupAgreesWithList(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	g := &Gossip{table: newTable(time.Minute), now: func() time.Time { return now }}
	g.table.alive(Member{Name: "a", Meta: Meta{APIAddr: "10.0.0.1:7070"}}, now)
	g.table.alive(Member{Name: "b"}, now)
	g.table.gone(Member{Name: "b"}, now)
	check := func(when string) {
		t.Helper()
		listed := map[string]Member{}
		for _, m := range g.Members() {
			listed[m.Name] = m
		}
		each := map[string]Member{}
		g.Each(func(m Member) bool { each[m.Name] = m; return true })
		if len(each) != len(listed) {
			t.Fatalf("%s: Each saw %v, Members holds %v", when, each, listed)
		}
		for name, m := range each {
			if listed[name] != m {
				t.Fatalf("%s: Each saw %+v, Members holds %+v", when, m, listed[name])
			}
		}
		for _, name := range []string{"a", "b", "c"} {
			got, ok := g.Member(name)
			want, wok := listed[name]
			if ok != wok || got != want {
				t.Fatalf("%s: Member(%q) = %+v, %v; Members holds %+v, %v", when, name, got, ok, want, wok)
			}
		}
	}
	check("at once")
	if m, ok := g.Member("a"); !ok || m.Meta.APIAddr != "10.0.0.1:7070" || m.State != Alive {
		t.Fatalf("Member(a) = %+v, %v", m, ok)
	}
	if m, ok := g.Member("b"); !ok || m.State != Dead {
		t.Fatalf("a member dead within the retention is found as dead: %+v, %v", m, ok)
	}
	now = t0.Add(time.Minute + time.Second)
	if _, ok := g.Member("b"); ok {
		t.Fatal("a member dead for longer than the retention is still found")
	}
	check("after the retention")
}

// Random joins, updates, departures, moves and time passing: after each
// step the lookups without copies (Member, Each, EachVoter) and the
// indexes Reconnect reads (departed members, members by address) agree
// with Members(), and Version moved whenever what Members() lists changed.
func TestTableIndexesAgreeWithList(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &Gossip{table: newTable(10 * time.Second), now: func() time.Time { return now }}
	names := []string{"a", "b", "c", "d", "e", "f"}
	roles := []string{RoleNone, RoleNonvoter, RoleVoter}
	prevList, prevVersion := g.Members(), g.Version()
	for step := range 3000 {
		m := Member{Name: names[rng.IntN(len(names))], Meta: Meta{Role: roles[rng.IntN(len(roles))], Leaving: rng.IntN(4) == 0,
			ClusterID: []string{"", "c1.1", "c1.2"}[rng.IntN(3)]},
			Addr: []string{"10.0.0.1", "10.0.0.2"}[rng.IntN(2)], Port: uint16(7946 + rng.IntN(2))}
		if rng.IntN(8) == 0 {
			m.MetaErr = "unreadable"
		}
		switch rng.IntN(3) {
		case 0:
			g.table.alive(m, now)
		case 1:
			g.table.gone(m, now)
		default:
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
		}
		version := g.Version()
		list := g.Members()
		if !slices.Equal(list, prevList) && version == prevVersion {
			t.Fatalf("step %d: the table changed (%v -> %v) but Version stayed %d", step, prevList, list, version)
		}
		prevList, prevVersion = list, version
		listed := map[string]Member{}
		voters := map[string]Member{}
		clusters := map[string]int{}
		for _, m := range list {
			listed[m.Name] = m
			if m.Meta.Role == RoleVoter {
				voters[m.Name] = m
			}
			if m.State == Alive && m.MetaErr == "" && m.Meta.ClusterID != "" {
				clusters[m.Meta.ClusterID]++
			}
		}
		eachCluster := map[string]int{}
		g.EachClusterID(func(id string, n int) bool { eachCluster[id] = n; return true })
		if !maps.Equal(eachCluster, clusters) {
			t.Fatalf("step %d: EachClusterID %v, Members counts %v (%v)", step, eachCluster, clusters, list)
		}
		each, eachVoter := map[string]Member{}, map[string]Member{}
		g.Each(func(m Member) bool { each[m.Name] = m; return true })
		g.EachVoter(func(m Member) bool { eachVoter[m.Name] = m; return true })
		if !maps.Equal(each, listed) || !maps.Equal(eachVoter, voters) {
			t.Fatalf("step %d: Each %v / EachVoter %v, Members lists %v", step, each, eachVoter, list)
		}
		for _, n := range names {
			got, ok := g.Member(n)
			want, wok := listed[n]
			if ok != wok || got != want {
				t.Fatalf("step %d: Member(%q) = %+v, %v; Members holds %+v, %v", step, n, got, ok, want, wok)
			}
		}
		departed, addrs := map[string]struct{}{}, map[string]int{}
		for _, m := range list {
			if m.State != Alive {
				departed[m.Name] = struct{}{}
			}
			addrs[m.Address()]++
		}
		if !maps.Equal(g.table.departed, departed) || !maps.Equal(g.table.addrs, addrs) {
			t.Fatalf("step %d: departed %v and addresses %v indexed, Members lists %v", step, g.table.departed, g.table.addrs, list)
		}
	}
}
