package lb

import (
	"net/netip"
	"runtime"
	"testing"

	"pgregory.net/rapid"
)

// TestWinnersModel: the grouped store answers exactly as a plain map of
// element to claim would, whatever the sequence of puts and deletes, for
// numbered endpoint elements (grouped, and beyond maxGroupIndex not) and
// other elements alike, verdicts included.
func TestWinnersModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWinners()
		model := map[elemKey]claim{}
		keys := []elemKey{}
		for _, kind := range []setKind{skClusterEndpoints, skNodePortEndpoints, skClusterIPs, skClusterSized} {
			for _, prefix := range []byte{1, 2} {
				for _, i := range []int{0, 1, 2, 5, maxGroupIndex - 1, maxGroupIndex} {
					el := newElement([]byte{10, 96, 0, prefix, 6, 0, 0, 0, 0, 80, 0, 0}, nil, "")
					k := keyOf(setID{kind: kind, n: 3}, &el)
					if kind == skClusterEndpoints || kind == skNodePortEndpoints {
						k = keyOf(setID{kind: kind}, ptr(endpointElement(el.key[:el.klen], i, endpoint{addr: netip.MustParseAddr("10.244.0.1"), port: 8080})))
					}
					keys = append(keys, k)
				}
			}
		}
		chains := []string{"svc-a", "svc-b"}
		for range rapid.IntRange(1, 200).Draw(t, "steps") {
			k := rapid.SampledFrom(keys).Draw(t, "key")
			if rapid.IntRange(0, 2).Draw(t, "op") == 0 {
				w.del(k)
				delete(model, k)
			} else {
				c := claim{owner: ownerID(rapid.IntRange(0, 5).Draw(t, "owner")), vlen: 8}
				c.val[0] = byte(rapid.IntRange(0, 255).Draw(t, "val"))
				if rapid.IntRange(0, 4).Draw(t, "verdict") == 0 {
					g := rapid.SampledFrom(chains).Draw(t, "chain")
					c.goTo = &g
				}
				w.put(k, c)
				model[k] = c
			}
			if w.len() != len(model) {
				t.Fatalf("%d elements held, want %d", w.len(), len(model))
			}
			for _, k := range keys {
				got, ok := w.get(k)
				want, wok := model[k]
				if ok != wok || ok && !sameClaim(got, want) {
					t.Fatalf("get %v: %+v %v, want %+v %v", k, got, ok, want, wok)
				}
			}
			seen := map[elemKey]bool{}
			w.all(func(k elemKey, c claim) {
				want, ok := model[k]
				if !ok || seen[k] || !sameClaim(c, want) {
					t.Fatalf("all: %v %+v (held %v, seen %v), want %+v", k, c, ok, seen[k], want)
				}
				seen[k] = true
			})
			if len(seen) != len(model) {
				t.Fatalf("all: %d elements, want %d", len(seen), len(model))
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }

func sameClaim(a, b claim) bool {
	if (a.goTo == nil) != (b.goTo == nil) || a.goTo != nil && *a.goTo != *b.goTo {
		return false
	}
	a.goTo, b.goTo = nil, nil
	return a == b
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRegistryHeap bounds the registry of 10,000 services × 10 endpoints
// (issue 11, agent RSS), built as a first sync builds it and as the proxy
// builds it, one service at a time; and after every service was deleted
// and loaded again. A plain map from element to claim took 17.2 MiB; the
// endpoints kept in groups take 5.5. The figures:
// go test -run TestRegistryHeap -v ./dataplane/lb
func TestRegistryHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 services")
	}
	p, err := newPlan(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	services := syntheticServices(10000, 10)
	frags := make([]*fragment, len(services))
	for i, s := range services {
		frags[i] = p.fragment(hold(s))
	}
	before := heapAlloc()
	reg := newRegistry()
	for i, s := range services {
		reg.claimAll(s.Key(), frags[i])
	}
	loaded := heapAlloc()
	for i, s := range services {
		for _, e := range frags[i].elems {
			reg.release(s.Key(), e.set, &e.el)
		}
	}
	if reg.winners.len() != 0 || len(reg.owners.ids) != 0 {
		t.Fatalf("%d elements and %d owners left after every release", reg.winners.len(), len(reg.owners.ids))
	}
	for i, s := range services {
		reg.claimAll(s.Key(), frags[i])
	}
	reloaded := heapAlloc()
	runtime.KeepAlive(frags)
	runtime.KeepAlive(services)
	runtime.KeepAlive(reg)
	mib := func(n uint64) float64 { return (float64(n) - float64(before)) / (1 << 20) }
	t.Logf("registry of 10,000 services × 10 endpoints: %.1f MiB, %.1f MiB after deleting and loading them again", mib(loaded), mib(reloaded))
	const bound = 8.0 // about 40% over the 5.5 MiB measured
	if mib(loaded) > bound || mib(reloaded) > bound {
		t.Errorf("registry heap %.1f MiB, %.1f MiB reloaded; want under %.0f", mib(loaded), mib(reloaded), bound)
	}
}
