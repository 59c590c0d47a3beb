// Package network gives each pod on a node its network: a named network
// namespace (bind-mounted under Config.StateDir/netns, like `ip netns add`),
// loopback brought up with netlink, the distribution's CNI plugins driven
// through libcni for the rest (a bridge with host-local IPAM over the
// node's pod CIDR), and the node-level
// pieces around it: ip_forward, the masquerade rule for traffic leaving the
// cluster's pod network (nftables table "shoal-nat"), a route for the
// service CIDR via the bridge, and routes to other nodes' pod CIDRs.
//
// Every operation runs inside the "host" network namespace named by
// Config.HostNetNS (the agent's own namespace in production, a namespace the
// test made in tests) and is safe to repeat: Setup of a set-up pod returns
// its existing network, Teardown of an absent pod succeeds, EnsureHost and
// SyncRoutes converge and change nothing when nothing differs.
//
// The package must not touch anything it did not create: routes it manages
// carry their own route protocol number, and the only nftables table it
// writes is "shoal-nat". It knows nothing of containers, Raft or the store;
// the agent decides which pods exist and which routes other nodes need.
package network
