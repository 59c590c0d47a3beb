package dns

import (
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Stats counts what the server did with the queries it received. Every
// query ends in exactly one of Answered, Forwarded, Rejected and Dropped.
type Stats struct {
	Queries   uint64 // messages received, over UDP and TCP
	Answered  uint64 // answered from the index: records, NODATA or NXDOMAIN
	NXDomain  uint64 // of Answered, those with NXDOMAIN
	Truncated uint64 // of Answered, those cut to fit UDP (TC set)
	Forwarded uint64 // names outside the cluster domain, taken to the upstreams
	ServFail  uint64 // of Forwarded, those answered SERVFAIL (no upstream answered in time, none configured, or too many in flight)
	Rejected  uint64 // answered FORMERR, NOTIMP, REFUSED or BADVERS
	Dropped   uint64 // not answered: too large, too short for a header, itself a response, or a TCP connection over MaxTCPConns (counted as one query)
}

type counters struct {
	queries, answered, nxdomain, truncated, forwarded, servfail, rejected, dropped atomic.Uint64
}

// Stats returns the counters since New.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Queries:   c.queries.Load(),
		Answered:  c.answered.Load(),
		NXDomain:  c.nxdomain.Load(),
		Truncated: c.truncated.Load(),
		Forwarded: c.forwarded.Load(),
		ServFail:  c.servfail.Load(),
		Rejected:  c.rejected.Load(),
		Dropped:   c.dropped.Load(),
	}
}

// slow answers what the fast path leaves: it parses the query with
// github.com/miekg/dns, and answers it from the index, rejects it, or
// returns a forwarding job.
func (s *Server) slow(req, out []byte, tcp bool) ([]byte, *forward) {
	if len(req) < headerLen || binary.BigEndian.Uint16(req[2:])&flagQR != 0 {
		s.stats.dropped.Add(1)
		return nil, nil
	}
	m := new(mdns.Msg)
	if err := m.Unpack(req); err != nil {
		// The header parsed: say FORMERR with the header alone.
		s.stats.rejected.Add(1)
		flags := binary.BigEndian.Uint16(req[2:])&(opcodeMask|flagRD|flagCD) | flagQR | rcodeFormErr
		out = append(out[:0], req[0], req[1], byte(flags>>8), byte(flags), 0, 0, 0, 0, 0, 0, 0, 0)
		return out, nil
	}
	opt := m.IsEdns0()
	reject := func(rcode int) ([]byte, *forward) {
		s.stats.rejected.Add(1)
		r := new(mdns.Msg)
		r.SetRcode(m, rcode)
		if opt != nil {
			r.SetEdns0(MaxUDPAnswer, false)
		}
		return s.pack(r, out, tcp, opt)
	}
	switch {
	case m.Opcode != mdns.OpcodeQuery:
		return reject(mdns.RcodeNotImplemented)
	case len(m.Question) != 1:
		return reject(mdns.RcodeFormatError)
	case opt != nil && opt.Version() != 0:
		return reject(mdns.RcodeBadVers)
	}
	q := m.Question[0]
	if q.Qclass != mdns.ClassINET || q.Qtype == mdns.TypeAXFR || q.Qtype == mdns.TypeIXFR {
		return reject(mdns.RcodeRefused)
	}
	var kb [maxNameLen + 1]byte
	n, err := mdns.PackDomainName(q.Name, kb[:], 0, nil, false)
	if err != nil {
		return reject(mdns.RcodeFormatError)
	}
	key := lowerWire(kb[:n])
	inDomain := inZone(key, s.apexWire)
	e := s.idx.table.get(key)

	r := new(mdns.Msg)
	r.SetReply(m)
	r.Authoritative = true
	r.RecursionAvailable = true
	switch {
	case e == nil && !inDomain:
		return s.startForward(m, opt, tcp, out)
	case e == nil:
		r.Rcode = mdns.RcodeNameError
		r.Ns = []mdns.RR{s.soa}
	default:
		var answers []typedAnswer
		if q.Qtype == mdns.TypeANY {
			answers = e.answers()
		} else if t := e.answer(q.Qtype); t != nil {
			answers = []typedAnswer{{q.Qtype, t}}
		}
		for _, a := range answers {
			var t mdns.Msg
			if err := t.Unpack(expand(key, a.qtype, a.wire)); err == nil {
				r.Answer = append(r.Answer, t.Answer...)
				r.Extra = append(r.Extra, t.Extra...)
			}
		}
		if len(r.Answer) == 0 {
			if !inDomain {
				return s.startForward(m, opt, tcp, out)
			}
			r.Ns = []mdns.RR{s.soa}
		}
	}
	if opt != nil {
		r.SetEdns0(MaxUDPAnswer, opt.Do())
	}
	s.stats.answered.Add(1)
	if r.Rcode == mdns.RcodeNameError {
		s.stats.nxdomain.Add(1)
	}
	b, _ := s.pack(r, out, tcp, opt)
	if len(b) >= headerLen && b[2]&(flagTC>>8) != 0 {
		s.stats.truncated.Add(1)
	}
	return b, nil
}

// pack packs an answer cut to what the client can take.
func (s *Server) pack(r *mdns.Msg, out []byte, tcp bool, opt *mdns.OPT) ([]byte, *forward) {
	var size uint16
	if opt != nil {
		size = opt.UDPSize()
	}
	r.Truncate(answerLimit(tcp, opt != nil, size))
	b, err := r.PackBuffer(out[:cap(out)])
	if err != nil {
		// Only a bug gets here: answer SERVFAIL rather than nothing.
		f := new(mdns.Msg)
		f.SetRcode(r, mdns.RcodeServerFailure)
		f.Answer, f.Ns, f.Extra = nil, nil, nil
		b, _ = f.Pack()
	}
	return b, nil
}

// lowerWire lower-cases the ASCII letters of a wire-format name in place.
func lowerWire(b []byte) []byte {
	for off := 0; off < len(b) && b[off] != 0; off += 1 + int(b[off]) {
		for i := off + 1; i <= off+int(b[off]) && i < len(b); i++ {
			if c := b[i]; 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
	}
	return b
}

// forward is a query on its way upstream; run it off the read loop.
type forward struct {
	m     *mdns.Msg
	tcp   bool
	limit int
}

func (s *Server) startForward(m *mdns.Msg, opt *mdns.OPT, tcp bool, out []byte) ([]byte, *forward) {
	s.stats.forwarded.Add(1)
	var size uint16
	if opt != nil {
		size = opt.UDPSize()
	}
	select {
	case s.fwdSlots <- struct{}{}:
	default:
		return s.servfail(m, opt, out), nil
	}
	return nil, &forward{m: m, tcp: tcp, limit: answerLimit(tcp, opt != nil, size)}
}

func (s *Server) servfail(m *mdns.Msg, opt *mdns.OPT, out []byte) []byte {
	s.stats.servfail.Add(1)
	r := new(mdns.Msg)
	r.SetRcode(m, mdns.RcodeServerFailure)
	r.RecursionAvailable = true
	if opt != nil {
		r.SetEdns0(MaxUDPAnswer, false)
	}
	b, err := r.PackBuffer(out[:cap(out)])
	if err != nil {
		return nil
	}
	return b
}

// run asks the upstreams in turn, sharing ForwardTimeout among them, and
// returns the first answer for the same question (its ID set back to the
// client's), or SERVFAIL. A UDP query goes upstream over UDP as the client
// sent it (its EDNS0 size included), so a truncated upstream answer goes
// back truncated and the client asks again over TCP, which goes upstream
// over TCP.
func (f *forward) run(s *Server) []byte {
	defer func() { <-s.fwdSlots }()
	ups := *s.upstreams.Load()
	opt := f.m.IsEdns0()
	if len(ups) == 0 {
		return s.servfail(f.m, opt, nil)
	}
	ctx, cancel := context.WithTimeout(s.stopCtx, s.cfg.ForwardTimeout)
	defer cancel()
	q := f.m.Copy()
	q.Id = mdns.Id()
	network := "udp"
	if f.tcp {
		network = "tcp"
	}
	for i, up := range ups {
		deadline, _ := ctx.Deadline()
		share := time.Until(deadline) / time.Duration(len(ups)-i)
		if share <= 0 || ctx.Err() != nil {
			break
		}
		r, err := exchangeUpstream(ctx, network, share, q, up.String())
		if err != nil || !sameQuestion(r, q) {
			if err != nil {
				s.logSometimes("dns: upstream %v: %v", up, err)
			}
			continue
		}
		r.Id = f.m.Id
		if !f.tcp {
			r.Truncate(f.limit)
		}
		b, err := r.Pack()
		if err != nil {
			continue
		}
		return b
	}
	return s.servfail(f.m, opt, nil)
}

// exchangeUpstream asks one upstream, for at most timeout. Unlike the client's
// own ExchangeContext it also gives up when ctx is cancelled (a forced
// Shutdown), by closing the connection under the read.
func exchangeUpstream(ctx context.Context, network string, timeout time.Duration, q *mdns.Msg, addr string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &mdns.Client{Net: network, Timeout: timeout}
	conn, err := c.DialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	return r, err
}

func sameQuestion(r, q *mdns.Msg) bool {
	if r == nil || len(r.Question) != 1 || len(q.Question) != 1 {
		return false
	}
	a, b := r.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// upstreamList is for tests and logs.
func (s *Server) upstreamList() []netip.AddrPort { return *s.upstreams.Load() }
