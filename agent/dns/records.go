package dns

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/api"
)

// svcKey names a Service and its Endpoints.
type svcKey struct{ ns, name string }

// A digest of an object is only what the records are made of, so that an
// update that changes nothing of it (status, labels) costs a compare. The
// index keeps the objects themselves (shared with the caller, read-only)
// and digests them when it computes records.

type portInfo struct {
	name  string // "" for an unnamed port
	proto string // lower case: tcp, udp, sctp
	port  uint16
}

type serviceInfo struct {
	ips             []netip.Addr // ClusterIPs; empty when headless or not yet allocated
	headless        bool
	publishNotReady bool
	ports           []portInfo
}

type addrInfo struct {
	ip       netip.Addr
	hostname string
	ready    bool
}

type subsetInfo struct {
	addrs []addrInfo
	ports []portInfo
}

type endpointsInfo struct {
	subsets []subsetInfo
}

func keyOf(m *api.ObjectMeta) svcKey {
	ns := m.Namespace
	if ns == "" {
		ns = "default"
	}
	return svcKey{ns: strings.ToLower(ns), name: strings.ToLower(m.Name)}
}

func (k svcKey) valid() bool { return validLabel(k.ns) && validLabel(k.name) }

func protoOf(p string) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(p)
}

// serviceInfoOf digests s; nil for nil.
func serviceInfoOf(s *api.Service) *serviceInfo {
	if s == nil {
		return nil
	}
	si := &serviceInfo{
		headless:        s.Spec.ClusterIP == api.ClusterIPNone,
		publishNotReady: s.Spec.PublishNotReadyAddresses,
	}
	if !si.headless {
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil && !slices.Contains(si.ips, a.Unmap()) {
				si.ips = append(si.ips, a.Unmap())
			}
		}
	}
	si.ports = make([]portInfo, 0, len(s.Spec.Ports))
	for _, p := range s.Spec.Ports {
		if p.Port > 0 && p.Port < 65536 {
			si.ports = append(si.ports, portInfo{name: strings.ToLower(p.Name), proto: protoOf(p.Protocol), port: uint16(p.Port)})
		}
	}
	return si
}

// endpointsInfoOf digests e; nil for nil.
func endpointsInfoOf(e *api.Endpoints) *endpointsInfo {
	if e == nil {
		return nil
	}
	// Slices are made to measure: the index keeps one of these per
	// Endpoints object (10,000 of them in the services figure).
	ei := &endpointsInfo{subsets: make([]subsetInfo, 0, len(e.Subsets))}
	for _, ss := range e.Subsets {
		si := subsetInfo{addrs: make([]addrInfo, 0, len(ss.Addresses)+len(ss.NotReadyAddresses)), ports: make([]portInfo, 0, len(ss.Ports))}
		add := func(as []api.EndpointAddress, ready bool) {
			for _, a := range as {
				ip, err := netip.ParseAddr(a.IP)
				if err != nil {
					continue
				}
				si.addrs = append(si.addrs, addrInfo{ip: ip.Unmap(), hostname: strings.ToLower(a.Hostname), ready: ready})
			}
		}
		add(ss.Addresses, true)
		add(ss.NotReadyAddresses, false)
		for _, p := range ss.Ports {
			if p.Port > 0 && p.Port < 65536 {
				si.ports = append(si.ports, portInfo{name: strings.ToLower(p.Name), proto: protoOf(p.Protocol), port: uint16(p.Port)})
			}
		}
		if len(si.addrs) > 0 {
			ei.subsets = append(ei.subsets, si)
		}
	}
	return ei
}

func (a *serviceInfo) equal(b *serviceInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.headless == b.headless && a.publishNotReady == b.publishNotReady &&
		slices.Equal(a.ips, b.ips) && slices.Equal(a.ports, b.ports)
}

func (a *endpointsInfo) equal(b *endpointsInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.EqualFunc(a.subsets, b.subsets, func(x, y subsetInfo) bool {
		return slices.Equal(x.addrs, y.addrs) && slices.Equal(x.ports, y.ports)
	})
}

// recSet is what one name holds.
type recSet struct {
	addrs []netip.Addr // A and AAAA
	srvs  []srvRec
	ptrs  []string // PTR targets, FQDN
}

type srvRec struct {
	target string // FQDN
	port   uint16
	weight uint16
	addrs  []netip.Addr // the target's addresses, for the additional section
}

func (r *recSet) empty() bool { return len(r.addrs) == 0 && len(r.srvs) == 0 && len(r.ptrs) == 0 }

// merge adds o's records to r, without duplicates.
func (r *recSet) merge(o *recSet) {
	for _, a := range o.addrs {
		if !slices.Contains(r.addrs, a) {
			r.addrs = append(r.addrs, a)
		}
	}
	for _, s := range o.srvs {
		if !slices.ContainsFunc(r.srvs, func(x srvRec) bool { return x.target == s.target && x.port == s.port }) {
			r.srvs = append(r.srvs, s)
		}
	}
	for _, p := range o.ptrs {
		if !slices.Contains(r.ptrs, p) {
			r.ptrs = append(r.ptrs, p)
		}
	}
}

func (r *recSet) equal(o *recSet) bool {
	return slices.Equal(r.addrs, o.addrs) && slices.Equal(r.ptrs, o.ptrs) &&
		slices.EqualFunc(r.srvs, o.srvs, func(x, y srvRec) bool {
			return x.target == y.target && x.port == y.port && x.weight == y.weight && slices.Equal(x.addrs, y.addrs)
		})
}

// nameRecs is one name (lower-case FQDN) and its records.
type nameRecs struct {
	name string
	recs recSet
}

// serviceRecords computes every name a Service owns and what each holds,
// from the Service and its Endpoints (eps may be nil). It is pure: the
// index calls it for the old and the new state of a key and applies the
// difference. domain is the cluster domain, lower case, without the final
// dot. Names come out sorted.
func serviceRecords(k svcKey, svc *serviceInfo, eps *endpointsInfo, domain string) []nameRecs {
	if svc == nil || !k.valid() {
		return nil
	}
	sets := map[string]*recSet{}
	at := func(name string) *recSet {
		r := sets[name]
		if r == nil {
			r = &recSet{}
			sets[name] = r
		}
		return r
	}
	base := k.name + "." + k.ns + ".svc." + domain + "."
	at(base) // the service's name exists even with no address yet (NODATA)

	// published lists the endpoint addresses DNS shows: the ready ones,
	// and the not-ready ones when the Service asks for them.
	type published struct {
		addr  addrInfo
		ports []portInfo
	}
	var pubs []published
	if eps != nil {
		for _, ss := range eps.subsets {
			for _, a := range ss.addrs {
				if a.ready || svc.publishNotReady {
					pubs = append(pubs, published{a, ss.ports})
				}
			}
		}
	}
	// endpointName is the name an endpoint address gets under the service.
	endpointName := func(a addrInfo) string {
		if a.hostname != "" && validLabel(a.hostname) {
			return a.hostname + "." + base
		}
		return strings.NewReplacer(".", "-", ":", "-").Replace(a.ip.String()) + "." + base
	}

	if !svc.headless {
		at(base).addrs = append(at(base).addrs, svc.ips...)
		for _, p := range svc.ports {
			if p.name == "" || !validLabel(p.name) {
				continue
			}
			r := at("_" + p.name + "._" + p.proto + "." + base)
			r.srvs = append(r.srvs, srvRec{target: base, port: p.port, weight: 100, addrs: svc.ips})
		}
		for _, ip := range svc.ips {
			rev, err := mdns.ReverseAddr(ip.String())
			if err == nil {
				at(rev).ptrs = []string{base}
			}
		}
		// Endpoints with a hostname are reachable by name under a
		// ClusterIP Service too.
		for _, p := range pubs {
			if p.addr.hostname != "" && validLabel(p.addr.hostname) {
				name := endpointName(p.addr)
				at(name).merge(&recSet{addrs: []netip.Addr{p.addr.ip}})
				if rev, err := mdns.ReverseAddr(p.addr.ip.String()); err == nil {
					at(rev).merge(&recSet{ptrs: []string{name}})
				}
			}
		}
	} else {
		for _, p := range pubs {
			name := endpointName(p.addr)
			at(base).merge(&recSet{addrs: []netip.Addr{p.addr.ip}})
			at(name).merge(&recSet{addrs: []netip.Addr{p.addr.ip}})
			if p.addr.hostname != "" && validLabel(p.addr.hostname) {
				if rev, err := mdns.ReverseAddr(p.addr.ip.String()); err == nil {
					at(rev).merge(&recSet{ptrs: []string{name}})
				}
			}
			for _, port := range p.ports {
				if port.name == "" || !validLabel(port.name) {
					continue
				}
				at("_" + port.name + "._" + port.proto + "." + base).merge(&recSet{srvs: []srvRec{{
					target: name, port: port.port, addrs: []netip.Addr{p.addr.ip},
				}}})
			}
		}
		for _, r := range sets {
			for i := range r.srvs {
				r.srvs[i].weight = uint16(max(1, 100/len(r.srvs)))
			}
		}
	}

	out := make([]nameRecs, 0, len(sets))
	for name, r := range sets {
		slices.SortFunc(r.addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		slices.SortFunc(r.srvs, func(a, b srvRec) int {
			return cmp.Or(strings.Compare(a.target, b.target), cmp.Compare(a.port, b.port))
		})
		slices.Sort(r.ptrs)
		out = append(out, nameRecs{name: name, recs: *r})
	}
	slices.SortFunc(out, func(a, b nameRecs) int { return strings.Compare(a.name, b.name) })
	return out
}
