package lb

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTrafficRoot sends real connections through the table: client →
// node (the table) → backends, each in its own namespace.
func TestTrafficRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	tp := newTopology(t, 3)
	b1, b2, b3 := tp.backends[0], tp.backends[1], tp.backends[2]
	all := func(local ...bool) []Endpoint {
		var eps []Endpoint
		for i, b := range tp.backends {
			eps = append(eps, Endpoint{IP: b.ip, Port: 8080, Local: i >= len(local) || local[i]})
		}
		return eps
	}

	// Tables that are not ours, one of them with our table's name in
	// another family: they must come out of everything byte for byte.
	run(t, tp.node, "nft", "add table inet other")
	run(t, tp.node, "nft", "add chain inet other input { type filter hook input priority 10; policy accept; }")
	run(t, tp.node, "nft", "add rule inet other input tcp dport 9999 drop")
	run(t, tp.node, "nft", "add table inet shoal")
	run(t, tp.node, "nft", "add set inet shoal keep { type ipv4_addr; elements = { 10.1.2.3 } }")
	others := run(t, tp.node, "nft", "list table inet other") + run(t, tp.node, "nft", "list table inet shoal")

	cfg := testConfig()
	web := Service{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Ports: []Port{
		{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30080, Endpoints: all()},
		{Name: "dns", Protocol: "UDP", Port: 53, Endpoints: []Endpoint{{IP: b1.ip, Port: 8053, Local: true}}},
	}}
	down := Service{Namespace: "default", Name: "down", ClusterIP: "10.96.0.30", Ports: []Port{
		{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30030},
		{Name: "dns", Protocol: "UDP", Port: 53},
	}}
	self := Service{Namespace: "default", Name: "self", ClusterIP: "10.96.0.40", Ports: []Port{
		{Protocol: "TCP", Port: 80, Endpoints: []Endpoint{{IP: b1.ip, Port: 8080, Local: true}}},
	}}
	sticky := Service{Namespace: "default", Name: "sticky", ClusterIP: "10.96.0.50", AffinityTimeout: time.Hour, Ports: []Port{
		{Protocol: "TCP", Port: 80, NodePort: 30050, Endpoints: all()},
	}}
	// b3 stands for an endpoint on another node.
	extLocal := Service{Namespace: "default", Name: "ingress", ClusterIP: "10.96.0.60", ExternalLocal: true, Ports: []Port{
		{Protocol: "TCP", Port: 80, NodePort: 30060, Endpoints: all(true, true, false)},
	}}
	intLocal := Service{Namespace: "default", Name: "node-cache", ClusterIP: "10.96.0.70", InternalLocal: true, Ports: []Port{
		{Protocol: "TCP", Port: 80, Endpoints: all(false, true, false)},
	}}

	a := newApplier(t, cfg, tp.node)
	if err := a.Sync([]Service{web, down, self, sticky, extLocal, intLocal}, nil); err != nil {
		t.Fatal(err)
	}

	t.Run("clusterip spreads uniformly", func(t *testing.T) {
		// A uniform spread fails a chi-square test at p = 0.01 one time in
		// a hundred by chance; a biased one fails every sample. Up to three
		// samples: this test fails by chance once in a million runs.
		const n = 3000
		const critical = 9.2103 // chi-square, 2 degrees of freedom, p = 0.01
		var stats []string
		for sample := 0; sample < 3; sample++ {
			answers, err := ask(tp.client.Path, "10.96.0.10:80", n, 90*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := counts(answers)
			chi2 := 0.0
			for _, b := range tp.backends {
				d := float64(c[b.id]) - n/3.0
				chi2 += d * d / (n / 3.0)
			}
			stats = append(stats, fmt.Sprintf("%v chi2=%.2f", c, chi2))
			for _, a := range answers {
				if a.from != bridgeAddr {
					t.Fatalf("backend saw the client as %s, want %s (masqueraded: the client is outside the cluster CIDR)", a.from, bridgeAddr)
				}
			}
			if len(c) == 3 && chi2 < critical {
				t.Logf("%d connections: %s", n, strings.Join(stats, "; "))
				return
			}
		}
		t.Fatalf("spread over 3 endpoints not uniform in 3 samples of %d: %s", n, strings.Join(stats, "; "))
	})

	t.Run("udp", func(t *testing.T) {
		got, err := askUDP(tp.client.Path, "10.96.0.10:53")
		if err != nil || got.id != b1.id {
			t.Fatalf("udp to 10.96.0.10:53: %+v, %v", got, err)
		}
	})

	t.Run("the node itself", func(t *testing.T) {
		answers, err := ask(tp.node.Path, "10.96.0.10:80", 30, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if c := counts(answers); len(c) < 2 {
			t.Fatalf("30 connections from the node reached only %v", c)
		}
	})

	t.Run("nodeport from another namespace", func(t *testing.T) {
		answers, err := ask(tp.client.Path, nodeAddr+":30080", 60, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if c := counts(answers); len(c) != 3 {
			t.Fatalf("60 connections to the NodePort reached %v, want all 3 backends", c)
		}
		for _, a := range answers {
			if a.from != bridgeAddr {
				t.Fatalf("backend saw NodePort client as %s, want %s (masqueraded)", a.from, bridgeAddr)
			}
		}
	})

	t.Run("externalTrafficPolicy Local", func(t *testing.T) {
		answers, err := ask(tp.client.Path, nodeAddr+":30060", 100, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c := counts(answers)
		if c[b3.id] != 0 || c[b1.id] == 0 || c[b2.id] == 0 {
			t.Fatalf("NodePort with externalTrafficPolicy Local reached %v, want b1 and b2 only", c)
		}
		for _, a := range answers {
			if a.from != clientAddr {
				t.Fatalf("backend saw the client as %s, want its own address %s (not masqueraded)", a.from, clientAddr)
			}
		}
		// The ClusterIP of the same service still goes everywhere.
		answers, err = ask(tp.client.Path, "10.96.0.60:80", 60, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if c := counts(answers); len(c) != 3 {
			t.Fatalf("ClusterIP of an externalTrafficPolicy Local service reached %v, want all 3", c)
		}
	})

	t.Run("internalTrafficPolicy Local", func(t *testing.T) {
		answers, err := ask(tp.client.Path, "10.96.0.70:80", 30, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if c := counts(answers); c[b2.id] != 30 {
			t.Fatalf("ClusterIP with internalTrafficPolicy Local reached %v, want b2 only", c)
		}
	})

	t.Run("hairpin", func(t *testing.T) {
		answers, err := ask(b1.ns.Path, "10.96.0.40:80", 3, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range answers {
			if a.id != b1.id || a.from != bridgeAddr {
				t.Fatalf("b1 to its own service: %+v, want b1 seeing %s (masqueraded)", a, bridgeAddr)
			}
		}
	})

	t.Run("no endpoints: rejected at once", func(t *testing.T) {
		var took []string
		for _, c := range []struct{ ns, addr string }{
			{tp.client.Path, "10.96.0.30:80"},     // forward
			{tp.node.Path, "10.96.0.30:80"},       // output
			{tp.client.Path, nodeAddr + ":30030"}, // input
			{b2.ns.Path, "10.96.0.30:80"},         // from a pod
		} {
			took = append(took, refusedWithin(t, c.ns, c.addr, time.Second).String())
		}
		start := time.Now()
		if _, err := askUDP(tp.client.Path, "10.96.0.30:53"); !isRefused(err) {
			t.Fatalf("udp to a service without endpoints: %v, want connection refused (ICMP port unreachable)", err)
		}
		took = append(took, time.Since(start).String())
		t.Logf("refused after %s", strings.Join(took, ", "))
	})

	t.Run("session affinity", func(t *testing.T) {
		for _, addr := range []string{"10.96.0.50:80", nodeAddr + ":30050"} {
			answers, err := ask(tp.client.Path, addr, 50, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if c := counts(answers); len(c) != 1 {
				t.Fatalf("50 connections from one client to %s with session affinity reached %v, want one backend", addr, c)
			}
		}
		listing := listTable(t, tp.node, cfg.Table)
		if !strings.Contains(listing, "elements = { "+bridgeAddr) && !strings.Contains(listing, "elements = { "+clientAddr) {
			t.Fatalf("no client remembered in an affinity set:\n%s", listing)
		}
	})

	t.Run("removed endpoint gets no new connections", func(t *testing.T) {
		// Hold a connection to b3, then remove b3.
		var held answer
		var conn interface {
			Write([]byte) (int, error)
			Read([]byte) (int, error)
			Close() error
		}
		if err := inNS(tp.client.Path, func() error {
			for i := 0; i < 200; i++ {
				a, c, err := dialTCP("10.96.0.10:80")
				if err != nil {
					return err
				}
				if a.id == b3.id {
					held, conn = a, c
					return nil
				}
				c.Close()
			}
			return fmt.Errorf("200 connections and none reached b3")
		}); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		web2 := cloneService(web)
		web2.Ports[0].Endpoints = slices.DeleteFunc(web2.Ports[0].Endpoints, func(e Endpoint) bool { return e.IP == b3.ip })
		if err := a.Sync([]Service{web2}, nil); err != nil {
			t.Fatal(err)
		}
		answers, err := ask(tp.client.Path, "10.96.0.10:80", 300, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if c := counts(answers); c[b3.id] != 0 || len(c) != 2 {
			t.Fatalf("after removing b3: %v", c)
		}
		// The connection already made goes on (conntrack keeps it).
		if _, err := conn.Write([]byte("still there\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "still there\n" {
			t.Fatalf("held connection to %s after removal: %q, %v", held.id, buf[:n], err)
		}
		if err := a.Sync([]Service{web}, nil); err != nil {
			t.Fatal(err)
		}
		answers, err = ask(tp.client.Path, "10.96.0.10:80", 60, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if c := counts(answers); c[b3.id] == 0 {
			t.Fatalf("b3 added back but not reached: %v", c)
		}
	})

	t.Run("other tables untouched, cleanup leaves nothing", func(t *testing.T) {
		if err := a.Resync([]Service{web}); err != nil {
			t.Fatal(err)
		}
		if err := a.Sync(nil, []ServiceKey{web.Key()}); err != nil {
			t.Fatal(err)
		}
		if err := Cleanup(tp.node.Path, cfg.Table); err != nil {
			t.Fatal(err)
		}
		if err := Cleanup(tp.node.Path, cfg.Table); err != nil {
			t.Fatalf("second cleanup: %v", err)
		}
		after := run(t, tp.node, "nft", "list table inet other") + run(t, tp.node, "nft", "list table inet shoal")
		if after != others {
			t.Fatalf("other tables changed:\nbefore:\n%s\nafter:\n%s", others, after)
		}
		tables := run(t, tp.node, "nft", "list tables")
		if tables != "table inet other\ntable inet shoal\n" {
			t.Fatalf("tables after cleanup:\n%s", tables)
		}
		// Without the table, a ClusterIP is just an address routed
		// nowhere: nothing answers.
		if _, err := ask(tp.client.Path, "10.96.0.10:80", 1, 10*time.Second); err == nil {
			t.Fatal("a ClusterIP still answers after cleanup")
		}
	})
}
