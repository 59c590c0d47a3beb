// Package hollow runs many simulated hosts ("hollow nodes", after
// Kubernetes' kubemark) in one process against a real control plane, to
// measure Shoal at hundreds or thousands of nodes on one machine.
//
// The control plane is real: three voters (agent.Agent with Raft on disk,
// pods off) run the scheduler and controllers. Each hollow node is a real
// agent.Agent too — its own memberlist on a loopback UDP/TCP port, its own
// HTTPS API, Node registration, the watch of its pods and the real node
// loop (agent/kubelet) — except that containerd, CNI and volumes are
// replaced by the in-memory parts of this package (agent.HostConfig.Fake):
// a container reports Running a configurable delay after it is started.
//
// The cluster is secure: one CA made in the process (consensus/pki) signs
// every agent's certificate in bulk (voters as voters, hollow nodes as
// workers), and the benchmark talks to the API with an admin token.
//
// Entry points: TestHollow, whose bounded run (100 nodes, on timings for one
// starved process, skipped under -race) make test runs without -race,
// and, with SHOAL_HOLLOW_NODES set, the full run behind `make scale`.
// SHOAL_HOLLOW_PPROF=127.0.0.1:PORT serves net/http/pprof during a run and
// SHOAL_HOLLOW_RAFT=1 logs each voter's Raft state every 5 s;
// SHOAL_HOLLOW_CPUPROFILE=FILE writes a CPU profile of the apply.
package hollow
