package lb

import (
	"fmt"
	"slices"
	"strings"
)

// lineDiff shows the lines only in want (-) and only in got (+), in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case i < len(w) && j < len(g) && w[i] == g[j]:
			i++
			j++
		case j < len(g) && !slices.Contains(w[i:], g[j]):
			fmt.Fprintf(&b, "+%s\n", g[j])
			j++
		case i < len(w):
			fmt.Fprintf(&b, "-%s\n", w[i])
			i++
		default:
			fmt.Fprintf(&b, "+%s\n", g[j])
			j++
		}
	}
	return b.String()
}

// canonical rewrites an `nft list table` listing so that two listings of
// the same table compare equal: each element list on one line and sorted,
// the elements of dynamic sets (clients remembered by session affinity)
// dropped, and, with sortBlocks, sets and chains in name order (the kernel
// lists them in creation order, which differs between a table built at once
// and one changed step by step).
func canonical(listing string, sortBlocks bool) string {
	lines := strings.Split(strings.TrimRight(listing, "\n"), "\n")
	var head []string
	var blocks [][]string
	var cur []string
	dynamic := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "table "):
			head = append(head, l)
		case l == "}" || l == "":
		case strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "\t\t") && strings.HasSuffix(l, "{"):
			cur = []string{l}
			dynamic = false
		case l == "\t}":
			blocks = append(blocks, append(cur, l))
			cur = nil
		case strings.HasPrefix(l, "\t\telements = { "):
			joined := strings.TrimPrefix(l, "\t\telements = { ")
			for !strings.HasSuffix(joined, " }") && i+1 < len(lines) {
				i++
				joined += " " + strings.TrimSpace(lines[i])
			}
			joined = strings.TrimSuffix(joined, " }")
			if dynamic {
				continue
			}
			els := strings.Split(joined, ", ")
			for k := range els {
				els[k] = strings.TrimSpace(els[k])
			}
			slices.Sort(els)
			cur = append(cur, "\t\telements = { "+strings.Join(els, ", ")+" }")
		default:
			if strings.HasPrefix(strings.TrimSpace(l), "flags ") && strings.Contains(l, "dynamic") {
				dynamic = true
			}
			cur = append(cur, l)
		}
	}
	if sortBlocks {
		slices.SortFunc(blocks, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	}
	var b strings.Builder
	for _, h := range head {
		b.WriteString(h + "\n")
	}
	for i, bl := range blocks {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(strings.Join(bl, "\n") + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func cloneService(s Service) Service {
	s.Ports = slices.Clone(s.Ports)
	for i := range s.Ports {
		s.Ports[i].Endpoints = slices.Clone(s.Ports[i].Endpoints)
	}
	return s
}
