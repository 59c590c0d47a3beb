// Package apiserver is Shoal's HTTP API: it translates Kubernetes-style REST
// requests into reads of a store and proposals of store operations, streams
// watches, and forwards what this agent cannot answer to a voter or the
// leader (forward.go), following leadership while a forwarded request waits
// for its answer (forward_attempt.go).
//
// The API follows Kubernetes REST conventions:
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
// check, so a rejected request leaves the store untouched. Deleting a pod
// bound to a node is graceful (graceful.go): the pod is marked terminating
// and its agent deletes it for good once it has stopped. Errors are
// api.Status objects with matching HTTP codes.
//
// What it needs from the rest of the agent it declares itself, with just the
// methods it calls: Backend (propose, read barrier), Reader (the local
// store), VoterAdmin (Raft membership changes) and Route (where the leader
// and the voters are). It must not know how roles change, decide placement,
// or hold any state of its own beyond open watch streams.
package apiserver
