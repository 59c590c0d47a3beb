package proxy

import (
	"net/netip"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/lb"
)

// translation is one Service as the load balancer gets it, with what was
// left out of it and why.
type translation struct {
	svc lb.Service
	// outside lists endpoint addresses left out because they are not in
	// the pod network (an Endpoints object written by hand, say).
	outside []string
}

// translate turns a Service and its Endpoints (nil: none yet) into the load
// balancer's model for the node named node. Only ready addresses are
// endpoints; an address outside podNet (when valid) is left out. A headless
// Service gives a service with no ClusterIP, which the load balancer keeps
// no rules for. It is pure.
func translate(svc *api.Service, eps *api.Endpoints, node string, podNet netip.Prefix) translation {
	out := lb.Service{Namespace: svc.Namespace, Name: svc.Name, ClusterIP: svc.Spec.ClusterIP}
	if svc.Spec.ClusterIP == api.ClusterIPNone {
		out.ClusterIP = ""
	}
	if svc.Spec.SessionAffinity == "ClientIP" {
		out.AffinityTimeout = api.DefaultSessionAffinityTimeoutSeconds * time.Second
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			out.AffinityTimeout = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	out.ExternalLocal = svc.Spec.ExternalTrafficPolicy == "Local"
	out.InternalLocal = svc.Spec.InternalTrafficPolicy == "Local"
	var t translation
	seenOutside := map[string]bool{}
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = "TCP"
		}
		p := lb.Port{Name: sp.Name, Protocol: proto, Port: int(sp.Port)}
		if svc.Spec.Type == api.ServiceTypeNodePort {
			p.NodePort = int(sp.NodePort)
		}
		if eps != nil {
			for _, ss := range eps.Subsets {
				port, ok := subsetPort(ss, sp.Name, proto)
				if !ok {
					continue
				}
				for _, a := range ss.Addresses {
					ip, err := netip.ParseAddr(a.IP)
					if err != nil || (podNet.IsValid() && !podNet.Contains(ip)) {
						if !seenOutside[a.IP] {
							seenOutside[a.IP] = true
							t.outside = append(t.outside, a.IP)
						}
						continue
					}
					local := a.NodeName != nil && *a.NodeName == node
					p.Endpoints = append(p.Endpoints, lb.Endpoint{IP: a.IP, Port: int(port), Local: local})
				}
			}
		}
		out.Ports = append(out.Ports, p)
	}
	t.svc = out
	return t
}

// subsetPort finds the endpoint port of a subset that serves the service
// port named name: the one of the same name and protocol (a Service's only
// port may be unnamed on both sides).
func subsetPort(ss api.EndpointSubset, name, proto string) (int32, bool) {
	for _, ep := range ss.Ports {
		epProto := ep.Protocol
		if epProto == "" {
			epProto = "TCP"
		}
		if ep.Name == name && epProto == proto {
			return ep.Port, true
		}
	}
	return 0, false
}
