package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func packQuery(t testing.TB, id uint16, name string, qtype uint16, edit func(*mdns.Msg)) []byte {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawUDP sends datagrams to the server and reads what comes back.
type rawUDP struct {
	t testing.TB
	c *net.UDPConn
}

func dialRaw(t testing.TB, addr string) *rawUDP {
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawUDP{t, c}
}

func (r *rawUDP) send(b []byte) {
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawUDP) recv() *mdns.Msg {
	r.t.Helper()
	buf := make([]byte, 65536)
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := r.c.Read(buf)
	if err != nil {
		r.t.Fatalf("no answer: %v", err)
	}
	m := new(mdns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		// FORMERR answers carry the header alone; that unpacks too.
		r.t.Fatalf("answer does not unpack: %v", err)
	}
	return m
}

func checkInvariant(t *testing.T, s *Server) {
	t.Helper()
	st := s.Stats()
	if st.Queries != st.Answered+st.Forwarded+st.Rejected+st.Dropped {
		t.Fatalf("stats do not add up: %+v", st)
	}
}

func TestBadInputDroppedAndCounted(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("default", "web", "10.96.0.10"))
	raw := dialRaw(t, addr)
	valid := packQuery(t, 7, "web.default.svc.cluster.local.", mdns.TypeA, nil)

	response := packQuery(t, 9, "web.default.svc.cluster.local.", mdns.TypeA, func(m *mdns.Msg) { m.Response = true })
	drops := []struct {
		name string
		msg  []byte
	}{
		{"too short for a header", []byte{1, 2, 3, 4, 5}},
		{"over 512 bytes without EDNS0", append(append([]byte(nil), valid...), make([]byte, 600)...)},
		{"over MaxQuerySize", append(packQuery(t, 8, "a.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(4096, false) }), make([]byte, MaxQuerySize)...)},
		{"a response", response},
	}
	for i, d := range drops {
		raw.send(d.msg)
		waitFor(t, d.name+" to be dropped", func() bool { return s.Stats().Dropped == uint64(i+1) })
		// Nothing came back for it: the next answer is the next query's.
		binary.BigEndian.PutUint16(valid, uint16(100+i))
		raw.send(valid)
		if r := raw.recv(); r.Id != uint16(100+i) || len(r.Answer) != 1 {
			t.Fatalf("after %s: got %v", d.name, r)
		}
	}

	rejects := []struct {
		name  string
		msg   []byte
		rcode int
	}{
		{"header only, one question announced", []byte{0, 42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, mdns.RcodeFormatError},
		{"name runs past the end", []byte{0, 42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 'a', 'b'}, mdns.RcodeFormatError},
		{"two questions", packQuery(t, 42, "a.cluster.local.", mdns.TypeA, func(m *mdns.Msg) {
			m.Question = append(m.Question, m.Question[0])
		}), mdns.RcodeFormatError},
		{"opcode UPDATE", packQuery(t, 42, "cluster.local.", mdns.TypeSOA, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeUpdate }), mdns.RcodeNotImplemented},
		{"class CHAOS", packQuery(t, 42, "version.bind.", mdns.TypeTXT, func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }), mdns.RcodeRefused},
		{"AXFR", packQuery(t, 42, "cluster.local.", mdns.TypeAXFR, nil), mdns.RcodeRefused},
		{"EDNS version 1", packQuery(t, 42, "web.default.svc.cluster.local.", mdns.TypeA, func(m *mdns.Msg) {
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
		}), mdns.RcodeBadVers},
	}
	for _, rj := range rejects {
		raw.send(rj.msg)
		r := raw.recv()
		if r.Id != 42 || !r.Response || r.Rcode != rj.rcode {
			t.Fatalf("%s: got rcode %s id %d, want %s", rj.name, mdns.RcodeToString[r.Rcode], r.Id, mdns.RcodeToString[rj.rcode])
		}
	}
	st := s.Stats()
	if st.Dropped != uint64(len(drops)) || st.Rejected != uint64(len(rejects)) {
		t.Fatalf("stats %+v", st)
	}
	checkInvariant(t, s)
}

func TestTCP(t *testing.T) {
	s, addr := newServer(t, func(c *Config) { c.TCPIdleTimeout = 300 * time.Millisecond; c.MaxTCPConns = 2 })
	s.Upsert(service("default", "web", "10.96.0.10"))
	dial := func() net.Conn {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	read := func(c net.Conn) (*mdns.Msg, error) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil, err
		}
		b := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		m := new(mdns.Msg)
		return m, m.Unpack(b)
	}

	// Pipelined queries, one write, answered in order.
	c := dial()
	var batch []byte
	for i := range 3 {
		batch = append(batch, frame(packQuery(t, uint16(i+1), fmt.Sprintf("n%d.default.svc.cluster.local.", i), mdns.TypeA, nil))...)
	}
	batch = append(batch, frame(packQuery(t, 4, "web.default.svc.cluster.local.", mdns.TypeA, nil))...)
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r, err := read(c)
		if err != nil || r.Id != uint16(i+1) {
			t.Fatalf("pipelined answer %d: %v %v", i, r, err)
		}
	}
	// Idle for longer than TCPIdleTimeout: closed.
	if _, err := read(c); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}

	// A message announced larger than MaxQuerySize closes the connection.
	c = dial()
	c.Write([]byte{0x20, 0x00}) // 8192
	if _, err := read(c); !errors.Is(err, io.EOF) {
		t.Fatalf("oversized message: read %v, want EOF", err)
	}
	waitFor(t, "the oversized message to be counted", func() bool { return s.Stats().Dropped == 1 })

	checkInvariant(t, s)

	// MaxTCPConns: a third connection is closed at once (a server whose
	// idle timeout cannot free a slot meanwhile).
	s, addr = newServer(t, func(c *Config) { c.MaxTCPConns = 2 })
	s.Upsert(service("default", "web", "10.96.0.10"))
	c1, c2 := dial(), dial()
	for i, c := range []net.Conn{c1, c2} {
		c.Write(frame(packQuery(t, uint16(10+i), "web.default.svc.cluster.local.", mdns.TypeA, nil)))
		if r, err := read(c); err != nil || r.Id != uint16(10+i) {
			t.Fatalf("conn %d: %v %v", i, r, err)
		}
	}
	c3 := dial()
	c3.Write(frame(packQuery(t, 12, "web.default.svc.cluster.local.", mdns.TypeA, nil)))
	if _, err := read(c3); err == nil {
		t.Fatal("a connection over MaxTCPConns was served")
	}
	checkInvariant(t, s)
}

func TestLargeAnswersTruncatedOverUDP(t *testing.T) {
	s, addr := newServer(t, nil)
	s.Upsert(service("default", "big", "None", port{"http", "TCP", 80}))
	var as []epAddr
	for i := range 100 {
		as = append(as, epAddr{ip: fmt.Sprintf("10.244.0.%d", i+1)})
	}
	s.Upsert(endpoints("default", "big", as, port{"http", "TCP", 80}))

	r := ask(t, addr, "udp", "big.default.svc.cluster.local.", mdns.TypeA)
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) == 100 {
		t.Fatalf("UDP: TC=%v with %d records", r.Truncated, len(r.Answer))
	}
	r, err := exchange(addr, "udp", "big.default.svc.cluster.local.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(4096, false) })
	if err != nil || !r.Truncated || len(r.Answer) < 60 {
		// 1232 bytes hold 75 A records.
		t.Fatalf("UDP with EDNS0: TC=%v with %d records (%v)", r.Truncated, len(r.Answer), err)
	}
	r = ask(t, addr, "tcp", "big.default.svc.cluster.local.", mdns.TypeA)
	if r.Truncated || len(r.Answer) != 100 {
		t.Fatalf("TCP: TC=%v with %d records", r.Truncated, len(r.Answer))
	}
	r = ask(t, addr, "tcp", "_http._tcp.big.default.svc.cluster.local.", mdns.TypeSRV)
	if r.Truncated || len(r.Answer) != 100 || len(r.Extra) != 100 {
		t.Fatalf("TCP SRV: TC=%v with %d records, %d additional", r.Truncated, len(r.Answer), len(r.Extra))
	}
	if st := s.Stats(); st.Truncated != 2 {
		t.Fatalf("stats %+v", st)
	}
	// ANY gets everything the name has.
	r = ask(t, addr, "tcp", "big.default.svc.cluster.local.", mdns.TypeANY)
	if len(r.Answer) != 100 {
		t.Fatalf("ANY: %d records", len(r.Answer))
	}
	checkInvariant(t, s)
}
