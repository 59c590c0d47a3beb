// Package proxy keeps this node's service load balancing and its DNS index
// equal to the cluster's Services and Endpoints: it mirrors both kinds from
// followers of the control plane, coalesces bursts of changes, translates
// each changed Service with its ready endpoints into dataplane/lb's model
// and syncs only what changed (everything after a relist), retrying with
// back-off.
//
// It is kube-proxy's job for one agent. It must not block the control
// plane or answer anything itself: the load balancer and the DNS server
// work from what it handed them even while it cannot reach a voter.
package proxy
