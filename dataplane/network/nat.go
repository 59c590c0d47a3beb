package network

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// natTable is the only nftables table this package writes.
const natTable = "shoal-nat"

// natRuleset is the pure model of table "shoal-nat": masquerade what leaves
// the cluster's pod network.
type natRuleset struct {
	table *nftables.Table
	chain *nftables.Chain
	rules []*nftables.Rule
}

// desiredNAT builds the ruleset for cluster:
//
//	table ip shoal-nat {
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr <cluster> ip daddr != <cluster> masquerade
//		}
//	}
func desiredNAT(cluster netip.Prefix) natRuleset {
	t := &nftables.Table{Name: natTable, Family: nftables.TableFamilyIPv4}
	accept := nftables.ChainPolicyAccept
	c := &nftables.Chain{
		Name:     "postrouting",
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
		Policy:   &accept,
	}
	var ex []expr.Any
	ex = append(ex, matchIPv4(12, cluster, expr.CmpOpEq)...)  // ip saddr
	ex = append(ex, matchIPv4(16, cluster, expr.CmpOpNeq)...) // ip daddr
	ex = append(ex, &expr.Masq{})
	return natRuleset{table: t, chain: c, rules: []*nftables.Rule{{Table: t, Chain: c, Exprs: ex}}}
}

// matchIPv4 compares the IPv4 address at offset in the network header
// (12 source, 16 destination) with prefix p.
func matchIPv4(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	addr := p.Addr().As4()
	ex := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if p.Bits() < 32 {
		ex = append(ex, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: net.CIDRMask(p.Bits(), 32), Xor: make([]byte, 4)})
	}
	return append(ex, &expr.Cmp{Op: op, Register: 1, Data: addr[:]})
}

// text renders the model as `nft list table` prints it.
func (r natRuleset) text() string {
	return renderTable(r.table, []*nftables.Chain{r.chain}, map[string][]*nftables.Rule{r.chain.Name: r.rules})
}

// apply queues the replacement of the whole table on conn: add (so the
// delete cannot fail), delete, add back with its content. Flush sends it
// as one atomic batch.
func (r natRuleset) apply(conn *nftables.Conn) {
	conn.AddTable(r.table)
	conn.DelTable(r.table)
	conn.AddTable(r.table)
	conn.AddChain(r.chain)
	for _, rule := range r.rules {
		conn.AddRule(rule)
	}
}

// readNAT renders what the kernel has for table "shoal-nat" ("" when the
// table does not exist).
func readNAT(conn *nftables.Conn) (string, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return "", fmt.Errorf("list nftables tables: %w", err)
	}
	var t *nftables.Table
	for _, tt := range tables {
		if tt.Name == natTable {
			t = tt
		}
	}
	if t == nil {
		return "", nil
	}
	all, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return "", fmt.Errorf("list nftables chains: %w", err)
	}
	var chains []*nftables.Chain
	rules := map[string][]*nftables.Rule{}
	for _, c := range all {
		if c.Table.Name != natTable {
			continue
		}
		chains = append(chains, c)
		rs, err := conn.GetRules(t, c)
		if err != nil {
			return "", fmt.Errorf("list rules of %s: %w", c.Name, err)
		}
		rules[c.Name] = rs
	}
	return renderTable(t, chains, rules), nil
}

// renderTable prints a table in `nft list table` syntax. It knows the
// expressions this package writes; anything else shows as <type>, which
// never equals a desired ruleset, so a foreign edit is always repaired.
func renderTable(t *nftables.Table, chains []*nftables.Chain, rules map[string][]*nftables.Rule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s {\n", familyName(t.Family), t.Name)
	for i, c := range chains {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Hooknum != nil {
			policy := "accept"
			if c.Policy != nil && *c.Policy == nftables.ChainPolicyDrop {
				policy = "drop"
			}
			prio := nftables.ChainPriority(0)
			if c.Priority != nil {
				prio = *c.Priority
			}
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy %s;\n",
				c.Type, hookName(*c.Hooknum), priorityName(*c.Hooknum, prio), policy)
		}
		for _, r := range rules[c.Name] {
			fmt.Fprintf(&b, "\t\t%s\n", renderRule(r.Exprs))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func renderRule(exprs []expr.Any) string {
	var out []string
	field, bits := "", 32
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Payload:
			switch {
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == 12 && e.Len == 4:
				field = "ip saddr"
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == 16 && e.Len == 4:
				field = "ip daddr"
			default:
				field = fmt.Sprintf("@payload(%d,%d,%d)", e.Base, e.Offset, e.Len)
			}
			bits = 32
		case *expr.Bitwise:
			ones, size := net.IPMask(e.Mask).Size()
			if size == 0 || !isZero(e.Xor) {
				out = append(out, "<bitwise>")
				continue
			}
			bits = ones
		case *expr.Cmp:
			op := ""
			switch e.Op {
			case expr.CmpOpEq:
			case expr.CmpOpNeq:
				op = "!= "
			default:
				op = fmt.Sprintf("<cmp %d> ", e.Op)
			}
			val := fmt.Sprintf("%x", e.Data)
			if len(e.Data) == 4 {
				val = net.IP(e.Data).String()
				if bits < 32 {
					val = fmt.Sprintf("%s/%d", val, bits)
				}
			}
			out = append(out, field+" "+op+val)
			field, bits = "", 32
		case *expr.Masq:
			if e.Random || e.FullyRandom || e.Persistent || e.ToPorts {
				out = append(out, "<masquerade with options>")
				continue
			}
			out = append(out, "masquerade")
		case *expr.Counter:
			out = append(out, fmt.Sprintf("counter packets %d bytes %d", e.Packets, e.Bytes))
		case *expr.Verdict:
			out = append(out, verdictName(e))
		default:
			out = append(out, fmt.Sprintf("<%T>", e))
		}
	}
	return strings.Join(out, " ")
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	}
	return fmt.Sprintf("family%d", f)
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return fmt.Sprintf("hook%d", h)
}

// priorityName uses nft's names for the standard priorities of family ip.
func priorityName(h nftables.ChainHook, p nftables.ChainPriority) string {
	switch {
	case p == 0:
		return "filter"
	case p == -100 && (h == *nftables.ChainHookPrerouting || h == *nftables.ChainHookOutput):
		return "dstnat"
	case p == 100 && (h == *nftables.ChainHookPostrouting || h == *nftables.ChainHookInput):
		return "srcnat"
	}
	return fmt.Sprint(int32(p))
}

func verdictName(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictJump:
		return "jump " + v.Chain
	case expr.VerdictGoto:
		return "goto " + v.Chain
	}
	return fmt.Sprintf("<verdict %d>", v.Kind)
}
