// Package chaos checks Shoal's control plane the way Jepsen checks a
// database: five `shoal agent` processes (three voters, two non-voters),
// each in a network namespace the test made and joined by a bridge in
// another, clients on every agent reading, writing and compare-and-setting
// a few keys through the HTTP API, and faults injected on a schedule:
// SIGKILL and restart of the leader, SIGSTOP of the leader, the leader cut
// off, majority/minority splits (nftables rules inside the agents'
// namespaces), a killed non-voter that clients talk to, a full restart.
// Every request is recorded with its outcome (a request that may or may
// not have been applied is modelled as such), and the history is checked
// for linearizability per key (porcupine) and for acknowledged writes that
// the final state lost.
//
// `go test` runs a bounded schedule (one fault of each kind);
// SHOAL_CHAOS_SCHEDULES=N (make chaos) runs N random ones and prints a
// table of operations, violations, lost writes and the longest write
// unavailability per fault kind.
//
// It needs root, iproute2 and nft; it never touches the machine's own
// network namespace. Production code must not import it.
package chaos
