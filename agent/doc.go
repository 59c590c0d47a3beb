// Package agent wires one `shoal agent` together: its configuration, the
// HTTP API server, and the loops that run on every host or only on the
// leader.
//
// The HTTP API (server.go, server_watch.go, server_errors.go, proposer.go)
// follows Kubernetes REST conventions:
//
//	/api/v1/{resource}[/{name}[/status]]                          core, cluster-scoped (or all namespaces, list only)
//	/api/v1/namespaces/{ns}/{resource}[/{name}[/status]]          core, namespaced
//	/apis/apps/v1/...                                             the apps group, the same shapes
//	/healthz  /version  /v1/cluster/raft
//
// Reads come from the local store after a read barrier (linearizable;
// `?stale=true` skips the barrier). Writes are decoded strictly, defaulted
// and validated here, completed by the proposer (uid, creationTimestamp,
// generated names, namespace existence) and proposed to the Backend as
// store.Ops; nothing reaches the Backend until the request has passed every
// check, so a rejected request leaves the store untouched. Errors are
// api.Status objects with matching HTTP codes.
//
// The server must not decide placement or hold any state of its own beyond
// open watch streams; it only translates HTTP into store operations.
package agent
