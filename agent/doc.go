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
//	agent/identity     the cluster identity: files, joins, renewal, tokens
//
// Security (issue 10): every link runs TLS from one TLSSource (tls.go: the
// API, agent-to-agent calls, forwarding, follower watches, logs and exec,
// Raft with voter certificates only), everything served sits behind
// apiserver.NewAuthHandler (auth.go), and the identity is made, joined or
// read at start (identity.go, identity_bootstrap.go) and served and renewed
// while running (identityserve.go). Config.Insecure turns all of it off,
// for agents bound to loopback only.
//
// Imports run downward only: the rooms never import this package, and this
// package must not take decisions that belong in placement (scheduling,
// reconciling) or do what a room does.
package agent
