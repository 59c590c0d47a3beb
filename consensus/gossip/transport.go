package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// Transport is memberlist's transport over one UDP socket (probes and
// gossip) and one TCP listener (state exchanges) on the same port, as
// memberlist's own NetTransport. It differs where that one costs a large
// cluster CPU: NetTransport reads every packet into a new 64 KiB buffer
// and hands memberlist a slice of it, so each packet allocates 64 KiB and
// a packet waiting in memberlist's hand-off queue keeps all of it alive;
// at 250 members in one process those buffers were most of the garbage
// collector's work. Transport reads into one buffer and hands on an exact
// copy of the packet. Numeric addresses (all memberlist sends to) are
// parsed without a resolver call.
type Transport struct {
	bindIP   net.IP
	port     int
	tcp      *net.TCPListener
	udp      *net.UDPConn
	packets  chan *memberlist.Packet
	streams  chan net.Conn
	log      *slog.Logger
	shutdown atomic.Bool
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Transport limits.
const (
	// maxPacket is the largest UDP payload: the read buffer's size.
	maxPacket = 65536
	// udpRecvBuffer is the socket receive buffer asked for (halved until
	// the kernel takes it): a member receives bursts during joins.
	udpRecvBuffer = 2 << 20
	// bindTries bounds the attempts to find a port free for both UDP
	// and TCP when port 0 is asked for.
	bindTries = 10
)

// NewTransport listens on addr:port, UDP and TCP; port 0 picks a port free
// for both. logger may be nil.
func NewTransport(addr string, port int, logger *slog.Logger) (*Transport, error) {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil, fmt.Errorf("gossip transport: %q is not an IP address", addr)
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("gossip transport: port %d: want 0-65535", port)
	}
	if logger == nil {
		logger = slog.Default()
	}
	t := &Transport{
		bindIP:  ip,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		log:     logger,
	}
	var err error
	for try := 1; ; try++ {
		err = t.bind(ip, port)
		if err == nil || port != 0 || try == bindTries {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip transport: listen on %s: %w", net.JoinHostPort(addr, fmt.Sprint(port)), err)
	}
	t.wg.Add(2)
	go t.acceptStreams()
	go t.readPackets()
	return t, nil
}

// bind opens the TCP listener and then the UDP socket on its port.
func (t *Transport) bind(ip net.IP, port int) error {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return err
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return err
	}
	for size := udpRecvBuffer; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	t.tcp, t.udp, t.port = tcp, udp, port
	return nil
}

// Port is the port both sockets are bound to.
func (t *Transport) Port() int { return t.port }

// FinalAdvertiseAddr gives ip and port when ip is set (port 0: the bound
// port); otherwise the bound address, or a private address of the host's
// when bound to all of them, with the bound port (as NetTransport does).
func (t *Transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		if port == 0 {
			port = t.port
		}
		return a, port, nil
	}
	if !t.bindIP.IsUnspecified() {
		return t.bindIP, t.port, nil
	}
	priv, err := sockaddr.GetPrivateIP()
	if err != nil {
		return nil, 0, fmt.Errorf("looking for a private address to advertise: %w", err)
	}
	a := net.ParseIP(priv)
	if a == nil {
		return nil, 0, errors.New("bound to all addresses, no private address found and none given to advertise")
	}
	return a, t.port, nil
}

// udpAddr parses host:port without a resolver call when host is numeric.
func udpAddr(addr string) (*net.UDPAddr, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return net.UDPAddrFromAddrPort(ap), nil
	}
	return net.ResolveUDPAddr("udp", addr)
}

// WriteTo sends one packet.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	ua, err := udpAddr(addr)
	if err != nil {
		return time.Time{}, err
	}
	// The send time is taken before the write, as NetTransport does:
	// memberlist measures round trips from it.
	now := time.Now()
	_, err = t.udp.WriteTo(b, ua)
	return now, err
}

// WriteToAddress sends one packet to a.Addr.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh delivers the packets received, each in a slice of its own.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout opens a stream.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

// DialAddressTimeout opens a stream to a.Addr.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// StreamCh delivers the streams accepted.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes both sockets and waits for their readers, which stop
// handing on. memberlist calls it once, after it stopped reading.
func (t *Transport) Shutdown() error {
	if t.shutdown.Swap(true) {
		return nil
	}
	t.tcp.Close()
	t.udp.Close()
	t.wg.Wait()
	return nil
}

// acceptStreams hands every accepted connection to memberlist; after an
// error it waits (5 ms, doubling up to 1 s) so a persistent one does not
// spin.
func (t *Transport) acceptStreams() {
	defer t.wg.Done()
	const minWait, maxWait = 5 * time.Millisecond, time.Second
	wait := time.Duration(0)
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			wait = min(max(2*wait, minWait), maxWait)
			t.log.Error("gossip transport: accepting a stream failed", "err", err, "retry in", wait)
			time.Sleep(wait)
			continue
		}
		wait = 0
		t.streams <- c
	}
}

// readPackets reads every packet into one buffer and hands on a copy of
// exactly its length, stamped with the time it was read.
func (t *Transport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			t.log.Error("gossip transport: reading a packet failed", "err", err)
			continue
		}
		if n == 0 {
			continue // memberlist needs at least the message type
		}
		t.packets <- &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: now}
	}
}
