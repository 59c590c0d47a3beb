package dns

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// fakeUpstream is a DNS server on 127.0.0.1 (UDP and TCP, one port) that
// answers every A question with 192.0.2.1, and big.example. with 60
// addresses, truncated to fit over UDP.
type fakeUpstream struct {
	addr    string
	queries atomic.Int64
	tcp     atomic.Int64
}

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	var pc net.PacketConn
	var l net.Listener
	var err error
	for range 20 {
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, m *mdns.Msg) {
		u.queries.Add(1)
		_, overTCP := w.RemoteAddr().(*net.TCPAddr)
		if overTCP {
			u.tcp.Add(1)
		}
		r := new(mdns.Msg)
		r.SetReply(m)
		r.RecursionAvailable = true
		q := m.Question[0]
		n := 1
		if q.Name == "big.example." {
			n = 60
		}
		if q.Qtype == mdns.TypeA {
			for i := range n {
				r.Answer = append(r.Answer, &mdns.A{
					Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
					A:   net.IPv4(192, 0, 2, byte(1+i)),
				})
			}
		}
		if !overTCP {
			size := 512
			if opt := m.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			r.Truncate(size)
		}
		w.WriteMsg(r)
	})
	us := &mdns.Server{PacketConn: pc, Handler: h}
	ts := &mdns.Server{Listener: l, Handler: h}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() {
		us.Shutdown()
		ts.Shutdown()
	})
	return u
}

func TestForwardsOtherNames(t *testing.T) {
	up := startUpstream(t)
	s, addr := newServer(t, func(c *Config) { c.Upstreams = []string{up.addr} })
	s.Upsert(service("default", "web", "10.96.0.10"))

	for _, network := range []string{"udp", "tcp"} {
		r := ask(t, addr, network, "www.Example.org.", mdns.TypeA)
		if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 || r.Question[0].Name != "www.Example.org." {
			t.Fatalf("forwarded over %s: %v", network, r)
		}
		if a := r.Answer[0].(*mdns.A); !a.A.Equal(net.IPv4(192, 0, 2, 1)) {
			t.Fatalf("forwarded answer %v", a)
		}
	}
	if up.tcp.Load() != 1 {
		t.Fatalf("a TCP query went upstream over TCP %d times, want 1", up.tcp.Load())
	}
	// The cluster domain is never forwarded, known name or not.
	before := up.queries.Load()
	ask(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA)
	ask(t, addr, "udp", "nope.default.svc.cluster.local.", mdns.TypeA)
	ask(t, addr, "udp", "cluster.local.", mdns.TypeMX)
	if up.queries.Load() != before {
		t.Fatal("a query for the cluster domain went upstream")
	}
	// A reverse name the index does not have goes upstream; one it has
	// does not.
	ask(t, addr, "udp", "10.0.96.10.in-addr.arpa.", mdns.TypePTR)
	if up.queries.Load() != before {
		t.Fatal("a known PTR went upstream")
	}
	ask(t, addr, "udp", "1.0.0.127.in-addr.arpa.", mdns.TypePTR)
	if up.queries.Load() != before+1 {
		t.Fatal("an unknown PTR did not go upstream")
	}
	if st := s.Stats(); st.Forwarded != 3 || st.ServFail != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestForwardTruncation(t *testing.T) {
	up := startUpstream(t)
	_, addr := newServer(t, func(c *Config) { c.Upstreams = []string{up.addr} })

	// Over UDP the upstream's truncated answer comes back with TC ...
	c := &mdns.Client{Net: "udp", Timeout: 10 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion("big.example.", mdns.TypeA)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.Answer) >= 60 {
		t.Fatalf("UDP: want TC and a partial answer, got TC=%v with %d records", r.Truncated, len(r.Answer))
	}
	// ... and the client's retry over TCP gets all of it.
	r = ask(t, addr, "tcp", "big.example.", mdns.TypeA)
	if r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("TCP: TC=%v with %d records, want 60", r.Truncated, len(r.Answer))
	}
	// A client with a larger EDNS0 buffer gets it all over UDP: 60
	// records fit in 1232 bytes once compressed.
	m.SetEdns0(4096, false)
	r, _, err = c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	r.Compress = true
	if r.Truncated || len(r.Answer) != 60 || r.Len() > MaxUDPAnswer {
		t.Fatalf("EDNS0 4096: TC=%v, %d records in %d bytes", r.Truncated, len(r.Answer), r.Len())
	}
}

func TestForwardServFailPromptly(t *testing.T) {
	closed := func() string {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := pc.LocalAddr().String()
		pc.Close()
		return a
	}
	silent := func() string {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc.LocalAddr().String()
	}
	const budget = 1500 * time.Millisecond
	for _, tc := range []struct {
		name      string
		upstreams []string
		max       time.Duration // the answer must come before this
	}{
		// A closed port refuses at once: no need to wait the budget out.
		{"closed port", []string{closed()}, budget},
		// A silent upstream costs the budget, and not more.
		{"silent", []string{silent()}, budget + 3*time.Second},
		{"silent and closed", []string{silent(), closed()}, budget + 3*time.Second},
		{"none", nil, budget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := newServer(t, func(c *Config) {
				c.Upstreams = tc.upstreams
				c.ForwardTimeout = budget
			})
			for _, network := range []string{"udp", "tcp"} {
				start := time.Now()
				r := ask(t, addr, network, "www.example.org.", mdns.TypeA)
				took := time.Since(start)
				if r.Rcode != mdns.RcodeServerFailure {
					t.Fatalf("%s: %v", network, r)
				}
				if took > tc.max {
					t.Fatalf("%s: SERVFAIL after %v, want within %v", network, took, tc.max)
				}
			}
			if st := s.Stats(); st.ServFail != 2 || st.Forwarded != 2 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestForwardFallsThroughToNextUpstream(t *testing.T) {
	up := startUpstream(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	_, addr := newServer(t, func(c *Config) { c.Upstreams = []string{dead, up.addr} })
	r := ask(t, addr, "udp", "www.example.org.", mdns.TypeA)
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("second upstream: %v", r)
	}
}

func TestForwardOverload(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s, addr := newServer(t, func(c *Config) {
		c.Upstreams = []string{silent.LocalAddr().String()}
		c.MaxForwards = 1
		c.ForwardTimeout = 3 * time.Second
	})
	// The first query holds the only slot for 3 s ...
	first := make(chan *mdns.Msg, 1)
	go func() {
		r, _ := exchange(addr, "udp", "one.example.", mdns.TypeA, nil)
		first <- r
	}()
	waitFor(t, "the first query to be forwarded", func() bool { return s.Stats().Forwarded == 1 })
	// ... so the second gets SERVFAIL without waiting.
	start := time.Now()
	r := ask(t, addr, "udp", "two.example.", mdns.TypeA)
	if r.Rcode != mdns.RcodeServerFailure || time.Since(start) > 2*time.Second {
		t.Fatalf("overload: %v after %v", r, time.Since(start))
	}
	if r := <-first; r == nil || r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("first: %v", r)
	}
}

// Shutdown waits for a forwarded query in flight and its answer is sent.
func TestShutdownAnswersInFlight(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s, err := New(func() Config {
		c := testConfig()
		c.Upstreams = []string{silent.LocalAddr().String()}
		c.ForwardTimeout = 1 * time.Second
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc, nil) }()
	got := make(chan *mdns.Msg, 1)
	go func() {
		r, _ := exchange(pc.LocalAddr().String(), "udp", "slow.example.", mdns.TypeA, nil)
		got <- r
	}()
	waitFor(t, "the query to be forwarded", func() bool { return s.Stats().Forwarded == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
	if r := <-got; r == nil || r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("in-flight query: %v", r)
	}
	// Serve after Shutdown refuses at once and closes what it was given.
	pc2, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(pc2, nil); err != ErrServerClosed {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := pc2.WriteTo([]byte{0}, pc2.LocalAddr()); err == nil {
		t.Fatal("socket handed to Serve after Shutdown is still open")
	}
}

// A Shutdown whose context ends gives up on forwarded queries at once.
func TestShutdownForced(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cfg := testConfig()
	cfg.Upstreams = []string{silent.LocalAddr().String()}
	cfg.ForwardTimeout = time.Minute
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, l, err := Listen("127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc[0], l) }()
	addr := pc[0].LocalAddr().String()
	go exchange(addr, "udp", "slow.example.", mdns.TypeA, nil)
	go exchange(addr, "tcp", "slow.example.", mdns.TypeA, nil)
	waitFor(t, "two queries to be forwarded", func() bool { return s.Stats().Forwarded == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("forced Shutdown took %v", took)
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}
