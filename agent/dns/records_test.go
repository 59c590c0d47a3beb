package dns

import (
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/api"
)

func TestClusterIPService(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("shop", "web", "10.96.0.10", port{"http", "TCP", 80}, port{"dns", "UDP", 53}, port{"", "TCP", 8080}))
	s.Upsert(endpoints("shop", "web", []epAddr{{ip: "10.244.1.5"}, {ip: "10.244.2.6"}}, port{"http", "TCP", 8080}))

	r := ask(t, addr, "udp", "web.shop.svc.cluster.local.", mdns.TypeA)
	if r.Rcode != mdns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("rcode %s aa %v", mdns.RcodeToString[r.Rcode], r.Authoritative)
	}
	if got, want := rrStrings(r.Answer), []string{"web.shop.svc.cluster.local. 5 a 10.96.0.10"}; !slices.Equal(got, want) {
		t.Fatalf("A: %q, want %q", got, want)
	}

	r = ask(t, addr, "udp", "_http._tcp.web.shop.svc.cluster.local.", mdns.TypeSRV)
	if got, want := rrStrings(r.Answer), []string{"_http._tcp.web.shop.svc.cluster.local. 5 srv 0 100 80 web.shop.svc.cluster.local."}; !slices.Equal(got, want) {
		t.Fatalf("SRV: %q, want %q", got, want)
	}
	if got, want := rrStrings(r.Extra), []string{"web.shop.svc.cluster.local. 5 a 10.96.0.10"}; !slices.Equal(got, want) {
		t.Fatalf("SRV additional: %q, want %q", got, want)
	}
	r = ask(t, addr, "tcp", "_dns._udp.web.shop.svc.cluster.local.", mdns.TypeSRV)
	if got, want := rrStrings(r.Answer), []string{"_dns._udp.web.shop.svc.cluster.local. 5 srv 0 100 53 web.shop.svc.cluster.local."}; !slices.Equal(got, want) {
		t.Fatalf("SRV udp: %q, want %q", got, want)
	}

	r = ask(t, addr, "udp", "10.0.96.10.in-addr.arpa.", mdns.TypePTR)
	if got, want := rrStrings(r.Answer), []string{"10.0.96.10.in-addr.arpa. 5 ptr web.shop.svc.cluster.local."}; !slices.Equal(got, want) {
		t.Fatalf("PTR: %q, want %q", got, want)
	}

	// NODATA: the name exists, not with that type.
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.shop.svc.cluster.local.", mdns.TypeAAAA},
		{"web.shop.svc.cluster.local.", mdns.TypeTXT},
		{"_http._tcp.web.shop.svc.cluster.local.", mdns.TypeA},
		{"_tcp.web.shop.svc.cluster.local.", mdns.TypeA}, // empty non-terminal
		{"shop.svc.cluster.local.", mdns.TypeA},          // the namespace
		{"svc.cluster.local.", mdns.TypeA},
		{"cluster.local.", mdns.TypeA},
	} {
		r = ask(t, addr, "udp", q.name, q.qtype)
		if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
			t.Fatalf("%s %s: want NODATA with SOA, got %v", q.name, mdns.TypeToString[q.qtype], r)
		}
		soa, ok := r.Ns[0].(*mdns.SOA)
		if !ok || soa.Hdr.Name != "cluster.local." || soa.Hdr.Ttl != 5 || soa.Minttl != 5 {
			t.Fatalf("%s: authority %v", q.name, r.Ns)
		}
	}
	// The port without a name has no SRV record, and ports are not
	// guessed: NXDOMAIN.
	r = ask(t, addr, "udp", "_https._tcp.web.shop.svc.cluster.local.", mdns.TypeSRV)
	if r.Rcode != mdns.RcodeNameError {
		t.Fatalf("unknown port: %v", r)
	}
	// Endpoints of a ClusterIP service have no names unless they carry a
	// hostname.
	r = ask(t, addr, "udp", "10-244-1-5.web.shop.svc.cluster.local.", mdns.TypeA)
	if r.Rcode != mdns.RcodeNameError {
		t.Fatalf("endpoint of a ClusterIP service: %v", r)
	}

	// The apex has its SOA.
	r = ask(t, addr, "udp", "cluster.local.", mdns.TypeSOA)
	if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != mdns.TypeSOA {
		t.Fatalf("apex SOA: %v", r)
	}
}

func TestIPv6AndDualStack(t *testing.T) {
	s, addr := newServer(t, nil)
	v6 := service("default", "six", "fd00:96::a", port{"http", "", 80})
	s.Upsert(v6)
	dual := service("default", "dual", "10.96.0.20")
	dual.Spec.ClusterIPs = []string{"10.96.0.20", "fd00:96::14"}
	s.Upsert(dual)

	r := ask(t, addr, "udp", "six.default.svc.cluster.local.", mdns.TypeAAAA)
	if got, want := rrStrings(r.Answer), []string{"six.default.svc.cluster.local. 5 aaaa fd00:96::a"}; !slices.Equal(got, want) {
		t.Fatalf("AAAA: %q", got)
	}
	r = ask(t, addr, "udp", "six.default.svc.cluster.local.", mdns.TypeA)
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("A of an IPv6 service: want NODATA, got %v", r)
	}
	r = ask(t, addr, "udp", "_http._tcp.six.default.svc.cluster.local.", mdns.TypeSRV)
	if got, want := rrStrings(r.Extra), []string{"six.default.svc.cluster.local. 5 aaaa fd00:96::a"}; !slices.Equal(got, want) {
		t.Fatalf("SRV additional: %q", got)
	}
	rev, _ := mdns.ReverseAddr("fd00:96::a")
	r = ask(t, addr, "udp", rev, mdns.TypePTR)
	if got, want := rrStrings(r.Answer), []string{rev + " 5 ptr six.default.svc.cluster.local."}; !slices.Equal(got, want) {
		t.Fatalf("PTR: %q", got)
	}
	for qt, want := range map[uint16]string{mdns.TypeA: "10.96.0.20", mdns.TypeAAAA: "fd00:96::14"} {
		r = ask(t, addr, "udp", "dual.default.svc.cluster.local.", qt)
		if len(r.Answer) != 1 || !slices.Contains(rrStrings(r.Answer), "dual.default.svc.cluster.local. 5 "+strings.ToLower(mdns.TypeToString[qt])+" "+want) {
			t.Fatalf("dual %s: %v", mdns.TypeToString[qt], r.Answer)
		}
	}
}

func TestHeadlessService(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("db", "pg", "None", port{"sql", "TCP", 5432}))
	s.Upsert(endpoints("db", "pg", []epAddr{
		{ip: "10.244.1.7", hostname: "pg-0"},
		{ip: "10.244.2.8", hostname: "pg-1"},
		{ip: "10.244.3.9"},
		{ip: "10.244.4.10", hostname: "pg-2", notReady: true},
	}, port{"sql", "TCP", 5432}))

	r := ask(t, addr, "udp", "pg.db.svc.cluster.local.", mdns.TypeA)
	want := []string{
		"pg.db.svc.cluster.local. 5 a 10.244.1.7",
		"pg.db.svc.cluster.local. 5 a 10.244.2.8",
		"pg.db.svc.cluster.local. 5 a 10.244.3.9",
	}
	if got := rrStrings(r.Answer); !slices.Equal(got, want) {
		t.Fatalf("headless A: %q, want %q (ready addresses only)", got, want)
	}
	r = ask(t, addr, "udp", "pg-1.pg.db.svc.cluster.local.", mdns.TypeA)
	if got := rrStrings(r.Answer); !slices.Equal(got, []string{"pg-1.pg.db.svc.cluster.local. 5 a 10.244.2.8"}) {
		t.Fatalf("hostname A: %q", got)
	}
	r = ask(t, addr, "udp", "10-244-3-9.pg.db.svc.cluster.local.", mdns.TypeA)
	if got := rrStrings(r.Answer); !slices.Equal(got, []string{"10-244-3-9.pg.db.svc.cluster.local. 5 a 10.244.3.9"}) {
		t.Fatalf("dashed-IP A: %q", got)
	}
	r = ask(t, addr, "udp", "pg-2.pg.db.svc.cluster.local.", mdns.TypeA)
	if r.Rcode != mdns.RcodeNameError {
		t.Fatalf("not-ready endpoint published: %v", r)
	}
	r = ask(t, addr, "udp", "_sql._tcp.pg.db.svc.cluster.local.", mdns.TypeSRV)
	wantSRV := []string{
		"_sql._tcp.pg.db.svc.cluster.local. 5 srv 0 33 5432 10-244-3-9.pg.db.svc.cluster.local.",
		"_sql._tcp.pg.db.svc.cluster.local. 5 srv 0 33 5432 pg-0.pg.db.svc.cluster.local.",
		"_sql._tcp.pg.db.svc.cluster.local. 5 srv 0 33 5432 pg-1.pg.db.svc.cluster.local.",
	}
	if got := rrStrings(r.Answer); !slices.Equal(got, wantSRV) {
		t.Fatalf("headless SRV: %q, want %q", got, wantSRV)
	}
	wantExtra := []string{
		"10-244-3-9.pg.db.svc.cluster.local. 5 a 10.244.3.9",
		"pg-0.pg.db.svc.cluster.local. 5 a 10.244.1.7",
		"pg-1.pg.db.svc.cluster.local. 5 a 10.244.2.8",
	}
	if got := rrStrings(r.Extra); !slices.Equal(got, wantExtra) {
		t.Fatalf("headless SRV additional: %q, want %q", got, wantExtra)
	}
	// Endpoints with a hostname have a PTR record.
	r = ask(t, addr, "udp", "7.1.244.10.in-addr.arpa.", mdns.TypePTR)
	if got := rrStrings(r.Answer); !slices.Equal(got, []string{"7.1.244.10.in-addr.arpa. 5 ptr pg-0.pg.db.svc.cluster.local."}) {
		t.Fatalf("endpoint PTR: %q", got)
	}
	// A headless service with no endpoints exists: NODATA.
	s.Delete("Endpoints", "db", "pg")
	r = ask(t, addr, "udp", "pg.db.svc.cluster.local.", mdns.TypeA)
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 {
		t.Fatalf("headless without endpoints: %v", r)
	}
	r = ask(t, addr, "udp", "pg-0.pg.db.svc.cluster.local.", mdns.TypeA)
	if r.Rcode != mdns.RcodeNameError {
		t.Fatalf("endpoint name after its Endpoints went: %v", r)
	}
}

func TestHostnameUnderClusterIPService(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("default", "kv", "10.96.0.30"))
	s.Upsert(endpoints("default", "kv", []epAddr{{ip: "10.244.0.3", hostname: "kv-0"}, {ip: "10.244.0.4"}}))
	r := ask(t, addr, "udp", "kv-0.kv.default.svc.cluster.local.", mdns.TypeA)
	if got := rrStrings(r.Answer); !slices.Equal(got, []string{"kv-0.kv.default.svc.cluster.local. 5 a 10.244.0.3"}) {
		t.Fatalf("hostname under ClusterIP: %q", got)
	}
	r = ask(t, addr, "udp", "kv.default.svc.cluster.local.", mdns.TypeA)
	if got := rrStrings(r.Answer); !slices.Equal(got, []string{"kv.default.svc.cluster.local. 5 a 10.96.0.30"}) {
		t.Fatalf("ClusterIP answers its IP only: %q", got)
	}
}

func TestPublishNotReadyAddresses(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(endpoints("db", "pg", []epAddr{{ip: "10.244.1.7", hostname: "pg-0"}, {ip: "10.244.2.8", hostname: "pg-1", notReady: true}}, port{"sql", "TCP", 5432}))
	svc := service("db", "pg", "None", port{"sql", "TCP", 5432})
	s.Upsert(svc)
	if r := ask(t, addr, "udp", "pg.db.svc.cluster.local.", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("ready only: %v", r.Answer)
	}
	// The index keeps the objects it is given: a change is a new object.
	svc = service("db", "pg", "None", port{"sql", "TCP", 5432})
	svc.Spec.PublishNotReadyAddresses = true
	s.Upsert(svc)
	if r := ask(t, addr, "udp", "pg.db.svc.cluster.local.", mdns.TypeA); len(r.Answer) != 2 {
		t.Fatalf("publishNotReadyAddresses: %v", r.Answer)
	}
	if r := ask(t, addr, "udp", "pg-1.pg.db.svc.cluster.local.", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("publishNotReadyAddresses, hostname: %v", r.Answer)
	}
	if r := ask(t, addr, "udp", "_sql._tcp.pg.db.svc.cluster.local.", mdns.TypeSRV); len(r.Answer) != 2 {
		t.Fatalf("publishNotReadyAddresses, SRV: %v", r.Answer)
	}
	s.Upsert(service("db", "pg", "None", port{"sql", "TCP", 5432}))
	if r := ask(t, addr, "udp", "pg-1.pg.db.svc.cluster.local.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("after turning it off: %v", r)
	}
}

func TestNXDomain(t *testing.T) {
	s, addr := newServer(t, func(c *Config) { c.NegativeTTL = 7 * time.Second; c.TTL = 3 * time.Second })
	s.Upsert(service("default", "web", "10.96.0.10"))
	for _, name := range []string{
		"nope.default.svc.cluster.local.",
		"web.nope.svc.cluster.local.",
		"nope.svc.cluster.local.",
		"google.com.default.svc.cluster.local.", // the ndots:5 search path
		"x.web.default.svc.cluster.local.",
		"pod.cluster.local.",
	} {
		for _, network := range []string{"udp", "tcp"} {
			r := ask(t, addr, network, name, mdns.TypeA)
			if r.Rcode != mdns.RcodeNameError || !r.Authoritative || len(r.Answer) != 0 || len(r.Ns) != 1 {
				t.Fatalf("%s over %s: want NXDOMAIN with SOA, got %v", name, network, r)
			}
			soa := r.Ns[0].(*mdns.SOA)
			if soa.Hdr.Ttl != 7 || soa.Minttl != 7 || soa.Hdr.Name != "cluster.local." {
				t.Fatalf("SOA %v", soa)
			}
		}
	}
	r := ask(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA)
	if r.Answer[0].Header().Ttl != 3 {
		t.Fatalf("record TTL %d, want 3", r.Answer[0].Header().Ttl)
	}
	if st := s.Stats(); st.NXDomain != 12 || st.Forwarded != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCaseInsensitive(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("Shop", "Web", "10.96.0.10", port{"HTTP", "TCP", 80}))
	for _, name := range []string{"web.shop.svc.cluster.local.", "WEB.Shop.SVC.Cluster.LOCAL.", "wEb.sHoP.sVc.ClUsTeR.lOcAl."} {
		for _, edns := range []bool{false, true} {
			r, err := exchange(addr, "udp", name, mdns.TypeA, func(m *mdns.Msg) {
				if edns {
					m.SetEdns0(1232, true)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Answer) != 1 || r.Question[0].Name != name || r.Answer[0].Header().Name != name {
				t.Fatalf("%s: question/owner must echo the client's spelling: %v", name, r)
			}
			if opt := r.IsEdns0(); (opt != nil) != edns || edns && !opt.Do() {
				t.Fatalf("%s: OPT %v, want one only when asked (DO echoed)", name, opt)
			}
		}
	}
	r := ask(t, addr, "udp", "_Http._TCP.WEB.shop.svc.cluster.local.", mdns.TypeSRV)
	if len(r.Answer) != 1 {
		t.Fatalf("SRV in mixed case: %v", r)
	}
}

func TestUpdatesVisibleAtOnce(t *testing.T) {
	s, addr := newServer(t, nil)
	name := "web.default.svc.cluster.local."
	a := func() []string { return rrStrings(ask(t, addr, "udp", name, mdns.TypeA).Answer) }

	s.Upsert(service("default", "web", "10.96.0.10"))
	if got := a(); !slices.Equal(got, []string{name + " 5 a 10.96.0.10"}) {
		t.Fatalf("after create: %q", got)
	}
	s.Upsert(service("default", "web", "10.96.0.11"))
	if got := a(); !slices.Equal(got, []string{name + " 5 a 10.96.0.11"}) {
		t.Fatalf("after update: %q", got)
	}
	rev := ask(t, addr, "udp", "10.0.96.10.in-addr.arpa.", mdns.TypePTR)
	if len(rev.Answer) != 0 {
		t.Fatalf("old PTR still there: %v", rev)
	}
	// Turning it headless answers the endpoints.
	s.Upsert(endpoints("default", "web", []epAddr{{ip: "10.244.0.9"}}))
	s.Upsert(service("default", "web", "None"))
	if got := a(); !slices.Equal(got, []string{name + " 5 a 10.244.0.9"}) {
		t.Fatalf("after headless: %q", got)
	}
	s.Upsert(endpoints("default", "web", []epAddr{{ip: "10.244.0.9"}, {ip: "10.244.0.10", notReady: true}}))
	s.Upsert(endpoints("default", "web", []epAddr{{ip: "10.244.0.10"}}))
	if got := a(); !slices.Equal(got, []string{name + " 5 a 10.244.0.10"}) {
		t.Fatalf("after endpoints change: %q", got)
	}
	s.Delete("Service", "default", "web")
	if r := ask(t, addr, "udp", name, mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("after delete: %v", r)
	}
	// The namespace went with its last service.
	if r := ask(t, addr, "udp", "default.svc.cluster.local.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("namespace after its last service: %v", r)
	}
	// Endpoints without their Service publish nothing; the Service coming
	// back picks them up.
	s.Upsert(service("default", "web", "None"))
	if got := a(); !slices.Equal(got, []string{name + " 5 a 10.244.0.10"}) {
		t.Fatalf("after re-create: %q", got)
	}

	// Replace: exactly the given objects remain.
	s.Replace([]api.Object{service("other", "api", "10.96.1.1"), endpoints("default", "web", nil)})
	if r := ask(t, addr, "udp", name, mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("after Replace without it: %v", r)
	}
	if got := rrStrings(ask(t, addr, "udp", "api.other.svc.cluster.local.", mdns.TypeA).Answer); len(got) != 1 {
		t.Fatalf("after Replace: %q", got)
	}
	// Everything the index made is gone again but the fixed names.
	s.Replace(nil)
	if n := s.Names(); n != 2 {
		t.Fatalf("after Replace(nil): %d names left, want 2 (apex, svc)", n)
	}
	// Other kinds are ignored.
	pod := &api.Pod{}
	pod.Name = "x"
	s.Upsert(pod)
	s.Delete("Pod", "default", "x")
}
