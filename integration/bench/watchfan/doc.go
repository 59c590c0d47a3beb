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
// HTTPS connection (HTTP/2, as an agent holds its own connection), all in
// this one process. The writes go to the leader's API.
package main
