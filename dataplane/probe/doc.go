// Package probe runs liveness, readiness and startup probes and decides what
// their results mean, with Kubernetes' semantics.
//
// It has two halves that never meet inside the package:
//
//   - Prober.Run executes one probe (httpGet, tcpSocket or exec) against one
//     container and returns a Result. It does I/O and nothing else.
//   - Tracker and ContainerProbes are pure state machines: time is an input
//     (now), results are inputs, and the output is an Outcome (ready, restart,
//     started). They never call time.Now and never touch the network.
//
// The agent's pod worker glues them: it asks ContainerProbes.Next(now) which
// probe is due, runs it with a Prober, hands the Result to Record, and acts
// on the Outcome (restart the container, write the Ready condition).
//
// The package must not know about containerd, CNI, Raft or the store: the
// exec hook and the dialer are injected.
package probe
