package main

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-dev/shoal/consensus/gossip"
)

// counters are one member's bytes on the wire (payloads: UDP and TCP
// headers excluded), encrypted when gossip is.
type counters struct {
	udpOut, udpIn, tcpOut, tcpIn atomic.Int64
}

// total is the sum over members.
func total(cs []*counters) (udpOut, udpIn, tcpOut, tcpIn int64) {
	for _, c := range cs {
		udpOut += c.udpOut.Load()
		udpIn += c.udpIn.Load()
		tcpOut += c.tcpOut.Load()
		tcpIn += c.tcpIn.Load()
	}
	return
}

// countingTransport is the agents' gossip transport (gossip.Transport)
// with every byte counted: packets on the way out and in, streams dialled
// and accepted.
type countingTransport struct {
	*gossip.Transport
	c       *counters
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{} // Shutdown began: drop what arrives
	stopped chan struct{} // the Transport has stopped: forwarders end
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

// newCountingTransport listens on a free port of addr.
func newCountingTransport(addr string, logger *slog.Logger) (*countingTransport, error) {
	nt, err := gossip.NewTransport(addr, 0, logger)
	if err != nil {
		return nil, err
	}
	t := &countingTransport{
		Transport: nt,
		c:         &counters{},
		packets:   make(chan *memberlist.Packet),
		streams:   make(chan net.Conn),
		done:      make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	go t.forwardPackets()
	go t.forwardStreams()
	return t, nil
}

// The forwarders keep reading the Transport's channels until it has
// stopped: its listeners block on them, and its Shutdown waits for its
// listeners.
func (t *countingTransport) forwardPackets() {
	in := t.Transport.PacketCh()
	for {
		select {
		case p := <-in:
			t.c.udpIn.Add(int64(len(p.Buf)))
			select {
			case t.packets <- p:
			case <-t.done:
			}
		case <-t.stopped:
			return
		}
	}
}

func (t *countingTransport) forwardStreams() {
	in := t.Transport.StreamCh()
	for {
		select {
		case c := <-in:
			select {
			case t.streams <- &countingConn{Conn: c, c: t.c}:
			case <-t.done:
				c.Close()
			}
		case <-t.stopped:
			return
		}
	}
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *countingTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.c.udpOut.Add(int64(len(b)))
	return t.Transport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.c.udpOut.Add(int64(len(b)))
	return t.Transport.WriteToAddress(b, a)
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.Transport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, c: t.c}, nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.Transport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, c: t.c}, nil
}

// Shutdown is called once, by memberlist's Shutdown (or by the bench for a
// member whose memberlist never started).
func (t *countingTransport) Shutdown() error {
	close(t.done)
	err := t.Transport.Shutdown()
	close(t.stopped)
	return err
}

// countingConn counts a stream's bytes into its member's counters.
type countingConn struct {
	net.Conn
	c *counters
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.tcpIn.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.tcpOut.Add(int64(n))
	return n, err
}
