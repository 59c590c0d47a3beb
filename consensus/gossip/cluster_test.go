package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Cluster tests run real memberlist instances over loopback UDP and TCP
// (memberlist's MockNetwork blocks forever when sending to a member that has
// stopped, so it cannot show a death, and it cannot rebind an address).

const waitLong = 15 * time.Second

// startCluster starts n nodes named n0..n(n-1); all join n0.
func startCluster(t *testing.T, n int, edit func(*Config)) []*testNode {
	t.Helper()
	return startClusterWithin(t, n, edit, waitLong)
}

// startClusterWithin waits up to converge for every node to see every other.
func startClusterWithin(t *testing.T, n int, edit func(*Config), converge time.Duration) []*testNode {
	t.Helper()
	nodes := []*testNode{startNode(t, "n0", edit)}
	for i := 1; i < n; i++ {
		nd := startNode(t, fmt.Sprintf("n%d", i), edit)
		nd.join(t, nodes[0])
		nodes = append(nodes, nd)
	}
	eventually(t, converge, converged(nodes))
	return nodes
}

func TestFirstNodeJoinsNobody(t *testing.T) {
	a := startNode(t, "a", nil)
	if err := a.Join(context.Background()); err != nil {
		t.Fatalf("Join with no addresses: %v", err)
	}
	ms := a.Members()
	if len(ms) != 1 || ms[0].Name != "a" || ms[0].State != Alive || ms[0].Meta.Zone != "z-a" {
		t.Fatalf("a alone should see itself alive with its meta: %v", ms)
	}
	ev := <-a.Events()
	if ev.Type != EventJoin || ev.Member.Name != "a" {
		t.Fatalf("first event should be a's own join: %+v", ev)
	}
}

func TestConvergeAndMetaUpdate(t *testing.T) {
	key := bytes.Repeat([]byte{42}, 32) // encrypted, as in production
	nodes := startCluster(t, 5, func(c *Config) { c.GossipKey = key })

	for _, o := range nodes {
		for _, m := range o.Members() {
			if m.Meta.Zone != "z-"+m.Name || m.Meta.APIAddr != "127.0.0.1:8080" || m.MetaErr != "" {
				t.Fatalf("%s sees wrong meta for %s: %+v", o.cfg.NodeName, m.Name, m)
			}
		}
	}

	target := nodes[3]
	if err := target.UpdateMeta(func(m *Meta) {
		m.Role = RoleVoter
		m.ClusterID = "c1"
	}); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	if l := target.Local(); l.Meta.Role != RoleVoter || l.Meta.ClusterID != "c1" {
		t.Fatalf("Local after UpdateMeta: %+v", l)
	}
	// The check UpdateMeta retries on (an update overtaken by a
	// refutation) holds after a plain update: memberlist's own state of
	// the node carries the new metadata.
	if !target.localMetaIs(target.Local().Meta) {
		t.Fatal("the table's entry of the local node does not carry the metadata just set")
	}
	eventually(t, waitLong, func() string {
		for _, o := range nodes {
			m, _ := o.member("n3")
			if m.Meta.Role != RoleVoter || m.Meta.ClusterID != "c1" || m.Meta.Zone != "z-n3" {
				return fmt.Sprintf("%s sees n3 meta %+v", o.cfg.NodeName, m.Meta)
			}
		}
		return ""
	})
	// n0 reported it as an update event.
	eventually(t, waitLong, func() string {
		for {
			select {
			case ev := <-nodes[0].Events():
				if ev.Type == EventUpdate && ev.Member.Name == "n3" && ev.Member.Meta.Role == RoleVoter {
					return ""
				}
			default:
				return "no update event for n3 on n0 yet"
			}
		}
	})

	// An invalid update is refused, names the field and changes nothing.
	err := target.UpdateMeta(func(m *Meta) { m.Role = "king"; m.Zone = "elsewhere" })
	if err == nil || !strings.Contains(err.Error(), "Role") {
		t.Fatalf("invalid role: got %v", err)
	}
	if l := target.Local(); l.Meta.Role != RoleVoter || l.Meta.Zone != "z-n3" {
		t.Fatalf("a refused update changed the meta: %+v", l.Meta)
	}
}

func TestDeadThenRestartWithSameAddress(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	cPort := int(c.Local().Port)

	stopped := time.Now()
	if err := c.Shutdown(); err != nil { // no Leave: a crash, as far as the others know
		t.Fatal(err)
	}
	eventually(t, waitLong, seesState([]*testNode{a, b}, "n2", Dead))
	detected := time.Now()
	var deadSince time.Time
	for _, o := range []*testNode{a, b} {
		m, _ := o.member("n2")
		if m.Since.Before(stopped) || m.Since.After(detected) {
			t.Fatalf("%s: Since %v not between the stop %v and the detection %v", o.cfg.NodeName, m.Since, stopped, detected)
		}
		deadSince = m.Since
	}
	t.Logf("n2 declared dead %v after it stopped (TestConfig)", detected.Sub(stopped))

	// Same name, same address and port: it comes back alive.
	c2 := startNode(t, "n2", func(cfg *Config) { cfg.BindPort = cPort })
	c2.join(t, a)
	eventually(t, waitLong, seesState([]*testNode{a, b, c2}, "n2", Alive))
	m, _ := a.member("n2")
	if !m.Since.After(deadSince) {
		t.Fatalf("back alive but Since %v is not after the death at %v", m.Since, deadSince)
	}
	eventually(t, waitLong, converged([]*testNode{a, b, c2}))
}

func TestDeadNameTakenByNewAddress(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLong, seesState([]*testNode{a, b}, "n2", Dead))
	// The host comes back at another address (here: another port).
	c2 := startNode(t, "n2", nil)
	if c2.Local().Port == c.Local().Port {
		t.Skip("the kernel gave the same port again")
	}
	c2.join(t, b)
	eventually(t, waitLong, func() string {
		for _, o := range []*testNode{a, b} {
			m, _ := o.member("n2")
			if m.State != Alive || m.Port != c2.Local().Port {
				return fmt.Sprintf("%s sees %s, want n2 alive on port %d", o.cfg.NodeName, m, c2.Local().Port)
			}
		}
		return ""
	})
}

func TestLeaveGivesLeft(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]

	if err := c.Leave(0); err == nil {
		t.Fatal("Leave(0) accepted")
	}
	// n2 leads; leaving, it stops saying so.
	if err := c.UpdateMeta(func(m *Meta) { m.Role, m.LeaderTerm = RoleVoter, 7 }); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLong, func() string {
		if m, ok := a.Member("n2"); !ok || m.Meta.LeaderTerm != 7 {
			return fmt.Sprintf("a sees n2 as %+v", m.Meta)
		}
		return ""
	})
	if err := c.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	eventually(t, waitLong, seesState([]*testNode{a, b}, "n2", Left))
	if err := c.Leave(time.Second); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	if err := c.UpdateMeta(func(m *Meta) { m.Role = RoleVoter }); !errors.Is(err, ErrLeft) {
		t.Fatalf("UpdateMeta after Leave: got %v, want ErrLeft", err)
	}
	// a's events: n2 first announced it was leaving, then left.
	var sawLeaving bool
	eventually(t, waitLong, func() string {
		for {
			select {
			case ev := <-a.Events():
				if ev.Member.Name != "n2" {
					continue
				}
				if ev.Type == EventUpdate && ev.Member.Meta.Leaving {
					sawLeaving = true
					if ev.Member.Meta.LeaderTerm != 0 {
						return fmt.Sprintf("n2 leaving still advertises leader term %d", ev.Member.Meta.LeaderTerm)
					}
				}
				if ev.Type == EventLeave {
					if ev.Member.State != Left {
						return fmt.Sprintf("leave event with state %v", ev.Member.State)
					}
					return ""
				}
			default:
				return "no leave event for n2 on a yet"
			}
		}
	})
	if !sawLeaving {
		t.Error("no update event announcing that n2 was leaving")
	}

	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := c.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Leave after Shutdown: got %v, want ErrShutdown", err)
	}
	if err := c.UpdateMeta(func(*Meta) {}); !errors.Is(err, ErrShutdown) {
		t.Fatalf("UpdateMeta after Shutdown: got %v, want ErrShutdown", err)
	}
	// Events is closed once drained.
	eventually(t, waitLong, func() string {
		for {
			select {
			case _, ok := <-c.Events():
				if !ok {
					return ""
				}
			default:
				return "Events not closed after Shutdown"
			}
		}
	})
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestJoinBacksOffAndStopsOnCancel(t *testing.T) {
	dead := freeAddr(t)
	a := startNode(t, "a", func(c *Config) { c.Join = []string{dead} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Join(ctx) }()

	want3 := fmt.Sprintf("join: no member answered at %s (attempt 3, next in 80ms)", dead)
	eventually(t, waitLong, func() string {
		if !a.logs.contains(want3) {
			return "no log line " + want3
		}
		return ""
	})
	for i, next := range []string{"20ms", "40ms"} {
		want := fmt.Sprintf("(attempt %d, next in %s)", i+1, next)
		if !a.logs.contains(want) {
			t.Errorf("missing %q: the back-off does not double", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "gave up") {
			t.Fatalf("Join after cancel: got %v, want context.Canceled", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Join did not return after cancel")
	}
}

func TestJoinBackOffIsCapped(t *testing.T) {
	dead := freeAddr(t)
	a := startNode(t, "a", func(c *Config) { c.Join = []string{dead}; c.JoinRetryMax = 50 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.Join(ctx) }()
	eventually(t, waitLong, func() string {
		if !a.logs.contains("(attempt 5, next in 50ms)") {
			return "back-off not capped at 50ms by attempt 5"
		}
		return ""
	})
}

func TestJoinSucceedsOnceSeedAppears(t *testing.T) {
	// The seed's address is known before it listens: the first attempts
	// fail, a later one succeeds.
	seedAddr := freeAddr(t)
	_, portStr, _ := net.SplitHostPort(seedAddr)
	var port int
	fmt.Sscan(portStr, &port)
	b := startNode(t, "b", func(c *Config) { c.Join = []string{seedAddr} })
	done := make(chan error, 1)
	go func() { done <- b.Join(context.Background()) }()
	eventually(t, waitLong, func() string {
		if !b.logs.contains("(attempt 2,") {
			return "b has not retried yet"
		}
		return ""
	})
	a, err := tryStartNode(t, "a", func(c *Config) { c.BindPort = port })
	if err != nil {
		t.Skipf("port %d was taken meanwhile: %v", port, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Join did not succeed after the seed appeared")
	}
	eventually(t, waitLong, converged([]*testNode{a, b}))
}

func TestNameClashRefused(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	aAddr := a.addr()

	for _, seed := range []*testNode{b, a} { // via another member, and via the holder itself
		intruder := startNode(t, "n0", nil)
		intruder.cfg.Join = []string{seed.addr()}
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		err := intruder.Join(ctx)
		cancel()
		var clash *NameClashError
		if !errors.As(err, &clash) {
			t.Fatalf("join via %s: got %v, want a NameClashError", seed.cfg.NodeName, err)
		}
		want := fmt.Sprintf(`join: node name "n0" is already used by %s`, aAddr)
		if !strings.Contains(err.Error(), want) || clash.Claimant != intruder.addr() {
			t.Fatalf("error %q: want it to contain %q and name the claimant %s", err, want, intruder.addr())
		}
		// The seed refuses in its own merge hook, which may run just after
		// the intruder has already seen the clash from the seed's state.
		eventually(t, waitLong, func() string {
			if !seed.logs.contains("refused a join") {
				return seed.cfg.NodeName + " did not log the refused join"
			}
			return ""
		})
		if len(intruder.Members()) != 1 {
			t.Errorf("the intruder merged state anyway: %v", intruder.Members())
		}
		// The holder keeps its name and address, and nobody hears of
		// the intruder, over many gossip and probe rounds.
		never(t, 1500*time.Millisecond, func() string {
			for _, o := range []*testNode{a, b} {
				m, _ := o.member("n0")
				if m.State != Alive || m.Address() != aAddr {
					return fmt.Sprintf("%s sees %s, want n0 alive at %s", o.cfg.NodeName, m, aAddr)
				}
				if len(o.Members()) != 2 {
					return fmt.Sprintf("%s sees %v", o.cfg.NodeName, o.Members())
				}
			}
			return ""
		})
		intruder.Shutdown()
	}
}

func TestWrongGossipKeyRefused(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 16)
	k2 := bytes.Repeat([]byte{2}, 16)
	for _, tc := range []struct {
		name           string
		seedKey, joinK []byte
	}{
		{"different keys", k1, k2},
		{"joiner without key", k1, nil},
		{"seed without key", nil, k2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, "a", func(c *Config) { c.GossipKey = tc.seedKey })
			b := startNode(t, "b", func(c *Config) { c.GossipKey = tc.joinK; c.Join = []string{a.addr()} })
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			start := time.Now()
			err := b.Join(ctx)
			if !errors.Is(err, ErrGossipKey) || !strings.Contains(err.Error(), "--gossip-key") {
				t.Fatalf("got %v, want ErrGossipKey mentioning --gossip-key", err)
			}
			if time.Since(start) > 5*time.Second || b.logs.contains("no member answered") {
				t.Errorf("a key mismatch should fail at once, not retry (took %v)", time.Since(start))
			}
			// Both sides logged it at error level: no silent partition.
			if !strings.Contains(b.logs.String(), "level=ERROR") || !b.logs.contains("gossip-key") {
				t.Errorf("joiner did not log the mismatch as an error")
			}
			eventually(t, waitLong, func() string {
				if !a.logs.contains("level=ERROR") || !a.logs.contains("--gossip-key?") {
					return "seed did not log the refused exchange as an error with the key hint"
				}
				return ""
			})
			if len(a.Members()) != 1 || len(b.Members()) != 1 {
				t.Errorf("state merged despite the key mismatch: %v / %v", a.Members(), b.Members())
			}
		})
	}
}

func TestEventsFullNeverBlocksMemberlist(t *testing.T) {
	// n0 has room for one event and nobody reads it.
	first := startNode(t, "n0", func(c *Config) { c.EventBuffer = 1 })
	nodes := []*testNode{first}
	for i := 1; i < 4; i++ {
		nd := startNode(t, fmt.Sprintf("n%d", i), nil)
		nd.join(t, first)
		nodes = append(nodes, nd)
	}
	eventually(t, waitLong, converged(nodes))
	if first.Dropped() == 0 {
		t.Fatal("no event dropped although the channel held one and nobody read it")
	}
	// The table keeps up: a metadata change and a death still show.
	if err := nodes[2].UpdateMeta(func(m *Meta) { m.Role = RoleNonvoter }); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLong, func() string {
		if m, _ := first.member("n2"); m.Meta.Role != RoleNonvoter {
			return fmt.Sprintf("n0 sees n2 meta %+v", m.Meta)
		}
		return ""
	})
	nodes[3].Shutdown()
	eventually(t, waitLong, seesState([]*testNode{first}, "n3", Dead))
	if len(first.Events()) != 1 {
		t.Fatalf("channel holds %d events, want exactly its capacity 1", len(first.Events()))
	}
	t.Logf("dropped %d events", first.Dropped())
}

// One measurement of death detection with the production timings.
func TestDeathDetectionWithDefaultConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("takes several seconds")
	}
	// Convergence can take up to a push/pull period (15 s) if gossip
	// missed a member; that is not what is measured here.
	nodes := startClusterWithin(t, 5, func(c *Config) {
		d := DefaultConfig()
		d.NodeName, d.Logger = c.NodeName, c.Logger
		d.BindAddr, d.BindPort = "127.0.0.1", 0
		*c = d
	}, 40*time.Second)
	victim := nodes[4]
	stopped := time.Now()
	victim.Shutdown()
	eventually(t, 15*time.Second, seesState(nodes[:4], "n4", Dead))
	took := time.Since(stopped)
	t.Logf("DefaultConfig, 5 members on loopback: all 4 survivors saw the stopped member dead after %v", took.Round(10*time.Millisecond))
}
