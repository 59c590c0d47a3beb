// Package lb load-balances service virtual IPs and NodePorts over ready
// endpoints with one nftables table (family ip, "shoal" by default) in a
// network namespace.
//
// It has two halves. The model is pure: Service, Port and Endpoint say what
// one node should do, Render prints the whole table as `nft list table`
// does, and the rules are built as values that carry both that text and
// the netlink expressions. The Applier sends the model to the kernel
// through google/nftables: Resync (and the first Sync, and any Sync after a
// failed one) replaces the table in one atomic batch; Sync sends, in one
// batch, only what the changed services change, at a cost that grows with
// those services and not with the whole table.
//
// The table, per connection's first packet:
//
//	nat prerouting/output ─ jump services
//	services:  (daddr . proto . dport) vmap @service-ips        → goto chain
//	           (proto . dport) on a node address vmap @service-nodeports
//	cluster-tcp-3:  dnat to (daddr . proto . dport . numgen random mod 3)
//	                        map @cluster-endpoints               → endpoint
//	nodeport-tcp-3: mark for masquerade, dnat via @nodeport-endpoints
//	nat postrouting: masquerade hairpin (pod to itself) and marked traffic
//	filter input/forward/output: new connections to a service port with no
//	                 endpoint → reject (TCP reset, ICMP port unreachable)
//
// Service ports without session affinity have no chain of their own: the
// endpoints live in maps keyed by the packet's own destination and a
// random number, and chains are shared by every port with the same
// protocol and number of endpoints. A change of endpoints is then a change
// of map elements (the kernel looks sets and chains up by walking lists,
// so per-service sets or anonymous maps would make a large full sync
// quadratic). A port with session affinity gets chains and a dynamic set
// per endpoint (update @set { ip saddr } on the way to the endpoint, and a
// lookup in each set before picking one at random).
//
// Names are functions of the services alone, so two appliers given the
// same services hold the same table.
//
// The package must not know about Raft or the store: the agent's proxy
// loop turns Services and Endpoints into this package's types. It must not
// touch any table but its own, nor anything outside the namespace it is
// given; routes to the service CIDR and sysctls are not its business
// (package network sets those up).
package lb
