package dns

import (
	"encoding/binary"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary bytes to the request path, as a UDP
// datagram and as a TCP message. It must not panic; an answer must be a
// response with the query's ID that unpacks and fits the transport; and
// when the fast path answers, the slow path must answer the same.
//
// A bounded run: go test -run '^$' -fuzz FuzzServeDNS -fuzztime 30s ./agent/dns
func FuzzServeDNS(f *testing.F) {
	seed := func(name string, qtype uint16, edit func(*mdns.Msg)) {
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		if edit != nil {
			edit(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, n := range equivNames {
		seed(n, mdns.TypeA, nil)
	}
	seed("_sql._tcp.pg.db.svc.cluster.local.", mdns.TypeSRV, func(m *mdns.Msg) { m.SetEdns0(4096, true) })
	seed("big.default.svc.cluster.local.", mdns.TypeA, nil)
	seed("big.default.svc.cluster.local.", mdns.TypeANY, func(m *mdns.Msg) { m.SetEdns0(512, false) })
	seed("www.example.org.", mdns.TypeA, nil)
	seed("cluster.local.", mdns.TypeAXFR, nil)
	seed("web.default.svc.cluster.local.", mdns.TypeA, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify })
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}) // a name pointing at itself
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 9})
	f.Add([]byte{})

	s := populated(f)
	f.Fuzz(func(t *testing.T, req []byte) {
		for _, tcp := range []bool{false, true} {
			resp, fw := s.handle(req, nil, tcp)
			if fw != nil {
				// No upstreams: an immediate SERVFAIL.
				resp = fw.run(s)
			}
			if resp == nil {
				continue
			}
			limit := MaxUDPAnswer
			if tcp {
				limit = MaxTCPAnswer
			}
			if len(resp) > limit || len(resp) < headerLen {
				t.Fatalf("answer of %d bytes (tcp=%v)", len(resp), tcp)
			}
			if len(req) < 2 || resp[0] != req[0] || resp[1] != req[1] || binary.BigEndian.Uint16(resp[2:])&flagQR == 0 {
				t.Fatalf("answer header %x for query %x", resp[:4], req)
			}
			var m mdns.Msg
			if err := m.Unpack(resp); err != nil {
				t.Fatalf("answer does not unpack: %v (%x)", err, resp)
			}
			if fast, ok := s.fast(req, nil, tcp); ok {
				slow, fw := s.slow(req, nil, tcp)
				if fw != nil {
					<-s.fwdSlots
					t.Fatalf("fast path answered what the slow path forwards: %x", req)
				}
				if canonical(t, fast) != canonical(t, slow) {
					t.Fatalf("fast and slow paths differ for %x:\n%s\n%s", req, canonical(t, fast), canonical(t, slow))
				}
			}
		}
	})
}
