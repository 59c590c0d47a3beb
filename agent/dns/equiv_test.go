package dns

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// populated returns a server (not serving) with a mix of services.
func populated(t testing.TB) *Server {
	t.Helper()
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.Upsert(service("default", "web", "10.96.0.10", port{"http", "TCP", 80}))
	s.Upsert(endpoints("default", "web", []epAddr{{ip: "10.244.0.5"}, {ip: "10.244.1.5", hostname: "w-1"}}, port{"http", "TCP", 8080}))
	s.Upsert(service("db", "pg", "None", port{"sql", "TCP", 5432}))
	s.Upsert(endpoints("db", "pg", []epAddr{{ip: "10.244.1.7", hostname: "pg-0"}, {ip: "10.244.2.8"}, {ip: "fd00::8"}}, port{"sql", "TCP", 5432}))
	six := service("default", "six", "fd00:96::a", port{"grpc", "TCP", 9090})
	six.Spec.ClusterIPs = []string{"fd00:96::a", "10.96.0.11"}
	s.Upsert(six)
	var as []epAddr
	for i := range 100 {
		as = append(as, epAddr{ip: fmt.Sprintf("10.244.3.%d", i+1)})
	}
	s.Upsert(service("default", "big", "None", port{"http", "TCP", 80}))
	s.Upsert(endpoints("default", "big", as, port{"http", "TCP", 80}))
	return s
}

var equivNames = []string{
	"web.default.svc.cluster.local.", "_http._tcp.web.default.svc.cluster.local.", "w-1.web.default.svc.cluster.local.",
	"pg.db.svc.cluster.local.", "pg-0.pg.db.svc.cluster.local.", "10-244-2-8.pg.db.svc.cluster.local.", "fd00--8.pg.db.svc.cluster.local.",
	"_sql._tcp.pg.db.svc.cluster.local.", "six.default.svc.cluster.local.", "_grpc._tcp.six.default.svc.cluster.local.",
	"big.default.svc.cluster.local.", "_http._tcp.big.default.svc.cluster.local.",
	"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "_tcp.web.default.svc.cluster.local.",
	"nope.default.svc.cluster.local.", "x.y.z.cluster.local.", "10.0.96.10.in-addr.arpa.", "7.1.244.10.in-addr.arpa.",
}

var equivTypes = []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeSRV, mdns.TypePTR, mdns.TypeSOA, mdns.TypeTXT, mdns.TypeMX, mdns.TypeNS}

func randomCase(r *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' && r.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// canonical renders a response for comparison: everything but the case of
// owner names, which the fast path takes from the question.
func canonical(t testing.TB, b []byte) string {
	t.Helper()
	m := new(mdns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("answer does not unpack: %v", err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "id=%d %s q=%v\n", m.Id, strings.ToLower(m.MsgHdr.String()), m.Question)
	for _, sec := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		sb.WriteString(strings.Join(lowerAll(sec), "\n"))
		sb.WriteString("\n--\n")
	}
	return sb.String()
}

func lowerAll(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.ToLower(rr.String()))
	}
	return out
}

// The fast path must answer exactly as the slow path (github.com/miekg/dns
// parsing and packing) does, for every query it takes.
func TestFastPathMatchesSlowPath(t *testing.T) {
	s := populated(t)
	r := rand.New(rand.NewPCG(1, 2))
	taken := 0
	for _, name := range equivNames {
		for _, qt := range equivTypes {
			for _, variant := range []func(*mdns.Msg){
				nil,
				func(m *mdns.Msg) { m.SetEdns0(1232, false) },
				func(m *mdns.Msg) { m.SetEdns0(4096, true); m.CheckingDisabled = true },
				func(m *mdns.Msg) { m.SetEdns0(100, false); m.RecursionDesired = false },
				func(m *mdns.Msg) {
					m.SetEdns0(1232, false)
					m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0102030405060708"})
				},
			} {
				for _, tcp := range []bool{false, true} {
					req := packQuery(t, uint16(r.Uint32()), randomCase(r, name), qt, variant)
					fast, ok := s.fast(req, nil, tcp)
					slow, fw := s.slow(req, nil, tcp)
					if fw != nil {
						<-s.fwdSlots
						if ok {
							t.Fatalf("%s %s: fast path answered a query the slow path forwards", name, mdns.TypeToString[qt])
						}
						continue
					}
					if !ok {
						continue
					}
					taken++
					if f, sl := canonical(t, fast), canonical(t, slow); f != sl {
						t.Fatalf("%s %s tcp=%v:\nfast:\n%s\nslow:\n%s", name, mdns.TypeToString[qt], tcp, f, sl)
					}
					var q mdns.Msg
					q.Unpack(req)
					var a mdns.Msg
					a.Unpack(fast)
					if !slices.Equal(a.Question, q.Question) {
						t.Fatalf("question %v, want the client's %v", a.Question, q.Question)
					}
				}
			}
		}
	}
	if taken < 1000 {
		t.Fatalf("the fast path took only %d queries", taken)
	}
}

func TestFastPathDoesNotAllocate(t *testing.T) {
	s := populated(t)
	out := make([]byte, 0, MaxUDPAnswer)
	for _, name := range []string{"web.default.svc.cluster.local.", "nope.default.svc.cluster.local.", "web.default.svc.cluster.local."} {
		req := packQuery(t, 1, name, mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(1232, false) })
		if allocs := testing.AllocsPerRun(100, func() {
			if _, ok := s.fast(req, out, false); !ok {
				t.Fatal("not fast")
			}
		}); allocs != 0 {
			t.Fatalf("%s: %v allocations per query", name, allocs)
		}
	}
}
