package dns

import (
	"encoding/binary"
	"slices"
)

// The fast path: a query that is one IN-class question, optionally with an
// OPT record, for a type other than the meta types, is answered from the
// ready-made responses without building a message.

// Header flag bits (RFC 1035 4.1.1, RFC 4035 for AD and CD).
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagCD = 1 << 4

	opcodeMask = 0xf << 11

	rcodeNoError  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3

	typeOPT   = 41
	classINET = 1

	maxNameLen = 255
	headerLen  = 12
	optLen     = 11 // an OPT record with no options
)

// query is what the fast path reads of a request.
type query struct {
	qend    int // offset just past the question
	qtype   uint16
	edns    bool
	udpSize uint16
	do      bool // DNSSEC OK, echoed in the answer's OPT
}

// parseQuery reads a plain query and writes its question name, lower-cased,
// into key. ok is false for anything the fast path leaves to the slow one:
// a response, another opcode, not exactly one question, records in the
// answer or authority sections, a record other than one OPT, a compressed
// or overlong name, another class, meta query types, EDNS version other
// than 0, malformed options or trailing bytes.
func parseQuery(msg []byte, key *[maxNameLen]byte) (q query, keyLen int, ok bool) {
	if len(msg) < headerLen {
		return q, 0, false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&(flagQR|opcodeMask|flagTC) != 0 ||
		binary.BigEndian.Uint16(msg[4:]) != 1 ||
		binary.BigEndian.Uint16(msg[6:]) != 0 ||
		binary.BigEndian.Uint16(msg[8:]) != 0 {
		return q, 0, false
	}
	arcount := binary.BigEndian.Uint16(msg[10:])
	if arcount > 1 {
		return q, 0, false
	}
	off := headerLen
	n := 0
	for {
		if off >= len(msg) {
			return q, 0, false
		}
		l := int(msg[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(msg) || n+1+l+1 > maxNameLen {
			return q, 0, false
		}
		key[n] = byte(l)
		n++
		for _, c := range msg[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			key[n] = c
			n++
		}
		off += 1 + l
	}
	key[n] = 0
	n++
	if off+4 > len(msg) {
		return q, 0, false
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	if binary.BigEndian.Uint16(msg[off+2:]) != classINET || q.qtype == typeOPT || q.qtype >= 128 && q.qtype <= 255 {
		// Meta types (ANY, AXFR, IXFR, ...) go the slow way.
		return q, 0, false
	}
	off += 4
	q.qend = off
	if arcount == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = extended
		// rcode, version, flags; then the options, which must fit exactly.
		if off+optLen > len(msg) || msg[off] != 0 || binary.BigEndian.Uint16(msg[off+1:]) != typeOPT || msg[off+6] != 0 {
			return q, 0, false
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(msg[off+3:])
		q.do = msg[off+7]&0x80 != 0
		rdlen := int(binary.BigEndian.Uint16(msg[off+9:]))
		off += optLen
		if off+rdlen != len(msg) {
			return q, 0, false
		}
		for p := off; p < len(msg); {
			if p+4 > len(msg) {
				return q, 0, false
			}
			p += 4 + int(binary.BigEndian.Uint16(msg[p+2:]))
			if p > len(msg) {
				return q, 0, false
			}
		}
		off = len(msg)
	}
	if off != len(msg) {
		return q, 0, false
	}
	return q, n, true
}

// answerLimit is the largest answer the client can take.
func answerLimit(tcp, edns bool, udpSize uint16) int {
	switch {
	case tcp:
		return MaxTCPAnswer
	case !edns || udpSize <= MaxPlainUDPQuery:
		return MaxPlainUDPQuery
	default:
		return min(int(udpSize), MaxUDPAnswer)
	}
}

// fromTemplate writes into out the ready-made compact response t (see
// compact) to the query req: the request's ID and question go in (so the
// name comes back as the client spelled it; compression pointers in t
// point into the question and still read the same name), its RD and CD
// flags are copied, and an OPT record is added when the query had one.
func fromTemplate(out, req, t []byte, q *query) []byte {
	n := 2 + len(t) + q.qend - headerLen
	if q.edns {
		n += optLen
	}
	out = slices.Grow(out[:0], n) // one allocation at most
	out = append(out, req[0:2]...)
	flags := binary.BigEndian.Uint16(t) | binary.BigEndian.Uint16(req[2:])&(flagRD|flagCD)
	out = binary.BigEndian.AppendUint16(out, flags)
	out = append(out, t[2:compactHeader]...)
	out = append(out, req[headerLen:q.qend]...)
	out = append(out, t[compactHeader:]...)
	if q.edns {
		out = appendOPT(out, q.do)
		binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	}
	return out
}

// negative writes an answer with no records and the zone's SOA in the
// authority section: NXDOMAIN, or NODATA with rcode NOERROR.
func negative(out, req, soa []byte, q *query, rcode uint16) []byte {
	out = append(out[:0], req[0:2]...)
	flags := flagQR | flagAA | flagRA | binary.BigEndian.Uint16(req[2:])&(flagRD|flagCD) | rcode
	ar := uint16(0)
	if q.edns {
		ar = 1
	}
	out = binary.BigEndian.AppendUint16(out, flags)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, 0)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, ar)
	out = append(out, req[headerLen:q.qend]...)
	out = append(out, soa...)
	if q.edns {
		out = appendOPT(out, q.do)
	}
	return out
}

func appendOPT(out []byte, do bool) []byte {
	var dobit byte
	if do {
		dobit = 0x80
	}
	return append(out, 0, 0, typeOPT, MaxUDPAnswer>>8, MaxUDPAnswer&0xff, 0, 0, dobit, 0, 0, 0)
}
