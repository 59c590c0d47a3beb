package dns

import (
	"context"
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// A burst of queries on one socket is answered whole (on Linux the server
// reads and writes them in batches).
func TestUDPBurst(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("default", "web", "10.96.0.10"))
	raw := dialRaw(t, addr)
	raw.c.SetReadBuffer(1 << 20)
	// 100 small datagrams fit the default socket buffers (212,992 bytes
	// at about 1 KiB of accounting each), so none is lost to a slow reader.
	const n = 100
	for i := range n {
		name := "web.default.svc.cluster.local."
		if i%3 == 0 {
			name = "nope.default.svc.cluster.local."
		}
		raw.send(packQuery(t, uint16(i), name, mdns.TypeA, nil))
	}
	seen := map[uint16]bool{}
	for range n {
		r := raw.recv()
		if seen[r.Id] {
			t.Fatalf("id %d answered twice", r.Id)
		}
		seen[r.Id] = true
		if want := r.Id%3 == 0; (r.Rcode == mdns.RcodeNameError) != want {
			t.Fatalf("id %d: %v", r.Id, r)
		}
	}
	checkInvariant(t, s)
}

// plainPacketConn hides *net.UDPConn, so the server reads one datagram at
// a time through the net.PacketConn interface.
type plainPacketConn struct{ net.PacketConn }

func TestServeAnyPacketConn(t *testing.T) {
	up := startUpstream(t)
	cfg := testConfig()
	cfg.Upstreams = []string{up.addr}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Upsert(service("default", "web", "10.96.0.10"))
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(plainPacketConn{pc}, nil) }()
	addr := pc.LocalAddr().String()

	if r := ask(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("local: %v", r)
	}
	if r := ask(t, addr, "udp", "www.example.org.", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("forwarded: %v", r)
	}
	raw := dialRaw(t, addr)
	raw.send(append(packQuery(t, 1, "a.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(4096, false) }), make([]byte, MaxQuerySize)...))
	waitFor(t, "the oversized query to be dropped", func() bool { return s.Stats().Dropped == 1 })
	checkInvariant(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}

// Listen gives SO_REUSEPORT sockets that Serve can share out.
func TestListenReusePort(t *testing.T) {
	pcs, l, err := Listen("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcs) != 3 || pcs[1].LocalAddr().String() != pcs[0].LocalAddr().String() || l.Addr().String() != pcs[0].LocalAddr().String() {
		t.Fatalf("sockets on %v, %v, %v; listener %v", pcs[0].LocalAddr(), pcs[1].LocalAddr(), pcs[2].LocalAddr(), l.Addr())
	}
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.Upsert(service("default", "web", "10.96.0.10"))
	done := make(chan error, 3)
	go func() { done <- s.Serve(pcs[0], l) }()
	go func() { done <- s.Serve(pcs[1], nil) }()
	go func() { done <- s.Serve(pcs[2], nil) }()
	addr := pcs[0].LocalAddr().String()
	// Different client sockets land on different server sockets; all are
	// answered.
	for range 20 {
		if r := ask(t, addr, "udp", "web.default.svc.cluster.local.", mdns.TypeA); len(r.Answer) != 1 {
			t.Fatalf("%v", r)
		}
	}
	if r := ask(t, addr, "tcp", "web.default.svc.cluster.local.", mdns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("tcp: %v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-done; err != ErrServerClosed {
			t.Fatal(err)
		}
	}
}
