// Command watchfan measures the watch fan-out of Shoal's API (issue 14,
// "watch fan-out"): many watches of pods, each filtered to one node with
// fieldSelector spec.nodeName=NODE as every agent watches its own pods,
// while pods bound to those nodes are created and updated at a steady
// rate; for each event, the delay from the write's acknowledgement to the
// watching client's receipt of it.
//
// The cluster is three real `shoal agent` processes on loopback (secure,
// as agents run by default: mutual TLS between them, HTTPS and a bearer
// token for clients; --pods=false, so nothing touches the host's network);
// all three are voters, so each serves its watches from its own replica.
// The watches are spread evenly over the three APIs, each on its own
// HTTPS connection, all in this one process, as each agent holds its own
// (HTTP/1.1: the agents' API listener does not offer HTTP/2 in ALPN, so
// the client's ForceAttemptHTTP2 falls back). The writes go to the
// leader's API. -every adds watchers of every pod (as agents watch Nodes,
// Services and Endpoints unfiltered), -stalled watchers that never read,
// -profile a CPU profile of the leader during the load.
package main
