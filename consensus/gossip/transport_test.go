package gossip

import (
	"maps"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// A packet reaches memberlist in a slice of exactly its own length (not a
// view of a 64 KiB read buffer, which would keep the buffer alive while
// the packet waits), and the next packet read does not overwrite it.
func TestTransportPacketsAreExactCopies(t *testing.T) {
	a, err := NewTransport("127.0.0.1", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	b, err := NewTransport("127.0.0.1", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	to := "127.0.0.1:" + strconv.Itoa(b.Port())
	msgs := []string{"first packet", "2nd", "a third, longer than both of the others"}
	for _, m := range msgs {
		if _, err := a.WriteTo([]byte(m), to); err != nil {
			t.Fatal(err)
		}
	}
	var got []*memberlist.Packet
	for range msgs {
		select {
		case p := <-b.PacketCh():
			got = append(got, p)
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d packets of %d", len(got), len(msgs))
		}
	}
	for i, p := range got {
		if string(p.Buf) != msgs[i] {
			t.Errorf("packet %d: %q, want %q", i, p.Buf, msgs[i])
		}
		if cap(p.Buf) > 64 { // a size class above its length at most
			t.Errorf("packet %d: %d bytes in a buffer of %d: a view of the read buffer", i, len(p.Buf), cap(p.Buf))
		}
		if p.From.String() != "127.0.0.1:"+strconv.Itoa(a.Port()) {
			t.Errorf("packet %d from %v, want the sender's port %d", i, p.From, a.Port())
		}
		if p.Timestamp.IsZero() {
			t.Errorf("packet %d has no timestamp", i)
		}
	}
}

// Port 0 binds UDP and TCP to one free port; a stream dialled there is
// accepted and handed on; FinalAdvertiseAddr gives the bound address and
// port unless told otherwise; Shutdown is idempotent.
func TestTransportPortsStreamsAndAdvertise(t *testing.T) {
	tr, err := NewTransport("127.0.0.1", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Port() == 0 || tr.tcp.Addr().(*net.TCPAddr).Port != tr.Port() || tr.udp.LocalAddr().(*net.UDPAddr).Port != tr.Port() {
		t.Fatalf("port %d, tcp %v, udp %v: want one port for both", tr.Port(), tr.tcp.Addr(), tr.udp.LocalAddr())
	}
	if _, err := NewTransport("127.0.0.1", tr.Port(), nil); err == nil {
		t.Errorf("a second transport on port %d: no error", tr.Port())
	}
	addr := "127.0.0.1:" + strconv.Itoa(tr.Port())
	c, err := tr.DialTimeout(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case s := <-tr.StreamCh():
		s.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the dialled stream was not handed on")
	}

	for _, tc := range []struct {
		ip       string
		port     int
		wantIP   string
		wantPort int
	}{
		{"", 0, "127.0.0.1", tr.Port()},
		{"", 7000, "127.0.0.1", tr.Port()}, // as memberlist's NetTransport: no address, the bound port
		{"10.1.2.3", 7000, "10.1.2.3", 7000},
		{"10.1.2.3", 0, "10.1.2.3", tr.Port()},
	} {
		ip, port, err := tr.FinalAdvertiseAddr(tc.ip, tc.port)
		if err != nil || ip.String() != tc.wantIP || port != tc.wantPort {
			t.Errorf("FinalAdvertiseAddr(%q, %d) = %v, %d, %v; want %s, %d", tc.ip, tc.port, ip, port, err, tc.wantIP, tc.wantPort)
		}
	}
	if _, _, err := tr.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Error("FinalAdvertiseAddr of a name: no error")
	}
	if _, err := NewTransport("not-an-ip", 0, nil); err == nil {
		t.Error("NewTransport on a name: no error")
	}
	if _, err := NewTransport("127.0.0.1", 70000, nil); err == nil {
		t.Error("NewTransport on port 70000: no error")
	}

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { tr.Shutdown() })
	}
	wg.Wait()
	if _, err := tr.WriteTo([]byte("x"), addr); err == nil {
		t.Error("WriteTo after Shutdown: no error")
	}
}

// recordingTransport notes the first byte (memberlist's message type) of
// every packet a node sends and of every stream it opens.
type recordingTransport struct {
	*Transport
	mu    sync.Mutex
	types map[byte]int
}

func (r *recordingTransport) note(typ byte) {
	r.mu.Lock()
	r.types[typ]++
	r.mu.Unlock()
}

func (r *recordingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	r.note(b[0])
	return r.Transport.WriteTo(b, addr)
}

func (r *recordingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return r.WriteTo(b, a.Addr)
}

func (r *recordingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := r.Transport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &firstByteConn{Conn: c, r: r}, nil
}

// firstByteConn notes the first byte written on a stream.
type firstByteConn struct {
	net.Conn
	r    *recordingTransport
	once sync.Once
}

func (c *firstByteConn) Write(b []byte) (int, error) {
	if len(b) > 0 {
		c.once.Do(func() { c.r.note(b[0]) })
	}
	return c.Conn.Write(b)
}

// Gossip goes uncompressed: memberlist's LZW compression allocated a
// 64 KiB table for every packet and every state exchange and cost a fifth
// of the CPU of 250 members in one process, to shrink messages of a few
// hundred bytes, or a few hundred KiB at most, on a LAN. Members still read compressed packets (memberlist decodes them
// whatever it sends), so agents of older versions mix with these.
func TestGossipSendsUncompressed(t *testing.T) {
	// memberlist's message types: a state exchange, a compressed message
	const pushPullMsg, compressMsg = 6, 9
	var trs []*recordingTransport
	nodes := make([]*testNode, 3)
	for i := range nodes {
		tr, err := NewTransport("127.0.0.1", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		rt := &recordingTransport{Transport: tr, types: map[byte]int{}}
		trs = append(trs, rt)
		nodes[i] = startNode(t, "u"+strconv.Itoa(i), func(c *Config) { c.Transport = rt })
	}
	for _, nd := range nodes[1:] {
		nd.join(t, nodes[0])
	}
	eventually(t, waitLong, converged(nodes))
	total := 0
	var joiner map[byte]int // what the first joiner sent, copied under its lock
	for i, rt := range trs {
		rt.mu.Lock()
		for typ, n := range rt.types {
			total += n
			if typ == compressMsg {
				t.Errorf("node %d sent %d compressed packets or streams", i, n)
			}
		}
		if i == 1 {
			joiner = maps.Clone(rt.types)
		}
		rt.mu.Unlock()
	}
	if total == 0 || joiner[pushPullMsg] == 0 && joiner[compressMsg] == 0 {
		t.Fatalf("recorded %v from the first joiner: no state exchange seen, the test sees nothing", joiner)
	}
}
