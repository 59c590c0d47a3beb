package gossip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// cutTransport is memberlist's own transport with a switch that drops every
// packet and refuses every stream to the addresses it is told to cut, as a
// network partition would (both sides cut each other: a symmetric split).
type cutTransport struct {
	*memberlist.NetTransport
	mu  sync.Mutex
	cut map[string]bool
}

func newCutTransport(t *testing.T) *cutTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &cutTransport{NetTransport: nt, cut: map[string]bool{}}
}

func (c *cutTransport) set(addrs []string, cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range addrs {
		c.cut[a] = cut
	}
}

func (c *cutTransport) isCut(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut[addr]
}

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.isCut(addr) {
		return time.Now(), nil // lost on the way
	}
	return c.NetTransport.WriteTo(b, addr)
}

func (c *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return c.WriteTo(b, a.Addr)
}

func (c *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if c.isCut(addr) {
		return nil, errors.New("partitioned")
	}
	return c.NetTransport.DialTimeout(addr, timeout)
}

func (c *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return c.DialTimeout(a.Addr, timeout)
}

// A split of four members into two halves heals: once the network is back,
// every member sees every other alive again within a few seconds, with no
// help from outside (no Join called by the test, no restart).
func TestPartitionHealsByReconnecting(t *testing.T) {
	const n = 4
	trs := make([]*cutTransport, n)
	nodes := make([]*testNode, n)
	for i := range nodes {
		trs[i] = newCutTransport(t)
		tr := trs[i]
		nodes[i] = startNode(t, "p"+string(rune('0'+i)), func(c *Config) {
			c.Transport = tr
			// memberlist stops gossiping to the dead after this; the
			// partition below outlasts it, as a real one would.
			c.GossipToTheDeadTime = 500 * time.Millisecond
		})
	}
	for _, nd := range nodes[1:] {
		nd.join(t, nodes[0])
	}
	eventually(t, waitLong, converged(nodes))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, nd := range nodes {
		wg.Go(func() { nd.Reconnect(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	addrs := func(ns []*testNode) []string {
		var out []string
		for _, nd := range ns {
			out = append(out, nd.addr())
		}
		return out
	}
	left, right := nodes[:2], nodes[2:]
	for i := range nodes {
		other := right
		if i >= 2 {
			other = left
		}
		trs[i].set(addrs(other), true)
	}
	eventually(t, waitLong, seesState(left, "p2", Dead))
	eventually(t, waitLong, seesState(right, "p0", Dead))
	time.Sleep(time.Second) // the partition lasts: part of the scenario, not a wait for a condition

	healed := time.Now()
	for i := range nodes {
		trs[i].set(addrs(nodes), false)
	}
	eventually(t, waitLong, converged(nodes))
	t.Logf("one view on every member %v after the partition healed", time.Since(healed).Round(time.Millisecond))
}

func TestReconnectAddrs(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a := nodes[0]
	if got := a.reconnectAddrs(); len(got) != 0 {
		t.Fatalf("everyone alive: reconnect tries %v, want nothing", got)
	}
	a.cfg.Join = []string{"127.0.0.1:1"}
	if err := nodes[1].Shutdown(); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLong, seesState([]*testNode{a}, "n1", Dead))
	got := a.reconnectAddrs()
	if len(got) != 2 || got[0] != nodes[1].addr() || got[1] != "127.0.0.1:1" {
		t.Fatalf("a member dead: reconnect tries %v, want its address then the join list", got)
	}
}

// Reconnect tries one departed member a round, with the chance
// departed/alive: with 1 member dead among 10 alive, about one round in
// ten; with as many dead as alive (the two halves of a partition), every
// round.
func TestReconnectAddrsChance(t *testing.T) {
	g := &Gossip{cfg: Config{NodeName: "m0"}, now: time.Now, table: newTable(time.Hour)}
	now := time.Now()
	put := func(i int, alive bool) {
		m := Member{Name: fmt.Sprintf("m%d", i), Addr: "127.0.0.1", Port: uint16(7000 + i)}
		g.table.alive(m, now)
		if !alive {
			g.table.gone(m, now)
		}
	}
	for i := range 10 {
		put(i, true)
	}
	put(10, false)
	const rounds = 4000
	tried := 0
	for range rounds {
		switch got := g.reconnectAddrs(); len(got) {
		case 0:
		case 1:
			if got[0] != "127.0.0.1:7010" {
				t.Fatalf("tried %v, want the dead member", got)
			}
			tried++
		default:
			t.Fatalf("tried %v in one round, want at most one", got)
		}
	}
	if tried < rounds/20 || tried > rounds/5 { // expected rounds/10
		t.Errorf("1 dead, 10 alive: tried in %d rounds of %d, want about %d", tried, rounds, rounds/10)
	}
	for i := 11; i < 20; i++ {
		put(i, false)
	}
	for range 100 {
		if got := g.reconnectAddrs(); len(got) != 1 {
			t.Fatalf("10 dead, 10 alive: tried %v, want one every round", got)
		}
	}
}
