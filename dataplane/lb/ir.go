package lb

import (
	"bytes"
	"fmt"
	"slices"
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

// element is one element of a set or map.
type element struct {
	key  []byte
	val  []byte // map data
	goTo string // verdict map: goto this chain
	text string // as nft prints it
	sort []byte // order in Render (key with integers big-endian)
}

func (e element) equal(o element) bool {
	return e.text == o.text && bytes.Equal(e.key, o.key) && bytes.Equal(e.val, o.val) && e.goTo == o.goTo
}

func (e element) nft() nftables.SetElement {
	se := nftables.SetElement{Key: e.key, Val: e.val}
	if e.goTo != "" {
		se.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.goTo}
	}
	return se
}

// size estimates the element's netlink encoding, to cut element lists
// into messages well below the 64 KiB an attribute can hold.
func (e element) size() int {
	return 48 + len(e.key) + len(e.val) + len(e.goTo)
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
		sorted := slices.Clone(elems)
		slices.SortFunc(sorted, func(a, b element) int { return bytes.Compare(a.sort, b.sort) })
		b.WriteString("\t\telements = { ")
		for i, e := range sorted {
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
