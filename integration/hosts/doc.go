// Package hosts simulates a cluster of machines on one Linux host, for the
// multi-host tests and `make demo`: N hosts, each a network namespace of
// its own plugged into a bridge in a switch namespace (a private /24 with
// no route out), with its own private containerd, data dir and `shoal
// agent` process running inside that namespace. All agent-to-agent
// traffic (gossip, Raft, API, pod routes) crosses the switch, and each
// agent wires its pods into its own host namespace (--pod-netns names it).
//
// The cluster is secure, as a user's is: one bootstrap token from `shoal
// token generate` for the initial agents, HTTPS with the CA and admin
// token that the bootstrapping agent writes into its data dir; hosts
// added later join with a join token.
//
// Images come from one in-memory registry (testenv.Registry) served on
// 127.0.0.1:PORT inside every host namespace, so an image reference
// means the same thing on every host.
//
// It owns the namespaces and processes it makes and nothing else: it must
// never program the machine's root network namespace. Close compares the
// root namespace's links, routes, nftables tables and forwarding sysctls
// with what they were at New and reports a difference as an error.
//
// It is not a test helper only (the demo command uses it): it takes no
// testing.TB and returns errors.
package hosts
