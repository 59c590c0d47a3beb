package lb

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// plan is a validated Config in the form the rules use.
type plan struct {
	table   string
	nodeIPs []netip.Addr // sorted; empty: fib daddr type local
	cluster netip.Prefix // invalid: no masquerade from outside
	mark    uint32
}

func newPlan(cfg Config) (*plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lb: config: %w", err)
	}
	p := &plan{table: cfg.Table, mark: cfg.MasqueradeMark}
	for _, s := range cfg.NodeIPs {
		p.nodeIPs = append(p.nodeIPs, netip.MustParseAddr(s))
	}
	slices.SortFunc(p.nodeIPs, netip.Addr.Compare)
	if cfg.ClusterCIDR != "" {
		p.cluster = netip.MustParsePrefix(cfg.ClusterCIDR)
		if p.cluster.Bits() == 0 {
			p.cluster = netip.Prefix{} // every source is a pod: nothing to masquerade
		}
	}
	return p, nil
}

// Set key and data types.
var (
	typesVIP      = []nftables.SetDatatype{nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService}
	typesNodePort = []nftables.SetDatatype{nftables.TypeInetProto, nftables.TypeInetService}
	typesEndpoint = []nftables.SetDatatype{nftables.TypeIPAddr, nftables.TypeInetService}
	typesAddr     = []nftables.SetDatatype{nftables.TypeIPAddr}
	typesAddrPair = []nftables.SetDatatype{nftables.TypeIPAddr, nftables.TypeIPAddr}
)

// withIndex appends the endpoint's number, numgen's value. Its type is
// mark, a 4-byte integer in host byte order that nft prints in hex: nft
// cannot list a concatenation holding a plain integer, whose size it does
// not know (it aborts).
func withIndex(types []nftables.SetDatatype) []nftables.SetDatatype {
	return append(slices.Clone(types), nftables.TypeMark)
}

// staticSets are the table's fixed sets and maps, in creation order.
func (p *plan) staticSets() []*setSpec {
	sets := []*setSpec{
		{name: setServiceIPs, key: typesVIP, verdict: true},
		{name: setServiceNodePorts, key: typesNodePort, verdict: true},
		{name: setClusterEndpoints, key: withIndex(typesVIP), data: typesEndpoint},
		{name: setNodePortEndpoints, key: withIndex(typesNodePort), data: typesEndpoint},
		{name: setNoEndpointServices, key: typesVIP},
		{name: setNoEndpointNodePort, key: typesNodePort},
	}
	if p.cluster.IsValid() {
		sets = append(sets, &setSpec{name: setClusterIPs, key: typesAddr})
	}
	sets = append(sets, &setSpec{name: setHairpin, key: typesAddrPair})
	if len(p.nodeIPs) > 0 {
		s := &setSpec{name: setNodePortIPs, key: typesAddr}
		for _, ip := range p.nodeIPs {
			s.elements = append(s.elements, addrElement(ip))
		}
		sets = append(sets, s)
	}
	return sets
}

// staticChains are the table's fixed chains, in creation order.
//
// DNAT happens in nat prerouting (traffic arriving) and nat output (the
// node's own traffic); both look the packet up in the service maps.
// Rejecting needs a filter chain (reject is not allowed in nat chains): new
// connections to a service port without endpoints are rejected in input
// (NodePorts), forward (ClusterIPs from pods) and output (the node's own).
func (p *plan) staticChains() []*chainSpec {
	nat := func(name string, hook *nftables.ChainHook, prio nftables.ChainPriority, text string, rules ...rule) *chainSpec {
		return &chainSpec{name: name, hook: &hookSpec{typ: nftables.ChainTypeNAT, hook: hook, priority: prio, text: text}, rules: rules}
	}
	filter := func(name string, hook *nftables.ChainHook, hookName string) *chainSpec {
		return &chainSpec{name: name,
			hook:  &hookSpec{typ: nftables.ChainTypeFilter, hook: hook, priority: *nftables.ChainPriorityFilter, text: "type filter hook " + hookName + " priority filter"},
			rules: []rule{ruleNewJump(chainRejectServices)}}
	}
	var services []rule
	if p.cluster.IsValid() {
		services = append(services, ruleMasqueradeFromOutside(p.cluster))
	}
	nodeIPSet := len(p.nodeIPs) > 0
	services = append(services, ruleVIP(setServiceIPs, ""), ruleNodePort(nodeIPSet, setServiceNodePorts, ""))
	return []*chainSpec{
		nat(chainNATPrerouting, nftables.ChainHookPrerouting, *nftables.ChainPriorityNATDest,
			"type nat hook prerouting priority dstnat", ruleJump(chainServices)),
		nat(chainNATOutput, nftables.ChainHookOutput, *nftables.ChainPriorityNATDest,
			"type nat hook output priority -100", ruleJump(chainServices)),
		nat(chainNATPostrouting, nftables.ChainHookPostrouting, *nftables.ChainPriorityNATSource,
			"type nat hook postrouting priority srcnat",
			ruleHairpin(), ruleMarkUnsetReturn(p.mark), ruleMarkClear(p.mark), ruleMasqueradeFullyRandom()),
		{name: chainServices, rules: services},
		{name: chainMarkMasq, rules: []rule{ruleMarkSet(p.mark)}},
		filter(chainFilterInput, nftables.ChainHookInput, "input"),
		filter(chainFilterForward, nftables.ChainHookForward, "forward"),
		filter(chainFilterOutput, nftables.ChainHookOutput, "output"),
		{name: chainRejectServices, rules: []rule{
			ruleVIP(setNoEndpointServices, chainReject),
			ruleNodePort(nodeIPSet, setNoEndpointNodePort, chainReject),
		}},
		{name: chainReject, rules: []rule{ruleRejectTCPReset(), ruleRejectPortUnreachable()}},
	}
}

// setElement is an element of one of the fixed sets, claimed by a service.
type setElement struct {
	set string
	el  element
}

// fragment is everything one service puts in the table: elements of the
// fixed sets, the shared chains it sends traffic to, and (with session
// affinity) sets and chains of its own.
type fragment struct {
	elems  []setElement
	shared []*chainSpec
	sets   []*setSpec
	chains []*chainSpec
}

// fragment computes the service's part of the table. The service must be
// valid; a headless one has an empty fragment.
func (p *plan) fragment(s Service) *fragment {
	f := &fragment{}
	if s.Headless() {
		return f
	}
	vip := netip.MustParseAddr(s.ClusterIP)
	if p.cluster.IsValid() {
		f.add(setClusterIPs, addrElement(vip))
	}
	hairpin := map[netip.Addr]bool{}
	for _, port := range s.Ports {
		proto := protocols[port.Protocol]
		eps := parseEndpoints(port.Endpoints)
		for _, e := range eps {
			if e.local && !hairpin[e.addr] {
				hairpin[e.addr] = true
				f.add(setHairpin, hairpinElement(e.addr))
			}
		}
		clusterEps, extEps := eps, eps
		if s.InternalLocal {
			clusterEps = localOnly(eps)
		}
		if s.ExternalLocal {
			extEps = localOnly(eps)
		}
		vipKey := vipKey(vip, proto, port.Port)
		npKey := nodePortKey(proto, port.NodePort)
		if s.AffinityTimeout > 0 {
			p.affinity(f, s, port, proto, clusterEps, extEps)
			continue
		}
		if len(clusterEps) == 0 {
			f.add(setNoEndpointServices, keyElement(vipKey))
		} else {
			c := sharedChain(kindCluster, proto, len(clusterEps))
			f.shared = append(f.shared, c)
			f.add(setServiceIPs, gotoElement(vipKey, c.name))
			for i, e := range clusterEps {
				f.add(setClusterEndpoints, endpointElement(vipKey, i, e))
			}
		}
		if port.NodePort == 0 {
			continue
		}
		if len(extEps) == 0 {
			f.add(setNoEndpointNodePort, keyElement(npKey))
			continue
		}
		kind := kindNodePort
		if s.ExternalLocal {
			kind = kindNodePortLocal
		}
		c := sharedChain(kind, proto, len(extEps))
		f.shared = append(f.shared, c)
		f.add(setServiceNodePorts, gotoElement(npKey, c.name))
		for i, e := range extEps {
			f.add(setNodePortEndpoints, endpointElement(npKey, i, e))
		}
	}
	return f
}

func (f *fragment) add(set string, el element) {
	f.elems = append(f.elems, setElement{set, el})
}

// affinity adds a port with session affinity: its own chains, and a set
// per endpoint remembering the clients sent there.
func (p *plan) affinity(f *fragment, s Service, port Port, proto protocol, clusterEps, extEps []endpoint) {
	k := s.Key()
	h := portHash(k, port)
	vipKey := vipKey(netip.MustParseAddr(s.ClusterIP), proto, port.Port)
	npKey := nodePortKey(proto, port.NodePort)
	used := slices.Clone(clusterEps)
	if port.NodePort != 0 {
		used = append(used, extEps...)
	}
	slices.SortFunc(used, compareEndpoints)
	used = slices.CompactFunc(used, func(a, b endpoint) bool { return compareEndpoints(a, b) == 0 })
	for _, e := range used {
		set := affinitySet(h, e)
		f.sets = append(f.sets, &setSpec{name: set, key: typesAddr, timeout: s.AffinityTimeout})
		f.chains = append(f.chains, &chainSpec{name: affinityEndpointChain(h, e), rules: []rule{
			ruleAffinityRemember(set), ruleDNATTo(proto, e),
		}})
	}
	pick := func(eps []endpoint) []rule {
		var rules []rule
		for _, e := range eps {
			rules = append(rules, ruleAffinityHit(affinitySet(h, e), affinityEndpointChain(h, e)))
		}
		for i, e := range eps {
			if i == len(eps)-1 {
				rules = append(rules, ruleGoto(affinityEndpointChain(h, e)))
			} else {
				rules = append(rules, rulePick(len(eps)-i, affinityEndpointChain(h, e)))
			}
		}
		return rules
	}
	if len(clusterEps) == 0 {
		f.add(setNoEndpointServices, keyElement(vipKey))
	} else {
		c := &chainSpec{name: affinityServiceChain(h, k, port), rules: pick(clusterEps)}
		f.chains = append(f.chains, c)
		f.add(setServiceIPs, gotoElement(vipKey, c.name))
	}
	if port.NodePort == 0 {
		return
	}
	if len(extEps) == 0 {
		f.add(setNoEndpointNodePort, keyElement(npKey))
		return
	}
	var rules []rule
	if !s.ExternalLocal {
		rules = append(rules, ruleJump(chainMarkMasq))
	}
	c := &chainSpec{name: affinityExternalChain(h, k, port), rules: append(rules, pick(extEps)...)}
	f.chains = append(f.chains, c)
	f.add(setServiceNodePorts, gotoElement(npKey, c.name))
}

// sharedChain is the chain DNATing to one of n endpoints found in the
// endpoint maps.
func sharedChain(kind string, proto protocol, n int) *chainSpec {
	c := &chainSpec{name: sharedChainName(kind, proto, n)}
	if kind == kindNodePort {
		c.rules = append(c.rules, ruleJump(chainMarkMasq))
	}
	c.rules = append(c.rules, ruleDNATByMap(proto, n, kind != kindCluster))
	return c
}

// compareSharedChains orders shared chains by kind, protocol, then number of
// endpoints.
func compareSharedChains(a, b *chainSpec) int {
	ka, pa, na := splitSharedName(a.name)
	kb, pb, nb := splitSharedName(b.name)
	return cmp.Or(cmp.Compare(ka, kb), cmp.Compare(pa, pb), cmp.Compare(na, nb))
}

func splitSharedName(name string) (kind, proto string, n int) {
	i := strings.LastIndexByte(name, '-')
	j := strings.LastIndexByte(name[:i], '-')
	fmt.Sscan(name[i+1:], &n)
	return name[:j], name[j+1 : i], n
}

// Element encodings: each field of a concatenation takes a multiple of 4
// bytes; integers (numgen's value) are in host byte order.

func vipKey(vip netip.Addr, proto protocol, port int) []byte {
	a := vip.As4()
	b := make([]byte, 12)
	copy(b, a[:])
	b[4] = proto.number
	binary.BigEndian.PutUint16(b[8:], uint16(port))
	return b
}

func nodePortKey(proto protocol, port int) []byte {
	b := make([]byte, 8)
	b[0] = proto.number
	binary.BigEndian.PutUint16(b[4:], uint16(port))
	return b
}

// keyText prints a vipKey or nodePortKey as nft does.
func keyText(key []byte) string {
	var addr string
	if len(key) == 12 {
		addr = netip.AddrFrom4([4]byte(key[:4])).String() + " . "
		key = key[4:]
	}
	return fmt.Sprintf("%s%s . %d", addr, protoName(key[0]), binary.BigEndian.Uint16(key[4:]))
}

func protoName(n byte) string {
	for _, p := range protocols {
		if p.number == n {
			return p.name
		}
	}
	return fmt.Sprint(n)
}

func keyElement(key []byte) element {
	return element{key: key, text: keyText(key), sort: key}
}

func gotoElement(key []byte, chain string) element {
	return element{key: key, goTo: chain, text: keyText(key) + " : goto " + chain, sort: key}
}

func endpointElement(key []byte, i int, e endpoint) element {
	k := binary.NativeEndian.AppendUint32(slices.Clone(key), uint32(i))
	sort := binary.BigEndian.AppendUint32(slices.Clone(key), uint32(i))
	a := e.addr.As4()
	val := make([]byte, 8)
	copy(val, a[:])
	binary.BigEndian.PutUint16(val[4:], e.port)
	return element{key: k, val: val, sort: sort,
		text: fmt.Sprintf("%s . 0x%08x : %s . %d", keyText(key), i, e.addr, e.port)}
}

func addrElement(ip netip.Addr) element {
	a := ip.As4()
	return element{key: a[:], text: ip.String(), sort: a[:]}
}

func hairpinElement(ip netip.Addr) element {
	a := ip.As4()
	k := append(a[:], a[:]...)
	return element{key: k, text: ip.String() + " . " + ip.String(), sort: k}
}

// full is the whole table for the given services (valid ones, sorted by
// key): what a full sync creates and Render prints.
func (p *plan) full(services []Service) (*ruleset, map[ServiceKey]*fragment, *registry) {
	frags := make(map[ServiceKey]*fragment, len(services))
	reg := newRegistry()
	for _, s := range services {
		f := p.fragment(s)
		frags[s.Key()] = f
		reg.claimAll(s.Key(), f)
	}
	r := &ruleset{table: p.table, sets: p.staticSets(), chains: p.staticChains()}
	for _, s := range r.sets {
		s.elements = append(s.elements, reg.installedElements(s.name)...)
	}
	r.chains = append(r.chains, reg.sharedChains()...)
	for _, s := range services {
		f := frags[s.Key()]
		r.sets = append(r.sets, f.sets...)
		r.chains = append(r.chains, f.chains...)
	}
	return r, frags, reg
}

// sortedValid returns the valid services sorted by key (the last one given
// wins when a key repeats).
func sortedValid(services []Service) ([]Service, []error) {
	byKey := map[ServiceKey]Service{}
	var errs []error
	for _, s := range services {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		byKey[s.Key()] = s
	}
	out := make([]Service, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Service) int { return compareKeys(a.Key(), b.Key()) })
	return out, errs
}

func compareKeys(a, b ServiceKey) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// Render returns the table the load balancer programs for these services,
// as `nft list table ip <cfg.Table>` prints it (elements sorted by key).
// Invalid services are left out, as the applier refuses them; an invalid
// configuration renders as a comment saying why.
func Render(cfg Config, services []Service) string {
	p, err := newPlan(cfg)
	if err != nil {
		return "# " + strings.ReplaceAll(err.Error(), "\n", "\n# ") + "\n"
	}
	valid, _ := sortedValid(services)
	r, _, _ := p.full(valid)
	return r.text()
}
