package lb

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/shoal-dev/shoal/integration/testenv"
)

// TestApplyMatchesRender: for every golden case, the kernel, listed by nft
// after a Resync, holds exactly what Render prints.
func TestApplyMatchesRender(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			ns := newNS(t)
			a := newApplier(t, c.cfg, ns)
			if err := a.Resync(c.services); err != nil {
				t.Fatal(err)
			}
			got := canonical(listTable(t, ns, c.cfg.Table), false)
			want := canonical(Render(c.cfg, c.services), false)
			if got != want {
				t.Fatalf("kernel differs from Render (-render +kernel):\n%s", lineDiff(want, got))
			}
		})
	}
}

// TestFailedBatchRepairs: a batch the kernel refuses changes nothing (it is
// atomic), and the next call rebuilds the table and repairs it.
func TestFailedBatchRepairs(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	ns := newNS(t)
	cfg := testConfig()
	a := newApplier(t, cfg, ns)
	web := Service{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Ports: []Port{
		{Name: "http", Protocol: "TCP", Port: 80, Endpoints: []Endpoint{ep("10.244.1.1", 8080)}},
	}}
	if err := a.Sync([]Service{web}, nil); err != nil {
		t.Fatal(err)
	}

	// Someone puts an element of their own in our map, under a key the
	// next batch adds with another verdict: the kernel refuses the batch.
	run(t, ns, "nft", "add element ip shoal cluster-endpoints { 10.96.0.99 . tcp . 80 . 0x00000000 : 10.244.9.9 . 80 }")
	before := listTable(t, ns, cfg.Table)
	web2 := cloneService(web)
	web2.Ports[0].Endpoints = append(web2.Ports[0].Endpoints, ep("10.244.2.1", 8080))
	other := Service{Namespace: "default", Name: "other", ClusterIP: "10.96.0.99", Ports: []Port{
		{Protocol: "TCP", Port: 80, Endpoints: []Endpoint{ep("10.244.1.2", 8080)}},
	}}
	if err := a.Sync([]Service{web2, other}, nil); err == nil {
		t.Fatal("Sync over a conflicting element succeeded")
	} else {
		t.Logf("refused as expected: %v", err)
	}
	if after := listTable(t, ns, cfg.Table); after != before {
		t.Fatalf("a refused batch changed the table (-before +after):\n%s", lineDiff(before, after))
	}

	// The next call, even with nothing new, rebuilds.
	if err := a.Sync(nil, nil); err != nil {
		t.Fatal(err)
	}
	want := Render(cfg, []Service{web2, other})
	if got := listTable(t, ns, cfg.Table); canonical(got, false) != canonical(want, false) {
		t.Fatalf("not repaired (-render +kernel):\n%s", lineDiff(canonical(want, false), canonical(got, false)))
	}

	// The table deleted by hand: the next Sync fails, the one after
	// rebuilds it.
	run(t, ns, "nft", "delete table ip shoal")
	if err := a.Sync([]Service{web}, nil); err == nil {
		t.Fatal("Sync into a deleted table succeeded")
	}
	if err := a.Sync(nil, nil); err != nil {
		t.Fatal(err)
	}
	want = Render(cfg, []Service{web, other})
	if got := listTable(t, ns, cfg.Table); canonical(got, false) != canonical(want, false) {
		t.Fatalf("not repaired (-render +kernel):\n%s", lineDiff(canonical(want, false), canonical(got, false)))
	}

	// Invalid input is refused before anything is sent.
	bad := Service{Namespace: "default", Name: "bad", ClusterIP: "10.96.0.300"}
	if err := a.Sync([]Service{web2, bad}, nil); !errors.Is(err, ErrInvalidService) {
		t.Fatalf("Sync with an invalid service: %v, want ErrInvalidService", err)
	}
	if got := listTable(t, ns, cfg.Table); canonical(got, false) != canonical(want, false) {
		t.Fatal("a refused Sync changed the table")
	}
}

// elementCount counts a set's elements in the kernel.
func elementCount(t testing.TB, ns *testenv.NetNS, table, set string) int {
	t.Helper()
	h, err := netns.GetFromPath(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	conn, err := newConn(int(h))
	if err != nil {
		t.Fatal(err)
	}
	els, err := conn.GetSetElements(&nftables.Set{Table: &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}, Name: set})
	if err != nil {
		t.Fatal(err)
	}
	return len(els)
}

// TestLargeSyncElementCounts: element lists are cut into messages the
// kernel takes whole (one long list is silently truncated): the counts in
// the kernel are the counts of the model, after a full sync and after a
// large incremental one.
func TestLargeSyncElementCounts(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	ns := newNS(t)
	cfg := testConfig()
	a := newApplier(t, cfg, ns)
	const n = 10000
	services := syntheticServices(n, 3)
	if err := a.Resync(services); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want map[string]int) {
		t.Helper()
		for set, w := range want {
			if got := elementCount(t, ns, cfg.Table, set); got != w {
				t.Fatalf("%s: %d elements in %s, want %d", when, got, set, w)
			}
		}
	}
	check("full sync", map[string]int{"cluster-3": n, setClusterEndpoints: 3 * n, setClusterIPs: n, setNodePortEndpoints: 0})

	// Half the services get a fourth endpoint, in one Sync.
	changed := make([]Service, 0, n/2)
	for i := 0; i < n/2; i++ {
		s := cloneService(services[i])
		s.Ports[0].Endpoints = append(s.Ports[0].Endpoints, Endpoint{IP: "10.250.0.1", Port: 80})
		changed = append(changed, s)
	}
	if err := a.Sync(changed, nil); err != nil {
		t.Fatal(err)
	}
	check("after adding", map[string]int{"cluster-3": n / 2, "cluster-4": n / 2, setClusterEndpoints: 3*n + n/2, setClusterIPs: n})

	// The other half is deleted, in one Sync.
	var deleted []ServiceKey
	for _, s := range services[n/2:] {
		deleted = append(deleted, s.Key())
	}
	if err := a.Sync(nil, deleted); err != nil {
		t.Fatal(err)
	}
	check("after deleting", map[string]int{"cluster-4": n / 2, setClusterEndpoints: 4 * n / 2, setClusterIPs: n / 2})
	if strings.Contains(listTable(t, ns, cfg.Table), "set cluster-3 ") {
		t.Fatal("set cluster-3 left behind with no element")
	}
}
