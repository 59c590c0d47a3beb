package dns

import (
	"net"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// buildEntry makes the entry of one name: a complete response for each
// type the name has records of. name is a lower-case FQDN.
func (s *Server) buildEntry(name string, rs *recSet, apex bool) *entry {
	if rs.empty() && !apex {
		return emptyEntry
	}
	var answers []typedAnswer
	hdr := func(rrtype uint16, owner string) mdns.RR_Header {
		return mdns.RR_Header{Name: owner, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: s.ttl}
	}
	addrRRs := func(owner string, addrs []netip.Addr) (a, aaaa []mdns.RR) {
		for _, ip := range addrs {
			if ip.Is4() {
				a = append(a, &mdns.A{Hdr: hdr(mdns.TypeA, owner), A: net.IP(ip.AsSlice())})
			} else {
				aaaa = append(aaaa, &mdns.AAAA{Hdr: hdr(mdns.TypeAAAA, owner), AAAA: net.IP(ip.AsSlice())})
			}
		}
		return a, aaaa
	}
	add := func(qtype uint16, answer, extra []mdns.RR) {
		if len(answer) > 0 {
			if t := compact(packAnswer(name, qtype, answer, extra)); t != nil {
				answers = append(answers, typedAnswer{qtype: qtype, wire: t})
			}
		}
	}

	a, aaaa := addrRRs(name, rs.addrs)
	add(mdns.TypeA, a, nil)
	add(mdns.TypeAAAA, aaaa, nil)

	if len(rs.srvs) > 0 {
		var srvs, extra []mdns.RR
		seen := map[string]bool{}
		for _, r := range rs.srvs {
			srvs = append(srvs, &mdns.SRV{Hdr: hdr(mdns.TypeSRV, name), Priority: 0, Weight: r.weight, Port: r.port, Target: r.target})
			if !seen[r.target] {
				seen[r.target] = true
				a, aaaa := addrRRs(r.target, r.addrs)
				extra = append(append(extra, a...), aaaa...)
			}
		}
		add(mdns.TypeSRV, srvs, extra)
	}

	var ptrs []mdns.RR
	for _, t := range rs.ptrs {
		ptrs = append(ptrs, &mdns.PTR{Hdr: hdr(mdns.TypePTR, name), Ptr: t})
	}
	add(mdns.TypePTR, ptrs, nil)

	if apex {
		add(mdns.TypeSOA, []mdns.RR{s.soa}, nil)
	}
	n := 0
	for _, a := range answers {
		n += 4 + len(a.wire)
	}
	e := &entry{data: make([]byte, 0, n)}
	for _, a := range answers {
		e.add(a.qtype, a.wire)
	}
	return e
}

// packAnswer packs a response to a query for (name, qtype), compressed, so
// that every owner name equal to the question is a pointer to it. A
// response too large even for TCP keeps the records that fit, with TC set.
func packAnswer(name string, qtype uint16, answer, extra []mdns.RR) []byte {
	m := &mdns.Msg{
		MsgHdr:   mdns.MsgHdr{Response: true, Authoritative: true, RecursionAvailable: true},
		Compress: true,
		Question: []mdns.Question{{Name: name, Qtype: qtype, Qclass: mdns.ClassINET}},
		Answer:   answer,
		Extra:    extra,
	}
	if m.Len() > MaxTCPAnswer {
		m.Truncate(MaxTCPAnswer)
		m.Compress = true
	}
	b, err := m.Pack()
	if err != nil {
		// Names the index builds always pack; keep the name answerable.
		m.Answer, m.Extra = nil, nil
		b, _ = m.Pack()
	}
	return b
}
