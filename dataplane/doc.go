// Package dataplane is the host side of Shoal: what runs and wires pods on
// one node. It holds no code; its sub-packages do the work:
//
//   - runtime: containerd (images, containers, tasks, logs, exec, exit and
//     OOM events);
//   - network: pod network namespaces through CNI (bridge, host-local IPAM),
//     routes to other nodes' pod CIDRs, masquerade for traffic leaving the
//     pod network;
//   - probe: liveness, readiness and startup probes;
//   - volume: emptyDir, hostPath, configMap, secret and node-local claim
//     volumes.
//
// The nftables rules that load-balance service virtual IPs are to come, in a
// sub-package of their own.
//
// Every operation is safe to repeat and moves the host one step toward what
// the agent asks for; which pods, routes and volumes should exist is the
// agent's call, not the dataplane's. It must not know about Raft, the store
// or the control plane's roles.
package dataplane
