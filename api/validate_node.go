package api

import "net/netip"

// Checks of Nodes.

func (v *validator) nodeSpec(s *NodeSpec, p path) {
	if s.PodCIDR != "" {
		if _, err := netip.ParsePrefix(s.PodCIDR); err != nil {
			v.add(Invalid(p.child("podCIDR").String(), s.PodCIDR, "must be a CIDR such as 10.244.1.0/24"))
		}
	}
	for i, c := range s.PodCIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			v.add(Invalid(p.child("podCIDRs").index(i).String(), c, "must be a CIDR such as 10.244.1.0/24"))
		}
	}
	seen := map[string]bool{}
	for i, t := range s.Taints {
		tp := p.child("taints").index(i)
		if t.Key == "" {
			v.add(Required(tp.child("key").String(), ""))
		} else {
			v.labelKey(tp.child("key"), t.Key)
		}
		if t.Value != "" {
			v.labelValue(tp.child("value"), t.Value)
		}
		if t.Effect == "" {
			v.add(Required(tp.child("effect").String(), ""))
		} else {
			v.enum(tp.child("effect"), t.Effect, taintEffects)
		}
		if seen[t.Key+"\x00"+t.Effect] {
			v.add(Duplicate(tp.String(), t.Key+":"+t.Effect))
		}
		seen[t.Key+"\x00"+t.Effect] = true
	}
}
