package placement

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/shoal-dev/shoal/api"
)

// NodePort range, as Kubernetes' default.
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// AllocateClusterIPs gives every Service that needs one a ClusterIP from
// cidr and every NodePort service port without one a node port.
//
// ClusterIPs: the lowest free address, skipping the network address, the
// first host address (.1, kept for the cluster's own DNS-like service; a
// Service may still ask for it by name) and, for IPv4, the broadcast
// address. A Service that already has an address keeps it; when two claim
// one address the older keeps it and the other gets an event (it is not
// renumbered: the user asked for it). An address outside cidr is reported.
// Headless services ("None") are left alone.
//
// NodePorts: the lowest free port of 30000-32767; ports already set are
// kept, clashes and out-of-range ports are reported.
//
// The list must hold every Service of the cluster (addresses are unique
// cluster-wide). Services are handled oldest first, so the result does not
// depend on the list's order. Each changed Service is one Update from the
// version read.
func AllocateClusterIPs(cidr string, services []*api.Service) Plan {
	var plan Plan
	say := func(format string, a ...any) { plan.Events = append(plan.Events, fmt.Sprintf(format, a...)) }
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		say("service CIDR %q: %v", cidr, err)
		return plan
	}
	prefix = prefix.Masked()
	svcs := append([]*api.Service(nil), services...)
	sort.SliceStable(svcs, func(i, j int) bool { return olderFirst(&svcs[i].ObjectMeta, &svcs[j].ObjectMeta) })

	// Who holds what, by Service (its name is made only for an event):
	// the controller runs this over every Service on each pass, and maps
	// of names grown entry by entry were most of the agent's allocation
	// while 10,000 Services were loaded.
	usedIP := make(map[netip.Addr]*api.Service, len(svcs))
	usedPort := map[int32]*api.Service{}
	for _, s := range svcs {
		if ip := s.Spec.ClusterIP; ip != "" && ip != api.ClusterIPNone {
			a, err := netip.ParseAddr(ip)
			switch {
			case err != nil:
				say("Service %s: clusterIP %q is not an IP address", svcID(s), ip)
			case !prefix.Contains(a):
				say("Service %s: clusterIP %s is outside the service CIDR %s", svcID(s), ip, prefix)
			case usedIP[a] != nil:
				say("Service %s: clusterIP %s is already allocated to %s", svcID(s), ip, svcID(usedIP[a]))
			default:
				usedIP[a] = s
			}
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			switch {
			case p.NodePort < NodePortMin || p.NodePort > NodePortMax:
				say("Service %s: nodePort %d is outside %d-%d", svcID(s), p.NodePort, NodePortMin, NodePortMax)
			case usedPort[p.NodePort] != nil && svcID(usedPort[p.NodePort]) != svcID(s):
				say("Service %s: nodePort %d is already allocated to %s", svcID(s), p.NodePort, svcID(usedPort[p.NodePort]))
			default:
				usedPort[p.NodePort] = s
			}
		}
	}

	first := prefix.Addr().Next().Next() // skip the network address and .1
	last := lastAddr(prefix)
	nextIP := first
	nextPort := int32(NodePortMin)
	for _, s := range svcs {
		if s.DeletionTimestamp != nil {
			continue
		}
		var c *api.Service
		mut := func() *api.Service {
			if c == nil {
				c = s.DeepCopyObject().(*api.Service)
			}
			return c
		}
		if s.Spec.ClusterIP == "" {
			for nextIP.IsValid() && prefix.Contains(nextIP) && (usedIP[nextIP] != nil || (nextIP.Is4() && nextIP == last)) {
				nextIP = nextIP.Next()
			}
			if !nextIP.IsValid() || !prefix.Contains(nextIP) || (nextIP.Is4() && nextIP == last) {
				say("Service %s: no free clusterIP left in %s", svcID(s), prefix)
			} else {
				usedIP[nextIP] = s
				m := mut()
				m.Spec.ClusterIP = nextIP.String()
				m.Spec.ClusterIPs = []string{nextIP.String()}
				say("Service %s: allocated clusterIP %s", svcID(s), nextIP)
			}
		}
		if s.Spec.Type == api.ServiceTypeNodePort {
			for i, p := range s.Spec.Ports {
				if p.NodePort != 0 {
					continue
				}
				for nextPort <= NodePortMax && usedPort[nextPort] != nil {
					nextPort++
				}
				if nextPort > NodePortMax {
					say("Service %s: no free nodePort left in %d-%d", svcID(s), NodePortMin, NodePortMax)
					break
				}
				usedPort[nextPort] = s
				mut().Spec.Ports[i].NodePort = nextPort
				say("Service %s: allocated nodePort %d for port %d", svcID(s), nextPort, p.Port)
			}
		}
		if c != nil {
			plan.Update = append(plan.Update, c)
		}
	}
	return plan
}

// svcID names a Service in events.
func svcID(s *api.Service) string { return s.Namespace + "/" + s.Name }

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// nthSubnet is the i-th subnet of size bits inside p.
func nthSubnet(p netip.Prefix, bits int, i uint64) (netip.Prefix, bool) {
	b := p.Addr().AsSlice()
	total := len(b) * 8
	if bits-p.Bits() < 64 && i >= uint64(1)<<(bits-p.Bits()) {
		return netip.Prefix{}, false
	}
	// Add i << (total-bits) to the address, byte by byte from the right.
	shift := total - bits
	carry := uint64(0)
	for k := len(b) - 1; k >= 0; k-- {
		pos := (len(b)-1-k)*8 - shift // bit position of this byte's lsb in i
		var add uint64
		switch {
		case pos >= 64:
			add = 0
		case pos >= 0:
			add = (i >> pos) & 0xff
		case pos > -8:
			add = (i << -pos) & 0xff
		}
		v := uint64(b[k]) + add + carry
		b[k] = byte(v)
		carry = v >> 8
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, bits), true
}

// AllocatePodCIDRs gives every node without spec.podCIDR a subnet of
// nodeMaskBits (e.g. a /24) from clusterCIDR (e.g. 10.244.0.0/16): the
// lowest subnet no other node holds, nodes taken oldest first. A node's
// subnet never changes once set, and no two nodes ever get the same one;
// nodes that already clash, or hold a subnet outside clusterCIDR, are
// reported, not renumbered. The list must hold every Node.
func AllocatePodCIDRs(clusterCIDR string, nodeMaskBits int, nodes []*api.Node) Plan {
	var plan Plan
	say := func(format string, a ...any) { plan.Events = append(plan.Events, fmt.Sprintf(format, a...)) }
	prefix, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		say("cluster CIDR %q: %v", clusterCIDR, err)
		return plan
	}
	prefix = prefix.Masked()
	if nodeMaskBits < prefix.Bits() || nodeMaskBits > prefix.Addr().BitLen() {
		say("node mask /%d does not fit in cluster CIDR %s", nodeMaskBits, prefix)
		return plan
	}
	ns := append([]*api.Node(nil), nodes...)
	sort.SliceStable(ns, func(i, j int) bool { return olderFirst(&ns[i].ObjectMeta, &ns[j].ObjectMeta) })
	used := map[netip.Prefix]string{}
	for _, n := range ns {
		if n.Spec.PodCIDR == "" {
			continue
		}
		p, err := netip.ParsePrefix(n.Spec.PodCIDR)
		switch {
		case err != nil:
			say("Node %s: podCIDR %q: %v", n.Name, n.Spec.PodCIDR, err)
		case p.Bits() < prefix.Bits() || !prefix.Contains(p.Addr()):
			say("Node %s: podCIDR %s is outside the cluster CIDR %s", n.Name, p, prefix)
		default:
			// Mark every subnet of our size it covers (a node may hold a
			// bigger or smaller block than nodeMaskBits).
			p = p.Masked()
			if p.Bits() >= nodeMaskBits {
				p = netip.PrefixFrom(p.Addr(), nodeMaskBits).Masked()
			}
			if o := used[p]; o != "" {
				say("Node %s: podCIDR %s overlaps node %s's", n.Name, n.Spec.PodCIDR, o)
			}
			for i := uint64(0); ; i++ {
				s, ok := nthSubnet(p, nodeMaskBits, i)
				if !ok || i > 1<<20 {
					break
				}
				used[s] = n.Name
			}
		}
	}
	next := uint64(0)
	for _, n := range ns {
		if n.Spec.PodCIDR != "" || n.DeletionTimestamp != nil {
			continue
		}
		var s netip.Prefix
		ok := false
		for {
			s, ok = nthSubnet(prefix, nodeMaskBits, next)
			if !ok || used[s] == "" {
				break
			}
			next++
		}
		if !ok {
			say("Node %s: no free /%d left in %s", n.Name, nodeMaskBits, prefix)
			continue
		}
		used[s] = n.Name
		c := n.DeepCopyObject().(*api.Node)
		c.Spec.PodCIDR = s.String()
		c.Spec.PodCIDRs = []string{s.String()}
		plan.Update = append(plan.Update, c)
		say("Node %s: allocated podCIDR %s", n.Name, s)
	}
	return plan
}
