package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/api"
)

// Server answers DNS for the cluster domain from its index and forwards
// other names upstream. Its methods are safe for concurrent use.
type Server struct {
	cfg       Config
	domain    string // lower case, no final dot
	apexWire  string
	ttl       uint32
	negTTL    uint32
	soa       *mdns.SOA
	soaWire   []byte // the SOA as an authority record, uncompressed
	idx       *index
	upstreams atomic.Pointer[[]netip.AddrPort]
	fwdSlots  chan struct{}
	stats     counters

	// stopCtx ends when Shutdown gives up waiting: forwarded queries
	// still waiting on upstreams stop then.
	stopCtx context.Context
	stopNow context.CancelFunc
	lastLog atomic.Int64 // unix nanoseconds of the last rate-limited line

	mu       sync.Mutex
	closing  atomic.Bool
	done     chan struct{}
	pcs      []net.PacketConn
	ls       []net.Listener
	conns    map[net.Conn]struct{}
	tcpSlots chan struct{}
	wg       sync.WaitGroup // every goroutine Serve started
}

// New makes a Server with an empty index. It reads the upstreams from
// cfg.ResolvConfPath when cfg.Upstreams is empty (a missing file leaves
// no upstream, logged).
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		domain:   strings.ToLower(strings.TrimSuffix(cfg.Domain, ".")),
		ttl:      uint32(cfg.TTL / time.Second),
		negTTL:   uint32(cfg.NegativeTTL / time.Second),
		fwdSlots: make(chan struct{}, cfg.MaxForwards),
		done:     make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
		tcpSlots: make(chan struct{}, cfg.MaxTCPConns),
	}
	s.stopCtx, s.stopNow = context.WithCancel(context.Background())
	apex := s.domain + "."
	s.apexWire = wireName(apex)
	s.soa = &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: apex, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: s.negTTL},
		Ns:      "ns.dns." + apex,
		Mbox:    "hostmaster." + apex,
		Serial:  uint32(time.Now().Unix()),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  s.negTTL,
	}
	buf := make([]byte, 512)
	n, err := mdns.PackRR(s.soa, buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	s.soaWire = buf[:n:n]

	ups := cfg.Upstreams
	if len(ups) == 0 && cfg.ResolvConfPath != "" {
		var err error
		if ups, err = ReadResolvConf(cfg.ResolvConfPath); err != nil {
			s.logf("dns: no upstream resolvers: %v", err)
		}
	}
	if err := s.SetUpstreams(ups); err != nil {
		return nil, err
	}
	s.idx = newIndex(s.domain, s.buildEntry)
	return s, nil
}

// SetUpstreams replaces the resolvers for names outside the cluster
// domain ("IP" or "IP:port"); none means such names get SERVFAIL.
func (s *Server) SetUpstreams(upstreams []string) error {
	aps := make([]netip.AddrPort, 0, len(upstreams))
	for _, u := range upstreams {
		ap, err := upstreamAddr(u)
		if err != nil {
			return err
		}
		aps = append(aps, ap)
	}
	s.upstreams.Store(&aps)
	return nil
}

// Upsert adds or replaces a Service or an Endpoints in the index; other
// kinds are ignored. The object is retained and must not be modified
// afterwards (the proxy's are shared and read-only). The change is visible
// to the next query when Upsert returns.
func (s *Server) Upsert(obj api.Object) {
	s.idx.mu.Lock()
	defer s.idx.mu.Unlock()
	s.idx.upsert(obj)
}

// Delete removes a Service or an Endpoints ("Service", "Endpoints"; other
// kinds are ignored) from the index.
func (s *Server) Delete(kind, namespace, name string) {
	s.idx.mu.Lock()
	defer s.idx.mu.Unlock()
	s.idx.delete(kind, namespace, name)
}

// Replace makes the index hold exactly the Services and Endpoints among
// objs (after a relist); the objects are retained, as by Upsert. Names
// whose records did not change are not touched, so queries go on being
// answered throughout.
func (s *Server) Replace(objs []api.Object) {
	s.idx.mu.Lock()
	defer s.idx.mu.Unlock()
	s.idx.replace(objs)
}

// Names returns how many names the index answers for (services, their
// ports and endpoints, reverse names, and the names above them).
func (s *Server) Names() int { return s.idx.table.len() }

// Serve answers queries arriving on pc (UDP) and l (TCP) until Shutdown;
// either may be nil. It takes ownership of both, closes them on Shutdown
// and returns ErrServerClosed. The sockets may come from another network
// namespace. Serve may be called more than once, e.g. with several UDP
// sockets bound with SO_REUSEPORT.
func (s *Server) Serve(pc net.PacketConn, l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		if pc != nil {
			pc.Close()
		}
		if l != nil {
			l.Close()
		}
		return ErrServerClosed
	}
	if pc != nil {
		s.pcs = append(s.pcs, pc)
		for range s.cfg.UDPReaders {
			s.wg.Add(1)
			go s.serveUDP(pc)
		}
	}
	if l != nil {
		s.ls = append(s.ls, l)
		s.wg.Add(1)
		go s.serveTCP(l)
	}
	s.mu.Unlock()
	<-s.done
	return ErrServerClosed
}

// Shutdown stops reading queries, lets the ones in hand (forwarded ones
// included) be answered, then closes the sockets. When ctx ends first it
// closes everything at once and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.done)
	}
	now := time.Now()
	for _, pc := range s.pcs {
		pc.SetReadDeadline(now)
	}
	for _, l := range s.ls {
		l.Close()
	}
	for c := range s.conns {
		c.SetReadDeadline(now)
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = ctx.Err()
		s.stopNow()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		for _, pc := range s.pcs {
			pc.Close()
		}
		s.mu.Unlock()
		<-finished
	}
	s.mu.Lock()
	for _, pc := range s.pcs {
		pc.Close()
	}
	s.mu.Unlock()
	return err
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// logSometimes logs at most one line a second: for errors that come with
// queries (an upstream down), which would otherwise flood the log.
func (s *Server) logSometimes(format string, args ...any) {
	now := time.Now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.logf(format, args...)
}

// serveUDP is one reader of a UDP socket. Answers from the index are
// written by the reader itself; forwarded queries get a goroutine each.
func (s *Server) serveUDP(pc net.PacketConn) {
	defer s.wg.Done()
	if uc, ok := pc.(*net.UDPConn); ok && s.serveUDPBatched(uc) {
		return
	}
	uc, _ := pc.(*net.UDPConn)
	buf := make([]byte, 64*1024)
	out := make([]byte, 0, MaxUDPAnswer)
	var bo backoff
	for {
		var (
			n    int
			from netip.AddrPort
			addr net.Addr
			err  error
		)
		if uc != nil {
			n, from, err = uc.ReadFromUDPAddrPort(buf)
		} else {
			n, addr, err = pc.ReadFrom(buf)
		}
		if err != nil {
			if !s.readFailed(&bo, err) {
				return
			}
			continue
		}
		bo.reset()
		resp, fw := s.handle(buf[:n], out, false)
		send := func(p []byte) {
			if uc != nil {
				uc.WriteToUDPAddrPort(p, from)
			} else {
				pc.WriteTo(p, addr)
			}
		}
		switch {
		case fw != nil:
			s.spawnForward(fw, send)
		case len(resp) > 0:
			send(resp)
			out = resp[:0]
		}
	}
}

// spawnForward runs a forwarding job off the read loop and sends its
// answer with send.
func (s *Server) spawnForward(fw *forward, send func([]byte)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if b := fw.run(s); len(b) > 0 {
			send(b)
		}
	}()
}

// backoff spaces out retries after errors that are not the socket closing
// (ENOBUFS and the like), as net/http does on Accept errors, rather than
// spinning.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// readFailed handles an error reading or accepting: it reports whether to
// go on (after backing off) or stop (Shutdown, or the socket was closed).
func (s *Server) readFailed(b *backoff, err error) bool {
	if s.closing.Load() || errors.Is(err, net.ErrClosed) {
		return false
	}
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	s.logSometimes("dns: %v", err)
	select {
	case <-time.After(b.d):
		return true
	case <-s.done:
		return false
	}
}

func (s *Server) serveTCP(l net.Listener) {
	defer s.wg.Done()
	var bo backoff
	for {
		c, err := l.Accept()
		if err != nil {
			if !s.readFailed(&bo, err) {
				return
			}
			continue
		}
		bo.reset()
		select {
		case s.tcpSlots <- struct{}{}:
		default:
			// Counted as one query dropped.
			s.stats.queries.Add(1)
			s.stats.dropped.Add(1)
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			<-s.tcpSlots
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers the queries of one TCP connection in turn. A message
// announced larger than MaxQuerySize, or a connection idle for
// TCPIdleTimeout, is closed.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		<-s.tcpSlots // before Close: a client that saw EOF finds the slot free
		c.Close()
		s.wg.Done()
	}()
	buf := make([]byte, MaxQuerySize)
	out := make([]byte, 2, 512)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if s.closing.Load() {
			// Shutdown set the deadline before this one: stop here.
			return
		}
		if _, err := io.ReadFull(c, buf[:2]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(buf))
		if n > MaxQuerySize || n == 0 {
			s.stats.queries.Add(1)
			s.stats.dropped.Add(1)
			return
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		resp, fw := s.handle(buf[:n], out[2:], true)
		if fw != nil {
			resp = fw.run(s)
		}
		if resp == nil {
			continue
		}
		out = append(out[:2], resp...)
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// handle answers one query: it returns the response (built in out's
// storage when it fits), or a forwarding job, or neither when the query is
// dropped.
func (s *Server) handle(req, out []byte, tcp bool) ([]byte, *forward) {
	s.stats.queries.Add(1)
	if len(req) > MaxQuerySize || !tcp && len(req) > MaxPlainUDPQuery && (len(req) < headerLen || binary.BigEndian.Uint16(req[10:]) == 0) {
		s.stats.dropped.Add(1)
		return nil, nil
	}
	if resp, ok := s.fast(req, out, tcp); ok {
		return resp, nil
	}
	return s.slow(req, out, tcp)
}

// fast answers a plain query from the ready-made responses; ok is false
// when the slow path must take it (see parseQuery), when the answer must
// be truncated, and for names outside the cluster domain that the index
// has no answer for (forwarded).
func (s *Server) fast(req, out []byte, tcp bool) ([]byte, bool) {
	var key [maxNameLen]byte
	q, n, ok := parseQuery(req, &key)
	if !ok {
		return nil, false
	}
	var resp []byte
	nx := false
	if e := s.idx.table.get(key[:n]); e == nil {
		if !inZone(key[:n], s.apexWire) {
			return nil, false
		}
		resp = negative(out, req, s.soaWire, &q, rcodeNXDomain)
		nx = true
	} else if t := e.answer(q.qtype); t != nil {
		resp = fromTemplate(out, req, t, &q)
	} else {
		if !inZone(key[:n], s.apexWire) {
			return nil, false
		}
		resp = negative(out, req, s.soaWire, &q, rcodeNoError)
	}
	if len(resp) > answerLimit(tcp, q.edns, q.udpSize) {
		return nil, false
	}
	s.stats.answered.Add(1)
	if nx {
		s.stats.nxdomain.Add(1)
	}
	return resp, true
}
