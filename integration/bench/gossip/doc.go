// Command gossip measures Shoal's gossip layer (consensus/gossip over
// hashicorp/memberlist) at hundreds to a thousand members in one process
// (issue 14, "gossip at scale"): every member is a gossip.Gossip with the
// production configuration (gossip.DefaultConfig, an AES-256 gossip key as
// the cluster identity gives agents, a cluster check, the reconnect loop),
// on its own loopback UDP and TCP sockets through memberlist's own network
// transport, wrapped only to count the bytes it sends and receives.
//
// For each size it measures:
//
//   - convergence: all members are created, then all join at once through
//     three seeds (as agents started together with the same --join list);
//     the time until each member sees every member alive;
//   - steady state: bytes sent and received per member per second (UDP
//     payloads and TCP streams, encrypted, headers excluded), the process'
//     CPU, and the suspicions raised against members that were alive (a
//     sign that the process cannot keep up);
//   - death: one member is shut down without leaving; the time until the
//     first member suspects it (memberlist's log line) and until each of
//     the others sees it dead.
//
// The figures are compared with the theory of push gossip (a message
// reaches everyone in about log_fanout(N) rounds of GossipInterval) and
// with the model of Serf's convergence simulator
// (https://www.serf.io/docs/internals/simulator.html).
//
// memberlist's in-memory transport (MockNetwork) is exported but meant for
// its tests, and it would hide the per-packet cost of sockets; this
// command uses real sockets and raises the process' file limit.
package main
