package placement

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// EndpointsInput is everything ReconcileEndpoints reads.
type EndpointsInput struct {
	// Services to keep Endpoints for. It must list every Service of each
	// namespace that appears in Endpoints: an Endpoints object whose Service
	// is missing here is deleted.
	Services []*api.Service
	// Endpoints that exist now, in the same namespaces.
	Endpoints []*api.Endpoints
	// Pods the Services' selectors may match (others are ignored).
	Pods []*api.Pod
	// Nodes of those pods (others are ignored). A pod on a node listed
	// here as NotReady (gossip declared it dead, it left, or gossip does
	// not know it) is not ready, whatever its own condition says: its
	// agent no longer reports, and traffic sent there is likely lost.
	Nodes []*api.Node
}

// ReconcileEndpoints keeps one Endpoints object per Service that has a
// selector, named as the Service: ready pods with an IP in addresses, the
// others (running or pending, not terminating, or on a NotReady node) in
// notReadyAddresses, each
// with targetRef and nodeName; ports resolved from each service port's
// targetPort (a number, or the name of a container port of the pod — a pod
// without that port is left out of that port's subset). Endpoints are
// written only when they change. Services without a selector keep
// whatever Endpoints the user wrote; Endpoints of deleted Services go.
func ReconcileEndpoints(in EndpointsInput) Plan {
	var plan Plan
	type nsName struct{ ns, name string }
	existing := map[nsName]*api.Endpoints{}
	for _, e := range in.Endpoints {
		existing[nsName{e.Namespace, e.Name}] = e
	}
	byNS := map[string][]*api.Pod{}
	for _, p := range in.Pods {
		byNS[p.Namespace] = append(byNS[p.Namespace], p)
	}
	down := NotReadyNodes(in.Nodes)
	services := map[nsName]bool{}
	for _, svc := range in.Services {
		services[nsName{svc.Namespace, svc.Name}] = true
		if len(svc.Spec.Selector) == 0 || svc.DeletionTimestamp != nil {
			continue
		}
		want := EndpointsFor(svc, byNS[svc.Namespace], down)
		cur := existing[nsName{svc.Namespace, svc.Name}]
		switch {
		case cur == nil:
			plan.Create = append(plan.Create, want)
		case !reflect.DeepEqual(normSubsets(cur.Subsets), want.Subsets) || !maps.Equal(cur.Labels, want.Labels):
			c := cur.DeepCopyObject().(*api.Endpoints)
			c.Subsets = want.Subsets
			c.Labels = want.Labels
			plan.Update = append(plan.Update, c)
		}
	}
	for _, e := range in.Endpoints {
		if !services[nsName{e.Namespace, e.Name}] && e.DeletionTimestamp == nil {
			plan.Delete = append(plan.Delete, RefOf(e))
			plan.Events = append(plan.Events, fmt.Sprintf("Endpoints %s/%s: service is gone", e.Namespace, e.Name))
		}
	}
	return plan
}

// NotReadyNodes is the set of the names of nodes whose Ready condition is
// False or Unknown (NodeNotReady).
func NotReadyNodes(nodes []*api.Node) map[string]bool {
	out := map[string]bool{}
	for _, n := range nodes {
		if n != nil && NodeNotReady(n) {
			out[n.Name] = true
		}
	}
	return out
}

// EndpointsFor computes the Endpoints of one Service from the pods of its
// namespace (it filters them by the selector itself). Pods on a node in
// down count as not ready. Subsets group the pods that resolve to the same
// ports; addresses are sorted by IP.
func EndpointsFor(svc *api.Service, pods []*api.Pod, down map[string]bool) *api.Endpoints {
	ep := &api.Endpoints{ObjectMeta: api.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: maps.Clone(svc.Labels)}}
	api.SetTypeMeta(ep)
	sel := api.SelectorFromSet(svc.Spec.Selector)
	if len(svc.Spec.Selector) == 0 {
		return ep
	}
	subsets := map[string]*api.EndpointSubset{}
	for _, p := range pods {
		if p.Namespace != svc.Namespace || p.Status.PodIP == "" || !podIsActive(p) || !sel.Matches(p.Labels) {
			continue
		}
		ports := endpointPorts(svc, p)
		if len(ports) == 0 && len(svc.Spec.Ports) > 0 {
			continue
		}
		k := portsKey(ports)
		ss := subsets[k]
		if ss == nil {
			ss = &api.EndpointSubset{Ports: ports}
			subsets[k] = ss
		}
		addr := api.EndpointAddress{
			IP:        p.Status.PodIP,
			TargetRef: &api.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		}
		if p.Spec.NodeName != "" {
			n := p.Spec.NodeName
			addr.NodeName = &n
		}
		if p.Spec.Hostname != "" && p.Spec.Subdomain == svc.Name {
			addr.Hostname = p.Spec.Hostname
		}
		if podIsReady(p) && !down[p.Spec.NodeName] {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
	}
	for _, k := range sortedKeys(subsets) {
		ep.Subsets = append(ep.Subsets, *subsets[k])
	}
	ep.Subsets = normSubsets(ep.Subsets)
	return ep
}

// endpointPorts resolves the service's ports against one pod.
func endpointPorts(svc *api.Service, p *api.Pod) []api.EndpointPort {
	var out []api.EndpointPort
	for _, sp := range svc.Spec.Ports {
		proto := sp.Protocol
		if proto == "" {
			proto = "TCP"
		}
		port := int32(0)
		switch {
		case sp.TargetPort.IsString && sp.TargetPort.StrVal != "":
			port = namedPort(p, sp.TargetPort.StrVal, proto)
		case !sp.TargetPort.IsString && sp.TargetPort.IntVal != 0:
			port = sp.TargetPort.IntVal
		default:
			port = sp.Port
		}
		if port == 0 {
			continue
		}
		out = append(out, api.EndpointPort{Name: sp.Name, Port: port, Protocol: proto})
	}
	return out
}

func namedPort(p *api.Pod, name, proto string) int32 {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			cpProto := cp.Protocol
			if cpProto == "" {
				cpProto = "TCP"
			}
			if cp.Name == name && cpProto == proto {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

func portsKey(ps []api.EndpointPort) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s/%s/%d,", p.Name, p.Protocol, p.Port)
	}
	return b.String()
}

// normSubsets sorts addresses by IP (then pod name) so that a comparison
// does not depend on the order pods were listed in. It copies.
func normSubsets(ss []api.EndpointSubset) []api.EndpointSubset {
	if len(ss) == 0 {
		return nil
	}
	out := make([]api.EndpointSubset, len(ss))
	for i, s := range ss {
		out[i] = api.EndpointSubset{
			Addresses:         sortAddrs(s.Addresses),
			NotReadyAddresses: sortAddrs(s.NotReadyAddresses),
			Ports:             append([]api.EndpointPort(nil), s.Ports...),
		}
		if len(out[i].Ports) == 0 {
			out[i].Ports = nil
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return portsKey(out[i].Ports) < portsKey(out[j].Ports) })
	return out
}

func sortAddrs(a []api.EndpointAddress) []api.EndpointAddress {
	if len(a) == 0 {
		return nil
	}
	out := append([]api.EndpointAddress(nil), a...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].IP != out[j].IP {
			return out[i].IP < out[j].IP
		}
		ni, nj := "", ""
		if out[i].TargetRef != nil {
			ni = out[i].TargetRef.Name
		}
		if out[j].TargetRef != nil {
			nj = out[j].TargetRef.Name
		}
		return ni < nj
	})
	return out
}
