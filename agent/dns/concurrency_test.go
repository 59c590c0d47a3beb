package dns

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/api"
)

// Writers change services while readers query, over the wire and through
// the request path directly. A service nobody changes always answers the
// same; the changing ones answer one of their states; every answer parses.
func TestConcurrentUpdatesAndQueries(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("default", "stable", "10.96.0.1"))
	const changing = 20
	const rounds = 200
	deadline := time.Now().Add(30 * time.Second) // a bound, not a wait

	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if time.Now().After(deadline) {
					return
				}
				n := fmt.Sprintf("s%d", (i+w)%changing)
				switch i % 4 {
				case 0:
					s.Upsert(service("default", n, ip4(i%changing+10)))
				case 1:
					s.Upsert(endpoints("default", n, []epAddr{{ip: "10.244.0.1", hostname: "h"}}, port{"p", "TCP", 1}))
				case 2:
					s.Upsert(service("default", n, "None", port{"p", "TCP", 1}))
				default:
					s.Delete("Service", "default", n)
				}
				if i%50 == 49 {
					s.Replace([]api.Object{service("default", "stable", "10.96.0.1"), service("default", n, ip4(1))})
				}
			}
		}()
	}
	check := func(t *testing.T, r *mdns.Msg, name string) {
		if r.Rcode != mdns.RcodeSuccess && r.Rcode != mdns.RcodeNameError {
			t.Errorf("%s: rcode %s", name, mdns.RcodeToString[r.Rcode])
		}
		for _, rr := range r.Answer {
			a, ok := rr.(*mdns.A)
			if !ok {
				t.Errorf("%s: %v", name, rr)
				continue
			}
			ip, _ := netip.AddrFromSlice(a.A.To4())
			if !netip.MustParsePrefix("10.96.0.0/16").Contains(ip) && ip.String() != "10.244.0.1" {
				t.Errorf("%s: unexpected address %v", name, ip)
			}
		}
	}
	for rd := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if time.Now().After(deadline) {
					return
				}
				name := fmt.Sprintf("s%d.default.svc.cluster.local.", (i+rd)%changing)
				var r *mdns.Msg
				if rd < 2 {
					var err error
					network := []string{"udp", "tcp"}[rd]
					if r, err = exchange(addr, network, name, mdns.TypeA, nil); err != nil {
						t.Errorf("%s over %s: %v", name, network, err)
						return
					}
				} else {
					resp, fw := s.handle(packQuery(t, 1, name, mdns.TypeA, nil), nil, false)
					if fw != nil {
						t.Errorf("%s was forwarded", name)
						return
					}
					r = new(mdns.Msg)
					if err := r.Unpack(resp); err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
				}
				check(t, r, name)
				resp, _ := s.handle(packQuery(t, 2, "stable.default.svc.cluster.local.", mdns.TypeA, nil), nil, false)
				st := new(mdns.Msg)
				if err := st.Unpack(resp); err != nil || len(st.Answer) != 1 {
					t.Errorf("stable service: %v %v", st, err)
				}
			}
		}()
	}
	wg.Wait()

	// When the dust settles, the index is what the last state says: drop
	// everything and only the fixed names remain.
	s.Replace(nil)
	if n := s.Names(); n != 2 {
		t.Fatalf("%d names left after Replace(nil)", n)
	}
	s.idx.mu.Lock()
	defer s.idx.mu.Unlock()
	if n := len(s.idx.states()); n != 2 || len(s.idx.services) != 0 {
		t.Fatalf("writer state left: %d names, %d services", n, len(s.idx.services))
	}
}
