package apiserver

import (
	"context"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// The cluster's own rules on writes, beyond api.Validate: the hostPath
// allowlist (ServerConfig.HostPathAllow) and the pod CIDRs of Nodes
// (inside ServerConfig.ClusterCIDR, no overlap with another Node's).

// clusterRules returns the field errors of next (old is the stored
// version on an update, nil on a create). A Node's pod CIDRs are checked
// against the other Nodes only when they are new or changed, so that a
// Node stored before the rule can still be updated.
func (p *proposer) clusterRules(ctx context.Context, next, old api.Object) (api.FieldErrors, error) {
	errs := api.ValidateHostPaths(next, p.hostPathAllow)
	n, ok := next.(*api.Node)
	if !ok || (n.Spec.PodCIDR == "" && len(n.Spec.PodCIDRs) == 0) {
		return errs, nil
	}
	if o, ok := old.(*api.Node); ok && api.SamePodCIDRs(n, o) {
		return errs, nil
	}
	if old == nil {
		// An update has had its read barrier; a create has not.
		if err := p.backend.ReadBarrier(ctx); err != nil {
			return nil, err
		}
	}
	objs, _, err := p.reader.List("Node", "", store.Selector{})
	if err != nil {
		return nil, err
	}
	others := make([]*api.Node, 0, len(objs))
	for _, o := range objs {
		if on, ok := o.(*api.Node); ok {
			others = append(others, on)
		}
	}
	return append(errs, api.ValidateNodePodCIDRs(n, p.clusterCIDR, others)...).Sorted(), nil
}
