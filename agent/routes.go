package agent

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
)

// nodeRoutes picks the routes to other nodes' pods this node installs:
// one per Node with a pod CIDR, via its first usable InternalIP (IPv4, not
// loopback or unspecified). A Node whose pod CIDR is malformed, a default
// route, not IPv4, outside cluster (when valid), overlapping own, or overlapping the
// pod CIDR of a Node already taken (older first, then by name) is left out
// and described in ignored, so that one bad Node (written by a stale or
// hostile agent) never stops the routes of the others; network.SyncRoutes
// refuses a whole batch with one bad route. A Node without a usable
// address gets no route and no complaint: it may not have reported one
// yet. Routes are sorted by CIDR.
func nodeRoutes(nodes []*api.Node, self string, cluster, own netip.Prefix) (routes []network.Route, ignored []string) {
	ns := make([]*api.Node, 0, len(nodes))
	for _, n := range nodes {
		if n != nil && n.Name != self && n.Spec.PodCIDR != "" {
			ns = append(ns, n)
		}
	}
	sort.SliceStable(ns, func(i, j int) bool {
		a, b := ns[i].CreationTimestamp, ns[j].CreationTimestamp
		if !a.Equal(b.Time) {
			return a.Before(b.Time)
		}
		return ns[i].Name < ns[j].Name
	})
	taken := map[netip.Prefix]string{}
	var order []netip.Prefix
	for _, n := range ns {
		cidr, err := api.CheckPodCIDR(n.Spec.PodCIDR, cluster)
		if err != nil {
			ignored = append(ignored, fmt.Sprintf("node %s: podCIDR %q: %v", n.Name, n.Spec.PodCIDR, err))
			continue
		}
		if !cidr.Addr().Is4() {
			ignored = append(ignored, fmt.Sprintf("node %s: podCIDR %s is not IPv4 (pod routes are)", n.Name, cidr))
			continue
		}
		if own.IsValid() && cidr.Overlaps(own) {
			ignored = append(ignored, fmt.Sprintf("node %s: podCIDR %s overlaps this node's %s", n.Name, cidr, own))
			continue
		}
		if other := overlapping(cidr, order, taken); other != "" {
			ignored = append(ignored, fmt.Sprintf("node %s: podCIDR %s overlaps node %s's", n.Name, cidr, other))
			continue
		}
		taken[cidr] = n.Name
		order = append(order, cidr)
		via, ok := internalIPv4(n)
		if !ok {
			continue
		}
		routes = append(routes, network.Route{CIDR: cidr, Via: via})
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].CIDR.String() < routes[j].CIDR.String() })
	return routes, ignored
}

func overlapping(p netip.Prefix, order []netip.Prefix, taken map[netip.Prefix]string) string {
	for _, q := range order {
		if q.Overlaps(p) {
			return taken[q]
		}
	}
	return ""
}

// internalIPv4 is the first InternalIP of n that can be a next hop.
func internalIPv4(n *api.Node) (netip.Addr, bool) {
	for _, ad := range n.Status.Addresses {
		if ad.Type != "InternalIP" {
			continue
		}
		if via, err := netip.ParseAddr(ad.Address); err == nil && via.Is4() && !via.IsLoopback() && !via.IsUnspecified() {
			return via, true
		}
	}
	return netip.Addr{}, false
}
