package lb

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
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

// setKind is a set whose elements services put in: one of the fixed sets,
// or one of the sets of service ports with a given number of endpoints.
type setKind uint8

const (
	skAffinityIPs setKind = iota
	skAffinityNodePorts
	skClusterEndpoints
	skNodePortEndpoints
	skNodePortMasquerade
	skNoEndpointServices
	skNoEndpointNodePorts
	skClusterIPs
	skHairpin
	numFixedSets
	skClusterSized  = numFixedSets     // cluster-<n>
	skNodePortSized = numFixedSets + 1 // nodeport-<n>
)

// setID names a set services put elements in.
type setID struct {
	kind setKind
	n    uint32 // number of endpoints, for the sized kinds
}

func (id setID) sized() bool { return id.kind >= numFixedSets }

// fixedSets declares the fixed sets, in creation order.
var fixedSets = [numFixedSets]*setSpec{
	skAffinityIPs:         {name: setAffinityIPs, key: typesVIP, verdict: true},
	skAffinityNodePorts:   {name: setAffinityNodePorts, key: typesNodePort, verdict: true},
	skClusterEndpoints:    {name: setClusterEndpoints, key: withIndex(typesVIP), data: typesEndpoint},
	skNodePortEndpoints:   {name: setNodePortEndpoints, key: withIndex(typesNodePort), data: typesEndpoint},
	skNodePortMasquerade:  {name: setNodePortMasquerade, key: typesNodePort},
	skNoEndpointServices:  {name: setNoEndpointServices, key: typesVIP},
	skNoEndpointNodePorts: {name: setNoEndpointNodePort, key: typesNodePort},
	skClusterIPs:          {name: setClusterIPs, key: typesAddr},
	skHairpin:             {name: setHairpin, key: typesAddrPair},
}

// spec declares the set.
func (id setID) spec() *setSpec {
	switch id.kind {
	case skClusterSized:
		return &setSpec{name: sizedSetName(false, id.n), key: typesVIP}
	case skNodePortSized:
		return &setSpec{name: sizedSetName(true, id.n), key: typesNodePort}
	}
	return fixedSets[id.kind]
}

func compareSetIDs(a, b setID) int {
	return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.n, b.n))
}

// sets returns the table's sets and maps in creation order: the fixed
// ones, the sized ones given, nodeport-ips; each with its elements.
func (p *plan) sets(sized []setID, elements map[setID][]element) []*setSpec {
	var sets []*setSpec
	add := func(id setID) {
		s := *id.spec()
		s.elements = elements[id]
		sets = append(sets, &s)
	}
	for k := range numFixedSets {
		if k == skClusterIPs && !p.cluster.IsValid() {
			continue
		}
		add(setID{kind: k})
	}
	for _, id := range sized {
		add(id)
	}
	if len(p.nodeIPs) > 0 {
		s := &setSpec{name: setNodePortIPs, key: typesAddr}
		for _, ip := range p.nodeIPs {
			s.elements = append(s.elements, addrElement(ip))
		}
		sets = append(sets, s)
	}
	return sets
}

// chains returns the table's own chains in creation order. Services and
// nodeports hold a rule per sized set given (in that order); the rest never
// changes.
//
// DNAT happens in nat prerouting (traffic arriving) and nat output (the
// node's own traffic). Rejecting needs a filter chain (reject is not
// allowed in nat chains): new connections to a service port without
// endpoints are rejected in input (NodePorts), forward (ClusterIPs from
// pods) and output (the node's own).
func (p *plan) chains(sized []setID) []*chainSpec {
	nat := func(name string, hook *nftables.ChainHook, prio nftables.ChainPriority, text string, rules ...rule) *chainSpec {
		return &chainSpec{name: name, hook: &hookSpec{typ: nftables.ChainTypeNAT, hook: hook, priority: prio, text: text}, rules: rules}
	}
	filter := func(name string, hook *nftables.ChainHook, hookName string) *chainSpec {
		return &chainSpec{name: name,
			hook:  &hookSpec{typ: nftables.ChainTypeFilter, hook: hook, priority: *nftables.ChainPriorityFilter, text: "type filter hook " + hookName + " priority filter"},
			rules: []rule{ruleNewJump(chainRejectServices)}}
	}
	nodeIPSet := len(p.nodeIPs) > 0
	return []*chainSpec{
		nat(chainNATPrerouting, nftables.ChainHookPrerouting, *nftables.ChainPriorityNATDest,
			"type nat hook prerouting priority dstnat", ruleJump(chainServices)),
		nat(chainNATOutput, nftables.ChainHookOutput, *nftables.ChainPriorityNATDest,
			"type nat hook output priority -100", ruleJump(chainServices)),
		nat(chainNATPostrouting, nftables.ChainHookPostrouting, *nftables.ChainPriorityNATSource,
			"type nat hook postrouting priority srcnat",
			ruleHairpin(), ruleMarkUnsetReturn(p.mark), ruleMarkClear(p.mark), ruleMasqueradeFullyRandom()),
		p.servicesChain(sized),
		p.nodePortsChain(sized),
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

// servicesChain: masquerade marks, affinity services, then for each number
// of endpoints n in use, the ports with n endpoints DNAT to one of them.
// Moving a port from one n to another changes set elements only; the
// kernel re-checks the whole table when a rule or a goto element is added,
// which this avoids.
func (p *plan) servicesChain(sized []setID) *chainSpec {
	c := &chainSpec{name: chainServices}
	if p.cluster.IsValid() {
		c.rules = append(c.rules, ruleMasqueradeFromOutside(p.cluster))
	}
	c.rules = append(c.rules, ruleVIP(setAffinityIPs, ""))
	for _, id := range sized {
		if id.kind == skClusterSized {
			c.rules = append(c.rules, ruleDNATSized(id.spec().name, id.n, false))
		}
	}
	c.rules = append(c.rules, ruleNodeJump(len(p.nodeIPs) > 0, chainNodePorts))
	return c
}

func (p *plan) nodePortsChain(sized []setID) *chainSpec {
	c := &chainSpec{name: chainNodePorts, rules: []rule{
		ruleNodePortVmap(setAffinityNodePorts),
		ruleNodePortMark(setNodePortMasquerade, chainMarkMasq),
	}}
	for _, id := range sized {
		if id.kind == skNodePortSized {
			c.rules = append(c.rules, ruleDNATSized(id.spec().name, id.n, true))
		}
	}
	return c
}

// setElement is an element a service puts in a set.
type setElement struct {
	set setID
	el  element
}

// fragment is everything one service puts in the table: elements of the
// shared sets, and (with session affinity) sets and chains of its own.
type fragment struct {
	elems  []setElement
	sets   []*setSpec
	chains []*chainSpec
}

// fragment computes the service's part of the table. The service must be
// valid; a headless one has an empty fragment.
func (p *plan) fragment(s *held) *fragment {
	f := &fragment{}
	if s.Headless() {
		return f
	}
	n := 1
	for i := range s.Ports {
		n += 2*len(s.eps[i]) + 5
	}
	f.elems = make([]setElement, 0, n)
	vip := netip.MustParseAddr(s.ClusterIP)
	if p.cluster.IsValid() {
		f.add(setID{kind: skClusterIPs}, addrElement(vip))
	}
	hairpin := map[netip.Addr]bool{}
	for i, port := range s.Ports {
		proto := protocols[port.Protocol]
		eps := s.endpoints(i)
		for _, e := range eps {
			if e.local && !hairpin[e.addr] {
				hairpin[e.addr] = true
				f.add(setID{kind: skHairpin}, hairpinElement(e.addr))
			}
		}
		clusterEps, extEps := eps, eps
		if s.InternalLocal {
			clusterEps = localOnly(eps)
		}
		if s.ExternalLocal {
			extEps = localOnly(eps)
		}
		if s.AffinityTimeout > 0 {
			p.affinity(f, s.Service, port, proto, clusterEps, extEps)
			continue
		}
		vipKey := vipKey(vip, proto, port.Port)
		if len(clusterEps) == 0 {
			f.add(setID{kind: skNoEndpointServices}, keyElement(vipKey))
		} else {
			f.add(setID{kind: skClusterSized, n: uint32(len(clusterEps))}, keyElement(vipKey))
			for i, e := range clusterEps {
				f.add(setID{kind: skClusterEndpoints}, endpointElement(vipKey, i, e))
			}
		}
		if port.NodePort == 0 {
			continue
		}
		npKey := nodePortKey(proto, port.NodePort)
		if len(extEps) == 0 {
			f.add(setID{kind: skNoEndpointNodePorts}, keyElement(npKey))
			continue
		}
		if !s.ExternalLocal {
			f.add(setID{kind: skNodePortMasquerade}, keyElement(npKey))
		}
		f.add(setID{kind: skNodePortSized, n: uint32(len(extEps))}, keyElement(npKey))
		for i, e := range extEps {
			f.add(setID{kind: skNodePortEndpoints}, endpointElement(npKey, i, e))
		}
	}
	return f
}

func (f *fragment) add(set setID, el element) {
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
		f.add(setID{kind: skNoEndpointServices}, keyElement(vipKey))
	} else {
		c := &chainSpec{name: affinityServiceChain(h, k, port), rules: pick(clusterEps)}
		f.chains = append(f.chains, c)
		f.add(setID{kind: skAffinityIPs}, gotoElement(vipKey, c.name))
	}
	if port.NodePort == 0 {
		return
	}
	if len(extEps) == 0 {
		f.add(setID{kind: skNoEndpointNodePorts}, keyElement(npKey))
		return
	}
	var rules []rule
	if !s.ExternalLocal {
		rules = append(rules, ruleJump(chainMarkMasq))
	}
	c := &chainSpec{name: affinityExternalChain(h, k, port), rules: append(rules, pick(extEps)...)}
	f.chains = append(f.chains, c)
	f.add(setID{kind: skAffinityNodePorts}, gotoElement(npKey, c.name))
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

func protoName(n byte) string {
	for _, p := range protocols {
		if p.number == n {
			return p.name
		}
	}
	return fmt.Sprint(n)
}

func keyElement(key []byte) element { return newElement(key, nil, "") }

func gotoElement(key []byte, chain string) element { return newElement(key, nil, chain) }

func endpointElement(key []byte, i int, e endpoint) element {
	el := newElement(key, nil, "")
	binary.NativeEndian.PutUint32(el.key[el.klen:], uint32(i))
	el.klen += 4
	a := e.addr.As4()
	copy(el.val[:], a[:])
	binary.BigEndian.PutUint16(el.val[4:], e.port)
	el.vlen = 8
	return el
}

func addrElement(ip netip.Addr) element {
	a := ip.As4()
	return newElement(a[:], nil, "")
}

func hairpinElement(ip netip.Addr) element {
	a := ip.As4()
	return newElement(append(a[:], a[:]...), nil, "")
}

// full is the whole table for the given services (valid ones, sorted by
// key): what a full sync creates and Render prints.
func (p *plan) full(services []*held) (*ruleset, *registry) {
	frags := make([]*fragment, len(services))
	for i, s := range services {
		frags[i] = p.fragment(s)
	}
	reg := newRegistry()
	for i, s := range services {
		reg.claimAll(s.Key(), frags[i])
	}
	sized := reg.sizedSets()
	r := &ruleset{table: p.table, sets: p.sets(sized, reg.installedElements()), chains: p.chains(sized)}
	for _, f := range frags {
		r.sets = append(r.sets, f.sets...)
		r.chains = append(r.chains, f.chains...)
	}
	return r, reg
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
	return slices.SortedFunc(maps.Values(byKey), func(a, b Service) int { return compareKeys(a.Key(), b.Key()) }), errs
}

func compareKeys(a, b ServiceKey) int { return a.Compare(b) }

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
	r, _ := p.full(holdAll(valid))
	return r.text()
}
