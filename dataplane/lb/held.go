package lb

import "net/netip"

// held is a service as the applier keeps it between syncs: the Service
// without its endpoints, and each port's endpoints parsed, sorted, without
// duplicates and packed in 8 bytes (the service is valid, so every address
// is IPv4). At 10,000 services × 10 endpoints an Endpoint of the Service
// itself takes 32 bytes plus its address string; the applier kept two
// copies of each Service by value in its maps besides.
type held struct {
	Service // Ports[i].Endpoints are nil: eps[i] holds them
	eps     [][]packedEndpoint
}

type packedEndpoint struct {
	ip    [4]byte
	port  uint16
	local bool
}

// hold copies a valid service into the applier's form. It shares nothing
// with s but strings. A headless service gets no rules, so its endpoints
// (which Validate does not check) are not kept.
func hold(s Service) *held {
	h := &held{Service: s, eps: make([][]packedEndpoint, len(s.Ports))}
	h.Ports = make([]Port, len(s.Ports))
	for i, p := range s.Ports {
		var eps []endpoint
		if !s.Headless() {
			eps = parseEndpoints(p.Endpoints)
		}
		packed := make([]packedEndpoint, len(eps))
		for j, e := range eps {
			packed[j] = packedEndpoint{ip: e.addr.As4(), port: e.port, local: e.local}
		}
		p.Endpoints = nil
		h.Ports[i], h.eps[i] = p, packed
	}
	return h
}

func holdAll(services []Service) []*held {
	out := make([]*held, len(services))
	for i, s := range services {
		out[i] = hold(s)
	}
	return out
}

// endpoints returns port i's endpoints, sorted, without duplicates.
func (h *held) endpoints(i int) []endpoint {
	out := make([]endpoint, len(h.eps[i]))
	for j, e := range h.eps[i] {
		out[j] = endpoint{addr: netip.AddrFrom4(e.ip), port: e.port, local: e.local}
	}
	return out
}
