package lb

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/shoal-dev/shoal/integration/testenv"
)

// rapidChecksGiven: -rapid.checks was on the command line (asked once,
// before limitRapid sets it: a flag set by the program also counts as set).
var rapidChecksGiven = sync.OnceValue(func() bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "rapid.checks" })
	return given
})

// limitRapid bounds rapid's number of runs for a test that drives the
// kernel, unless -rapid.checks was given.
func limitRapid(t *testing.T, checks int) {
	if rapidChecksGiven() {
		return
	}
	old := flag.Lookup("rapid.checks").Value.String()
	if err := flag.Set("rapid.checks", fmt.Sprint(checks)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set("rapid.checks", old) })
	// Failures print the seed that reproduces them; no files in testdata.
	oldNoFile := flag.Lookup("rapid.nofailfile").Value.String()
	flag.Set("rapid.nofailfile", "true")
	t.Cleanup(func() { flag.Set("rapid.nofailfile", oldNoFile) })
}

// genService draws a service from small pools, so that services share
// endpoints, ClusterIPs and NodePorts (the lowest key wins a contested
// element, and the tables must agree on it).
func genService(t *rapid.T, k ServiceKey) Service {
	s := Service{Namespace: k.Namespace, Name: k.Name}
	if rapid.IntRange(0, 9).Draw(t, "headless") == 0 {
		s.ClusterIP = "None"
	} else {
		s.ClusterIP = rapid.SampledFrom([]string{"10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.0.4"}).Draw(t, "vip")
	}
	if rapid.IntRange(0, 3).Draw(t, "affinity") == 0 {
		s.AffinityTimeout = rapid.SampledFrom([]time.Duration{time.Hour, 3 * time.Hour}).Draw(t, "timeout")
	}
	s.ExternalLocal = rapid.Bool().Draw(t, "externalLocal")
	s.InternalLocal = rapid.IntRange(0, 3).Draw(t, "internalLocal") == 0
	n := rapid.IntRange(1, 3).Draw(t, "ports")
	seen := map[string]bool{}
	for i := range n {
		p := Port{
			Name:     fmt.Sprintf("p%d", i),
			Protocol: rapid.SampledFrom([]string{"TCP", "TCP", "UDP", "SCTP"}).Draw(t, "protocol"),
			Port:     rapid.SampledFrom([]int{53, 80, 443}).Draw(t, "port"),
		}
		if rapid.Bool().Draw(t, "hasNodePort") {
			p.NodePort = rapid.SampledFrom([]int{30001, 30002, 30003}).Draw(t, "nodePort")
		}
		vipKey := fmt.Sprint(p.Protocol, p.Port)
		npKey := fmt.Sprint(p.Protocol, p.NodePort)
		if seen[vipKey] || (p.NodePort != 0 && seen["np"+npKey]) {
			continue
		}
		seen[vipKey], seen["np"+npKey] = true, true
		for range rapid.IntRange(0, 4).Draw(t, "endpoints") {
			node := rapid.IntRange(0, 2).Draw(t, "node")
			p.Endpoints = append(p.Endpoints, Endpoint{
				IP:    fmt.Sprintf("10.244.%d.%d", node, rapid.IntRange(1, 4).Draw(t, "host")),
				Port:  rapid.SampledFrom([]int{8080, 8081}).Draw(t, "targetPort"),
				Local: node == 0,
			})
		}
		s.Ports = append(s.Ports, p)
	}
	return s
}

// mutate changes a service a little: an endpoint more or less, a policy.
func mutate(t *rapid.T, s Service) Service {
	s = cloneService(s)
	if len(s.Ports) == 0 {
		return s
	}
	p := &s.Ports[rapid.IntRange(0, len(s.Ports)-1).Draw(t, "which port")]
	switch rapid.IntRange(0, 4).Draw(t, "mutation") {
	case 0, 1:
		node := rapid.IntRange(0, 2).Draw(t, "node")
		p.Endpoints = append(p.Endpoints, Endpoint{IP: fmt.Sprintf("10.244.%d.%d", node, rapid.IntRange(1, 6).Draw(t, "host")), Port: 8080, Local: node == 0})
	case 2:
		if len(p.Endpoints) > 0 {
			i := rapid.IntRange(0, len(p.Endpoints)-1).Draw(t, "remove")
			p.Endpoints = slices.Delete(p.Endpoints, i, i+1)
		}
	case 3:
		s.ExternalLocal = !s.ExternalLocal
	case 4:
		s.AffinityTimeout = rapid.SampledFrom([]time.Duration{0, time.Hour, 3 * time.Hour}).Draw(t, "timeout")
	}
	return s
}

// TestIncrementalEqualsFullProperty: random sequences of changes, sent to
// one namespace by Sync (incrementally) and to another by Resync of the
// whole state; after every step both tables list the same, and the rebuilt
// one lists what Render says.
func TestIncrementalEqualsFullProperty(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	limitRapid(t, 4)
	nsInc, nsFull := newNS(t), newNS(t)
	cfg := testConfig()
	keys := []ServiceKey{{"a", "s1"}, {"a", "s2"}, {"a", "s3"}, {"b", "s1"}, {"b", "s2"}}
	rapid.Check(t, func(t *rapid.T) {
		inc, err := NewApplier(cfg, nsInc.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer inc.Close()
		full, err := NewApplier(cfg, nsFull.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer full.Close()
		state := map[ServiceKey]Service{}
		for step := range 30 {
			touched := map[ServiceKey]bool{}
			for range rapid.IntRange(1, 3).Draw(t, "changes") {
				k := rapid.SampledFrom(keys).Draw(t, "key")
				touched[k] = true
				old, exists := state[k]
				switch action := rapid.IntRange(0, 5).Draw(t, "action"); {
				case exists && action == 0:
					delete(state, k)
				case exists && action <= 3:
					state[k] = mutate(t, old)
				default:
					state[k] = genService(t, k)
				}
			}
			var changed []Service
			var deleted []ServiceKey
			for _, k := range slices.SortedFunc(maps.Keys(touched), compareKeys) {
				if s, ok := state[k]; ok {
					changed = append(changed, s)
				} else {
					deleted = append(deleted, k)
				}
			}
			if err := inc.Sync(changed, deleted); err != nil {
				t.Fatalf("step %d: Sync: %v", step, err)
			}
			all := slices.Collect(maps.Values(state))
			if err := full.Resync(all); err != nil {
				t.Fatalf("step %d: Resync: %v", step, err)
			}
			checkSame(t, step, cfg, all, nsInc, nsFull)
		}
	})
}

func checkSame(t *rapid.T, step int, cfg Config, all []Service, nsInc, nsFull *testenv.NetNS) {
	incList, err := nsInc.Exec("nft", "list", "table", "ip", cfg.Table)
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	fullList, err := nsFull.Exec("nft", "list", "table", "ip", cfg.Table)
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	if a, b := canonical(fullList, true), canonical(incList, true); a != b {
		t.Fatalf("step %d: incremental table differs from rebuilt one (-rebuilt +incremental):\n%s", step, lineDiff(a, b))
	}
	if a, b := canonical(Render(cfg, all), false), canonical(fullList, false); a != b {
		t.Fatalf("step %d: rebuilt table differs from Render (-render +kernel):\n%s", step, lineDiff(a, b))
	}
}
