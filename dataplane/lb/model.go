package lb

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Service is one service as this node's load balancer sees it: a virtual
// IP, its ports, and for each port the ready endpoints behind it.
type Service struct {
	Namespace, Name string
	// ClusterIP is the virtual IPv4 address; "" or "None" (headless) means
	// the service gets no rules at all.
	ClusterIP string
	Ports     []Port
	// AffinityTimeout > 0 turns on sessionAffinity ClientIP: a client keeps
	// the endpoint it was first sent to until it has been silent this long.
	AffinityTimeout time.Duration
	// ExternalLocal is externalTrafficPolicy Local: NodePort traffic goes
	// only to endpoints on this node and keeps its client address (no
	// masquerade); with none here it is rejected.
	ExternalLocal bool
	// InternalLocal is internalTrafficPolicy Local: ClusterIP traffic goes
	// only to endpoints on this node; with none here it is rejected.
	InternalLocal bool
}

// Port is one port of a service and the endpoints serving it.
type Port struct {
	// Name is the port's name; it may be empty when it is the service's
	// only port. Rules are named after it, so a renamed port is a new port.
	Name string
	// Protocol is "TCP", "UDP" or "SCTP".
	Protocol string
	// Port is the port on the ClusterIP.
	Port int
	// NodePort, when not 0, is the port this service answers on at the
	// node's addresses (Config.NodeIPs).
	NodePort int
	// Endpoints are the ready endpoints; order does not matter and
	// duplicates count once.
	Endpoints []Endpoint
}

// Endpoint is one ready backend of a service port.
type Endpoint struct {
	IP   string
	Port int
	// Local says the endpoint runs on this node: the traffic policies
	// (ExternalLocal, InternalLocal) and hairpin masquerade use it.
	Local bool
}

// ServiceKey names a service.
type ServiceKey struct {
	Namespace, Name string
}

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// Compare orders keys by namespace, then name.
func (k ServiceKey) Compare(o ServiceKey) int {
	return cmp.Or(cmp.Compare(k.Namespace, o.Namespace), cmp.Compare(k.Name, o.Name))
}

// Key returns the service's key.
func (s Service) Key() ServiceKey { return ServiceKey{Namespace: s.Namespace, Name: s.Name} }

// Headless reports whether the service has no virtual IP (and so no rules).
func (s Service) Headless() bool { return s.ClusterIP == "" || s.ClusterIP == "None" }

// maxAffinityTimeout is Kubernetes' bound on sessionAffinityConfig's
// timeoutSeconds.
const maxAffinityTimeout = 24 * time.Hour

// Validate checks that the service can be programmed; every error names the
// field. A headless service is valid whatever its ports say.
func (s Service) Validate() error {
	var errs []error
	if s.Namespace == "" {
		errs = append(errs, errors.New("namespace: empty"))
	}
	if s.Name == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	if s.Headless() {
		return wrapInvalid(s.Key(), errs)
	}
	if ip, err := netip.ParseAddr(s.ClusterIP); err != nil || !ip.Is4() {
		errs = append(errs, fmt.Errorf("clusterIP: %q is not an IPv4 address", s.ClusterIP))
	}
	if s.AffinityTimeout < 0 || s.AffinityTimeout > maxAffinityTimeout {
		errs = append(errs, fmt.Errorf("affinityTimeout: %v out of range [0, %v]", s.AffinityTimeout, maxAffinityTimeout))
	} else if s.AffinityTimeout > 0 && s.AffinityTimeout < time.Second {
		errs = append(errs, fmt.Errorf("affinityTimeout: %v is less than a second", s.AffinityTimeout))
	}
	ids := map[string]bool{}
	vips := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, p := range s.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		proto, ok := protocols[p.Protocol]
		if !ok {
			errs = append(errs, fmt.Errorf("%s.protocol: %q is not TCP, UDP or SCTP", field, p.Protocol))
		}
		if p.Port < 1 || p.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s.port: %d out of range", field, p.Port))
		}
		if p.NodePort < 0 || p.NodePort > 65535 {
			errs = append(errs, fmt.Errorf("%s.nodePort: %d out of range", field, p.NodePort))
		}
		if id := portID(p); ids[id] {
			errs = append(errs, fmt.Errorf("%s.name: %q is not unique", field, id))
		} else {
			ids[id] = true
		}
		if k := proto.name + "/" + strconv.Itoa(p.Port); ok && vips[k] {
			errs = append(errs, fmt.Errorf("%s: %s listed twice", field, k))
		} else {
			vips[k] = true
		}
		if k := proto.name + "/" + strconv.Itoa(p.NodePort); ok && p.NodePort != 0 && nodePorts[k] {
			errs = append(errs, fmt.Errorf("%s.nodePort: %s listed twice", field, k))
		} else {
			nodePorts[k] = true
		}
		for j, e := range p.Endpoints {
			if ip, err := netip.ParseAddr(e.IP); err != nil || !ip.Is4() {
				errs = append(errs, fmt.Errorf("%s.endpoints[%d].ip: %q is not an IPv4 address", field, j, e.IP))
			}
			if e.Port < 1 || e.Port > 65535 {
				errs = append(errs, fmt.Errorf("%s.endpoints[%d].port: %d out of range", field, j, e.Port))
			}
		}
	}
	return wrapInvalid(s.Key(), errs)
}

func wrapInvalid(k ServiceKey, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %s: %w", ErrInvalidService, k, errors.Join(errs...))
}

// portID identifies a port within its service: its name, or for an unnamed
// port its protocol and number.
func portID(p Port) string {
	if p.Name != "" {
		return p.Name
	}
	return protocols[p.Protocol].name + strconv.Itoa(p.Port)
}

// protocol is what the rules need to know of an L4 protocol.
type protocol struct {
	name   string // as nft prints it: tcp, udp, sctp
	number byte   // IP protocol number
}

var protocols = map[string]protocol{
	"TCP":  {"tcp", 6},
	"UDP":  {"udp", 17},
	"SCTP": {"sctp", 132},
}

// endpoint is a parsed Endpoint.
type endpoint struct {
	addr  netip.Addr
	port  uint16
	local bool
}

func (e endpoint) String() string { return e.addr.String() + ":" + strconv.Itoa(int(e.port)) }

// compareEndpoints orders endpoints by address, then port: the order in
// which numgen's values are dealt out.
func compareEndpoints(a, b endpoint) int {
	if c := a.addr.Compare(b.addr); c != 0 {
		return c
	}
	return cmp.Compare(a.port, b.port)
}

// parseEndpoints returns the port's endpoints parsed, sorted and without
// duplicates (an endpoint listed twice is local if either copy says so).
// The service must be valid.
func parseEndpoints(in []Endpoint) []endpoint {
	out := make([]endpoint, 0, len(in))
	for _, e := range in {
		out = append(out, endpoint{addr: netip.MustParseAddr(e.IP), port: uint16(e.Port), local: e.Local})
	}
	slices.SortFunc(out, compareEndpoints)
	dedup := out[:0]
	for _, e := range out {
		if n := len(dedup); n > 0 && compareEndpoints(dedup[n-1], e) == 0 {
			dedup[n-1].local = dedup[n-1].local || e.local
			continue
		}
		dedup = append(dedup, e)
	}
	return dedup
}

func localOnly(eps []endpoint) []endpoint {
	var out []endpoint
	for _, e := range eps {
		if e.local {
			out = append(out, e)
		}
	}
	return out
}
