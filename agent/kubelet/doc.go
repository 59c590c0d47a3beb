// Package kubelet runs the pods bound to this node: a loop that compares
// the pods the control plane assigns here with what containerd runs, and a
// worker per pod that moves it one safe, repeatable step at a time (network,
// volumes, pull, create, start, probes, restarts with back-off, teardown),
// then writes the pod's status. A pod deleted through the API (terminating:
// deletionTimestamp set) gets its preStop hooks, SIGTERM and, after what is
// left of its grace period, SIGKILL; once nothing of it is left on the host,
// the loop deletes its object for good (PodDeleter). It also serves pod
// logs, exec, attach and port-forward (the protocols are agent/streams').
//
// Decisions are pure (decide.go, status.go); the host is reached only
// through the small interfaces the loop declares (NodeRuntime, PodNetworks,
// PodVolumes, PodProber, PodSource, StatusWriter, PodDeleter). It must not talk to Raft
// or the store directly.
package kubelet
