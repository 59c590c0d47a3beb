package lb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The ruleset is held as plain values that say both what nft prints and
// what netlink is sent: every rule carries its text, as `nft list table`
// prints it, and its expressions. Render uses the text; the applier sends
// the expressions and compares text to find what changed. The root tests
// check that the kernel, listed by nft, prints exactly the text.

// setSpec is a named set or map.
type setSpec struct {
	name     string
	key      []nftables.SetDatatype
	data     []nftables.SetDatatype // nil: a set
	verdict  bool                   // a verdict map (data is nil)
	timeout  time.Duration          // > 0: flags dynamic,timeout (affinity)
	elements []element              // constant elements (Render, full sync)
}

// dynamicSize bounds each affinity set, as nft does by default.
const dynamicSize = 65535

func (s *setSpec) kind() string {
	if s.verdict || s.data != nil {
		return "map"
	}
	return "set"
}

// equal reports whether two specs declare the same set (elements aside).
func (s *setSpec) equal(o *setSpec) bool {
	return s.name == o.name && s.verdict == o.verdict && s.timeout == o.timeout &&
		slices.Equal(s.key, o.key) && slices.Equal(s.data, o.data)
}

// nft returns the set as the library declares it.
func (s *setSpec) nft(t *nftables.Table, id uint32) *nftables.Set {
	ns := &nftables.Set{Table: t, ID: id, Name: s.name, KeyType: concat(s.key), Concatenation: len(s.key) > 1}
	switch {
	case s.verdict:
		ns.IsMap, ns.DataType = true, nftables.TypeVerdict
	case s.data != nil:
		ns.IsMap, ns.DataType = true, concat(s.data)
	}
	if s.timeout > 0 {
		ns.Dynamic, ns.HasTimeout, ns.Timeout, ns.Size = true, true, s.timeout, dynamicSize
	}
	return ns
}

func concat(types []nftables.SetDatatype) nftables.SetDatatype {
	if len(types) == 1 {
		return types[0]
	}
	return nftables.MustConcatSetType(types...)
}

func typeNames(types []nftables.SetDatatype) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name
	}
	return strings.Join(names, " . ")
}

// element is one element of a set or map, held by value (a full sync has
// hundreds of thousands of them). Its text is computed from the set's
// types when rendered.
type element struct {
	key  [16]byte
	val  [8]byte // map data
	klen uint8
	vlen uint8
	goTo string // verdict map: goto this chain
}

func newElement(key, val []byte, goTo string) element {
	e := element{klen: uint8(len(key)), vlen: uint8(len(val)), goTo: goTo}
	copy(e.key[:], key)
	copy(e.val[:], val)
	return e
}

func (e *element) nft() nftables.SetElement {
	se := nftables.SetElement{Key: e.key[:e.klen]}
	if e.vlen > 0 {
		se.Val = e.val[:e.vlen]
	}
	if e.goTo != "" {
		se.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.goTo}
	}
	return se
}

// size estimates the element's netlink encoding, to cut element lists
// into messages well below the 64 KiB an attribute can hold.
func (e *element) size() int {
	return 48 + int(e.klen) + int(e.vlen) + len(e.goTo)
}

// fieldsText prints a concatenation of the given types as nft does; every
// field takes a multiple of 4 bytes.
func fieldsText(types []nftables.SetDatatype, b []byte) string {
	parts := make([]string, len(types))
	for i, t := range types {
		switch t.GetNFTMagic() {
		case nftables.TypeIPAddr.GetNFTMagic():
			parts[i] = netip.AddrFrom4([4]byte(b[:4])).String()
		case nftables.TypeInetProto.GetNFTMagic():
			parts[i] = protoName(b[0])
		case nftables.TypeInetService.GetNFTMagic():
			parts[i] = strconv.Itoa(int(binary.BigEndian.Uint16(b)))
		case nftables.TypeMark.GetNFTMagic():
			parts[i] = fmt.Sprintf("0x%08x", binary.NativeEndian.Uint32(b))
		default:
			parts[i] = fmt.Sprintf("%x", b[:4])
		}
		b = b[4:]
	}
	return strings.Join(parts, " . ")
}

// text prints the element as nft does in a set of spec's types.
func (s *setSpec) text(e *element) string {
	t := fieldsText(s.key, e.key[:e.klen])
	switch {
	case s.verdict:
		t += " : goto " + e.goTo
	case s.data != nil:
		t += " : " + fieldsText(s.data, e.val[:e.vlen])
	}
	return t
}

// sortKey orders elements in Render: by key, with integers (in host
// order in the key) compared as numbers.
func (s *setSpec) sortKey(e *element) []byte {
	k := bytes.Clone(e.key[:e.klen])
	off := 0
	for _, t := range s.key {
		if t.GetNFTMagic() == nftables.TypeMark.GetNFTMagic() {
			binary.BigEndian.PutUint32(k[off:], binary.NativeEndian.Uint32(k[off:]))
		}
		off += 4
	}
	return k
}

// chainSpec is a chain and its rules, in order.
type chainSpec struct {
	name  string
	hook  *hookSpec // nil: a regular chain
	rules []rule
}

// hookSpec makes a chain a base chain.
type hookSpec struct {
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority nftables.ChainPriority
	text     string // "type nat hook prerouting priority dstnat"
}

// sameRules reports whether two chains hold the same rules.
func (c *chainSpec) sameRules(o *chainSpec) bool {
	return slices.EqualFunc(c.rules, o.rules, func(a, b rule) bool { return a.text == b.text })
}

// nft returns the chain as the library declares it.
func (c *chainSpec) nft(t *nftables.Table) *nftables.Chain {
	ch := &nftables.Chain{Table: t, Name: c.name}
	if c.hook != nil {
		accept := nftables.ChainPolicyAccept
		ch.Type, ch.Hooknum, ch.Priority, ch.Policy = c.hook.typ, c.hook.hook, &c.hook.priority, &accept
	}
	return ch
}

// rule is one rule: nft's text and the expressions that make it.
type rule struct {
	text  string
	exprs []expr.Any
}

// ruleset is a whole table: sets first, then chains, each in the order
// they are created (and so listed by nft after a full sync).
type ruleset struct {
	table  string
	sets   []*setSpec
	chains []*chainSpec
}

// text renders the ruleset as `nft list table ip <table>` prints it, with
// elements in key order.
func (r *ruleset) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", r.table)
	first := true
	sep := func() {
		if !first {
			b.WriteString("\n")
		}
		first = false
	}
	for _, s := range r.sets {
		sep()
		writeSet(&b, s, s.elements)
	}
	for _, c := range r.chains {
		sep()
		writeChain(&b, c)
	}
	b.WriteString("}\n")
	return b.String()
}

func writeSet(b *strings.Builder, s *setSpec, elems []element) {
	fmt.Fprintf(b, "\t%s %s {\n", s.kind(), s.name)
	fmt.Fprintf(b, "\t\ttype %s", typeNames(s.key))
	switch {
	case s.verdict:
		b.WriteString(" : verdict")
	case s.data != nil:
		b.WriteString(" : " + typeNames(s.data))
	}
	b.WriteString("\n")
	if s.timeout > 0 {
		fmt.Fprintf(b, "\t\tsize %d\n\t\tflags dynamic,timeout\n\t\ttimeout %s\n", dynamicSize, nftDuration(s.timeout))
	}
	if len(elems) > 0 {
		type sorted struct {
			key  []byte
			text string
		}
		list := make([]sorted, len(elems))
		for i := range elems {
			list[i] = sorted{s.sortKey(&elems[i]), s.text(&elems[i])}
		}
		slices.SortFunc(list, func(a, b sorted) int { return bytes.Compare(a.key, b.key) })
		b.WriteString("\t\telements = { ")
		for i, e := range list {
			if i > 0 {
				b.WriteString(",\n\t\t\t     ")
			}
			b.WriteString(e.text)
		}
		b.WriteString(" }\n")
	}
	b.WriteString("\t}\n")
}

func writeChain(b *strings.Builder, c *chainSpec) {
	fmt.Fprintf(b, "\tchain %s {\n", c.name)
	if c.hook != nil {
		fmt.Fprintf(b, "\t\t%s; policy accept;\n", c.hook.text)
	}
	for _, r := range c.rules {
		fmt.Fprintf(b, "\t\t%s\n", r.text)
	}
	b.WriteString("\t}\n")
}

// nftDuration prints a duration as nft does: 3h, 1d2h, 90s → 1m30s.
func nftDuration(d time.Duration) string {
	ms := d.Milliseconds()
	var b strings.Builder
	for _, u := range []struct {
		ms   int64
		unit string
	}{{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}} {
		if n := ms / u.ms; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			ms %= u.ms
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
