package api

import (
	"errors"
	"fmt"
	"net/netip"
)

// Node pod CIDRs: every agent routes a node's pod CIDR to that node, so a
// pod CIDR outside the cluster's range (a default route, another network
// of the host) or one overlapping another node's would steal traffic. The
// API refuses such a Node (ValidateNodePodCIDRs) and the agents' route sync
// ignores one written anyway (CheckPodCIDR).

// CheckPodCIDR parses a node's pod CIDR and checks that it is a masked
// prefix (no host bits set), not a default route, and, when cluster is
// valid, of cluster's family, no larger than cluster and inside it.
func CheckPodCIDR(cidr string, cluster netip.Prefix) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Prefix{}, errors.New("must be a CIDR such as 10.244.1.0/24")
	}
	switch {
	case p.Bits() == 0:
		return p, errors.New("must not be a default route")
	case p != p.Masked():
		return p, fmt.Errorf("must not have host bits set (did you mean %s?)", p.Masked())
	case cluster.IsValid() && (p.Addr().Is4() != cluster.Addr().Is4() || p.Bits() < cluster.Bits() || !cluster.Contains(p.Addr())):
		return p, fmt.Errorf("must lie inside the cluster CIDR %s", cluster.Masked())
	}
	return p, nil
}

// nodeCIDRs lists a node's pod CIDRs with their field paths.
func nodeCIDRs(n *Node) (paths, cidrs []string) {
	if n.Spec.PodCIDR != "" {
		paths, cidrs = append(paths, "spec.podCIDR"), append(cidrs, n.Spec.PodCIDR)
	}
	for i, c := range n.Spec.PodCIDRs {
		paths, cidrs = append(paths, path("spec.podCIDRs").index(i).String()), append(cidrs, c)
	}
	return paths, cidrs
}

// SamePodCIDRs reports whether two versions of a Node have the same pod
// CIDRs (a write that does not change them need not be checked again).
func SamePodCIDRs(a, b *Node) bool {
	return a.Spec.PodCIDR == b.Spec.PodCIDR && sameJSON(a.Spec.PodCIDRs, b.Spec.PodCIDRs)
}

// ValidateNodePodCIDRs checks n's spec.podCIDR and spec.podCIDRs with
// CheckPodCIDR against clusterCIDR (empty: no cluster range is known, so
// only the form and the default route are checked) and against the pod
// CIDRs of others (the stored Nodes; n's own name is skipped): no two
// nodes' ranges may overlap. A malformed clusterCIDR is reported on
// spec.podCIDR too: nothing can be checked against it.
func ValidateNodePodCIDRs(n *Node, clusterCIDR string, others []*Node) FieldErrors {
	paths, cidrs := nodeCIDRs(n)
	if len(cidrs) == 0 {
		return nil
	}
	var cluster netip.Prefix
	if clusterCIDR != "" {
		c, err := netip.ParsePrefix(clusterCIDR)
		if err != nil {
			return FieldErrors{Invalid(paths[0], cidrs[0], fmt.Sprintf("cannot be checked: the cluster CIDR %q is not a CIDR", clusterCIDR))}
		}
		cluster = c.Masked()
	}
	var errs FieldErrors
	for i, c := range cidrs {
		p, err := CheckPodCIDR(c, cluster)
		if err != nil {
			errs = append(errs, Invalid(paths[i], c, err.Error()))
			continue
		}
		if o, oc := overlappingNode(p, n.Name, others); o != "" {
			errs = append(errs, Invalid(paths[i], c, fmt.Sprintf("overlaps node %s's pod CIDR %s", o, oc)))
		}
	}
	return errs.Sorted()
}

// overlappingNode returns the first node of others (not named self) with a
// pod CIDR overlapping p, and that CIDR.
func overlappingNode(p netip.Prefix, self string, others []*Node) (string, string) {
	for _, o := range others {
		if o == nil || o.Name == self {
			continue
		}
		_, ocs := nodeCIDRs(o)
		for _, oc := range ocs {
			if q, err := netip.ParsePrefix(oc); err == nil && q.Masked().Overlaps(p) {
				return o.Name, oc
			}
		}
	}
	return "", ""
}
