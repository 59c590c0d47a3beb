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
// The table, for the first packet of each connection:
//
//	nat prerouting/output → services:
//	  ClusterIP from outside the pod network → mark for masquerade
//	  (daddr . proto . dport) vmap @affinity-ips   → per-service chains
//	  (daddr . proto . dport) in @cluster-3 → dnat to
//	      (daddr . proto . dport . numgen random mod 3) in @cluster-endpoints
//	  ... one such rule per number of endpoints in use
//	  to a node address → nodeports: the same keyed by (proto . dport),
//	      marked for masquerade unless externalTrafficPolicy is Local
//	nat postrouting: masquerade hairpin (a pod reaching itself) and marked
//	filter input/forward/output: a new connection to a service port without
//	  endpoints is rejected (TCP reset, ICMP port unreachable)
//
// Why this shape. The kernel re-checks the whole table (every element of
// every verdict map) in any batch that adds a rule or a goto element, and
// it finds a set by name, or an anonymous set by id, by walking a list. So
// a service port has no chain, rule or set of its own: the endpoints live
// in one map keyed by the packet's destination and a random number, and
// which modulus applies is decided by membership in the set of ports with
// that many endpoints. An endpoint added or removed changes set elements
// only, whatever the size of the table. Rules change only when a number of
// endpoints comes into use or goes out of use. Ports with session affinity
// are the exception: they get a chain per endpoint that remembers the
// client (update @aff-... { ip saddr }) and a chain that looks the client
// up in each endpoint's set before picking at random, so changing their
// endpoints costs a check of the whole table.
//
// Names are functions of the services alone, so two appliers given the
// same services hold the same table; nft lists it but cannot load the
// listing back (the endpoint number is typed mark).
//
// The package must not know about Raft or the store: the agent's proxy
// loop turns Services and Endpoints into this package's types. It must not
// touch any table but its own, nor anything outside the namespace it is
// given; routes to the service CIDR, sysctls and the bridge's hairpin mode
// are not its business (package network sets those up).
package lb
