package api

import (
	"fmt"
	"net/netip"
)

// Checks of Services and Endpoints.

func (v *validator) serviceSpec(s *ServiceSpec) {
	p := path("spec")
	v.optEnum(p.child("type"), s.Type, serviceTypes)
	v.labels(p.child("selector"), s.Selector)
	headless := s.ClusterIP == ClusterIPNone
	if s.ClusterIP != "" && !headless {
		v.ipv4(p.child("clusterIP"), s.ClusterIP, `must be an IPv4 address or "None"`)
	}
	for i, ip := range s.ClusterIPs {
		ipp := p.child("clusterIPs").index(i)
		if ip != ClusterIPNone {
			v.ipv4(ipp, ip, `must be an IPv4 address or "None"`)
		}
		if i == 0 && s.ClusterIP != "" && ip != s.ClusterIP {
			v.add(Invalid(ipp.String(), ip, "must match spec.clusterIP"))
		}
	}
	if headless && s.Type == ServiceTypeNodePort {
		v.add(Invalid(p.child("clusterIP").String(), s.ClusterIP, "may not be None for a NodePort service"))
	}
	if len(s.Ports) == 0 && !headless {
		v.add(Required(p.child("ports").String(), "a service needs at least one port unless clusterIP is None"))
	}
	v.servicePorts(s, p.child("ports"))
	v.sessionAffinity(s, p)
	v.optEnum(p.child("internalTrafficPolicy"), s.InternalTrafficPolicy, trafficPolicies)
	if s.ExternalTrafficPolicy != "" {
		ep := p.child("externalTrafficPolicy")
		if s.Type != ServiceTypeNodePort {
			v.add(Forbidden(ep.String(), "may only be set when type is NodePort"))
		} else {
			v.enum(ep, s.ExternalTrafficPolicy, trafficPolicies)
		}
	}
}

// servicePorts checks each port and that no two ports share a name, a
// port number or a node port (numbers per protocol).
func (v *validator) servicePorts(s *ServiceSpec, p path) {
	names := map[string]bool{}
	ports := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, sp := range s.Ports {
		pp := p.index(i)
		v.listedPortName(pp, sp.Name, len(s.Ports), names)
		v.port(pp.child("port"), sp.Port)
		v.optEnum(pp.child("protocol"), sp.Protocol, protocols)
		protocol := sp.Protocol
		if protocol == "" {
			protocol = ProtocolTCP // what SetDefaults makes of it
		}
		key := fmt.Sprintf("%d/%s", sp.Port, protocol)
		if ports[key] {
			v.add(Duplicate(pp.child("port").String(), sp.Port))
		}
		ports[key] = true
		if sp.TargetPort != (IntOrString{}) {
			v.portOrName(pp.child("targetPort"), sp.TargetPort)
		}
		if sp.NodePort != 0 {
			np := pp.child("nodePort")
			switch {
			case s.Type != ServiceTypeNodePort:
				v.add(Forbidden(np.String(), "may only be set when type is NodePort"))
			case sp.NodePort < MinNodePort || sp.NodePort > MaxNodePort:
				v.add(Invalid(np.String(), sp.NodePort, fmt.Sprintf("must be between %d and %d, inclusive", MinNodePort, MaxNodePort)))
			}
			key := fmt.Sprintf("%d/%s", sp.NodePort, protocol)
			if nodePorts[key] {
				v.add(Duplicate(np.String(), sp.NodePort))
			}
			nodePorts[key] = true
		}
	}
}

// sessionAffinity checks sessionAffinity and its config, which only
// ClientIP affinity may have.
func (v *validator) sessionAffinity(s *ServiceSpec, p path) {
	v.optEnum(p.child("sessionAffinity"), s.SessionAffinity, sessionAffinities)
	c := s.SessionAffinityConfig
	if c == nil {
		return
	}
	cp := p.child("sessionAffinityConfig")
	if s.SessionAffinity != ServiceAffinityClientIP {
		v.add(Forbidden(cp.String(), "may only be set when sessionAffinity is ClientIP"))
		return
	}
	if c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
		return // SetDefaults fills the timeout
	}
	if t := *c.ClientIP.TimeoutSeconds; t < 1 || t > MaxSessionAffinityTimeoutSeconds {
		v.add(Invalid(cp.child("clientIP").child("timeoutSeconds").String(), t,
			fmt.Sprintf("must be between 1 and %d, inclusive", MaxSessionAffinityTimeoutSeconds)))
	}
}

func (v *validator) ipv4(p path, s, msg string) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		v.add(Invalid(p.String(), s, msg))
	}
}

func (v *validator) endpoints(subsets []EndpointSubset) {
	for i, ss := range subsets {
		sp := path("subsets").index(i)
		for _, list := range []struct {
			name  string
			addrs []EndpointAddress
		}{{"addresses", ss.Addresses}, {"notReadyAddresses", ss.NotReadyAddresses}} {
			for j, a := range list.addrs {
				ap := sp.child(list.name).index(j)
				if a.IP == "" {
					v.add(Required(ap.child("ip").String(), ""))
				} else if _, err := netip.ParseAddr(a.IP); err != nil {
					v.add(Invalid(ap.child("ip").String(), a.IP, "must be an IP address"))
				}
				if a.Hostname != "" {
					nameDNSLabel(v, ap.child("hostname"), a.Hostname)
				}
			}
		}
		names := map[string]bool{}
		for j, port := range ss.Ports {
			pp := sp.child("ports").index(j)
			v.listedPortName(pp, port.Name, len(ss.Ports), names)
			v.port(pp.child("port"), port.Port)
			v.optEnum(pp.child("protocol"), port.Protocol, protocols)
		}
	}
}
