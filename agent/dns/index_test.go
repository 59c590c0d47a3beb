package dns

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/api"
)

// snapshot returns the readers' table as name → concatenated answers,
// leaving out the apex (its SOA serial is the server's start time).
func (s *Server) snapshot() map[string][]byte {
	out := map[string][]byte{}
	for i := range s.idx.table.shards {
		sh := &s.idx.table.shards[i]
		sh.mu.RLock()
		for k, e := range sh.m {
			if k == s.apexWire {
				continue
			}
			var b []byte
			for _, a := range e.answers() {
				b = append(append(b, byte(a.qtype>>8), byte(a.qtype)), a.wire...)
			}
			out[k] = b
		}
		sh.mu.RUnlock()
	}
	return out
}

// states returns the writers' state of every name in the table.
func (ix *index) states() map[string]*nameState {
	out := map[string]*nameState{}
	for i := range ix.table.shards {
		sh := &ix.table.shards[i]
		sh.mu.RLock()
		for k, e := range sh.m {
			out[k] = e.st
		}
		sh.mu.RUnlock()
	}
	return out
}

// Any sequence of changes leaves the index as building it from the final
// objects at once does.
func TestIncrementalMatchesRebuild(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 99))
		s, err := New(testConfig())
		if err != nil {
			t.Fatal(err)
		}
		live := map[string]api.Object{} // kind/ns/name → object
		randomService := func(ns, name string) *api.Service {
			ps := []port{{"http", "TCP", 80}, {"dns", "UDP", 53}, {"", "TCP", 9}}[:r.IntN(4)]
			switch r.IntN(4) {
			case 0:
				sv := service(ns, name, "None", ps...)
				sv.Spec.PublishNotReadyAddresses = r.IntN(2) == 0
				return sv
			case 1:
				sv := service(ns, name, ip4(r.IntN(8)), ps...) // shared IPs: PTR with several owners
				return sv
			case 2:
				return service(ns, name, fmt.Sprintf("fd00::%x", r.IntN(8)), ps...)
			default:
				return service(ns, name, "", ps...)
			}
		}
		randomEndpoints := func(ns, name string) *api.Endpoints {
			var as []epAddr
			for range r.IntN(5) {
				a := epAddr{ip: fmt.Sprintf("10.244.0.%d", r.IntN(6)), notReady: r.IntN(4) == 0}
				if r.IntN(2) == 0 {
					a.hostname = fmt.Sprintf("h%d", r.IntN(3))
				}
				as = append(as, a)
			}
			return endpoints(ns, name, as, []port{{"http", "TCP", 8080}, {"dns", "UDP", 5353}}[:r.IntN(3)]...)
		}
		for range 300 {
			ns := []string{"a", "b"}[r.IntN(2)]
			name := fmt.Sprintf("s%d", r.IntN(5))
			switch r.IntN(5) {
			case 0, 1:
				o := randomService(ns, name)
				s.Upsert(o)
				live["Service/"+ns+"/"+name] = o
			case 2:
				o := randomEndpoints(ns, name)
				s.Upsert(o)
				live["Endpoints/"+ns+"/"+name] = o
			case 3:
				s.Delete("Service", ns, name)
				delete(live, "Service/"+ns+"/"+name)
			default:
				s.Delete("Endpoints", ns, name)
				delete(live, "Endpoints/"+ns+"/"+name)
			}
		}
		fresh, err := New(testConfig())
		if err != nil {
			t.Fatal(err)
		}
		var objs []api.Object
		for _, o := range live {
			objs = append(objs, o)
		}
		fresh.Replace(objs)
		got, want := s.snapshot(), fresh.snapshot()
		if len(got) != len(want) {
			for k := range want {
				if _, ok := got[k]; !ok {
					t.Logf("missing %q", textName(k))
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Logf("extra %q", textName(k))
				}
			}
			t.Fatalf("seed %d: %d names incrementally, %d rebuilt", seed, len(got), len(want))
		}
		for k, w := range want {
			if !bytes.Equal(got[k], w) {
				t.Fatalf("seed %d: name %q differs", seed, textName(k))
			}
		}
		freshStates := fresh.idx.states()
		for k, st := range s.idx.states() {
			ft := freshStates[k]
			if ft == nil || ft.below != st.below || len(ft.owners) != len(st.owners) {
				t.Fatalf("seed %d: writer state of %q differs: %+v vs %+v", seed, textName(k), st, ft)
			}
		}
		// And removing everything leaves nothing behind.
		s.Replace(nil)
		if n := s.Names(); n != 2 || len(s.idx.states()) != 2 {
			t.Fatalf("seed %d: %d names left", seed, n)
		}
	}
}

// A compact response expands back to the response packed (ID 0), for every
// kind of answer the index builds.
func TestCompactRoundTrip(t *testing.T) {
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		qtype uint16
		rs    recSet
	}{
		{"web.default.svc.cluster.local.", mdns.TypeA, recSet{addrs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}}},
		{"web.default.svc.cluster.local.", mdns.TypeAAAA, recSet{addrs: []netip.Addr{netip.MustParseAddr("fd00::10")}}},
		{"_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, recSet{srvs: []srvRec{{target: "web.default.svc.cluster.local.", port: 80, weight: 100, addrs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}}}}},
		{"10.0.96.10.in-addr.arpa.", mdns.TypePTR, recSet{ptrs: []string{"web.default.svc.cluster.local."}}},
	} {
		e := s.buildEntry(c.name, &c.rs, false)
		tmpl := e.answer(c.qtype)
		if tmpl == nil {
			t.Fatalf("%s %d: no answer", c.name, c.qtype)
		}
		got := expand([]byte(wireName(c.name)), c.qtype, tmpl)
		var m mdns.Msg
		if err := m.Unpack(got); err != nil {
			t.Fatalf("%s %d: expanded response does not unpack: %v", c.name, c.qtype, err)
		}
		if len(m.Question) != 1 || m.Question[0].Name != c.name || m.Question[0].Qtype != c.qtype || len(m.Answer) == 0 {
			t.Errorf("%s %d: expanded to %v", c.name, c.qtype, m.String())
		}
		if again := compact(got); !bytes.Equal(again, tmpl) {
			t.Errorf("%s %d: compact(expand(t)) differs from t", c.name, c.qtype)
		}
	}
}
