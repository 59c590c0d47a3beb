// Package agent wires one `shoal agent` together: its configuration, its
// start and stop, the role it holds in the control plane (voter or
// non-voter; promotion, demotion, the voter manager and node readiness when
// it leads), node registration, and the rooms below, each of which holds
// one loop or server:
//
//	agent/apiserver    the HTTP API, forwarding to the leader
//	agent/controllers  the leader's controller loop over placement
//	agent/kubelet      the node loop: this node's pods on containerd
//	agent/follow       watches of the control plane that survive voters dying
//	agent/dns          cluster DNS answered from an in-memory copy
//
// Imports run downward only: the rooms never import this package, and this
// package must not take decisions that belong in placement (scheduling,
// reconciling) or do what a room does.
package agent
