// Package dataplane is the host side of Shoal: containerd (images,
// containers, tasks, logs, exec), CNI pod networking (bridge, host-local
// IPAM, routes to other nodes' pod CIDRs), probes, volumes and the nftables
// rules that load-balance service virtual IPs.
//
// Every operation is safe to repeat and moves the host one step toward what
// the agent asks for. The package knows nothing of Raft or of the store.
package dataplane
