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
// Authentication and authorisation (issue 10) sit in front of everything an
// agent serves: the agent wraps its whole handler (its agent-to-agent
// endpoints, the forwarder, the Server, pprof) in NewAuthHandler with an
// Authenticator built on consensus/pki, which this package does not
// import. The pieces, for the agent's wiring:
//
//   - Identity: a user of a bearer token (User, Role admin | read-only |
//     write, Namespaces) or an agent of a certificate (Node, Voter);
//     IdentityFrom(ctx) gives it to handlers, WithIdentity sets it.
//   - Authenticator: Token(raw) checks an API token, Peer(tls state) names
//     the agent of a verified client certificate.
//   - NewAuthHandler(next, AuthConfig{Auth, Logger, Public}): bearer token
//     first (a bad one is 401 even with a certificate), else the agent
//     certificate, else 401; Authorize decides (403). X-Shoal-* headers
//     survive only from a TLS client with an agent certificate. With a nil
//     Auth (--insecure, loopback only) everything passes as an admin.
//   - Authorize(id, RequestAttributes(r)): the rules, pure (auth_rules.go).
//     An agent certificate follows Kubernetes' NodeRestriction: reads, its
//     own Node, the status and deletion of pods bound to it (checked in the
//     resource handlers against the stored pod: auth_node.go), log/exec,
//     and /v1/cluster/{replica,promote,demote,certificate} and the removal
//     of its own voter seat. Whether the caller of promote/demote is the
//     leader is for the agent's handler to check.
//
// Consequences for the wiring: a write an agent makes for itself must reach
// the leader under its own certificate (the forwarder's TLS client
// certificate), and a write an agent makes for the cluster (the leader's
// readiness loop writes every Node's status) must not go through the API
// under a node certificate: it is refused there; propose it directly or
// serve it in-process with WithIdentity.
//
// What it needs from the rest of the agent it declares itself, with just the
// methods it calls: Backend (propose, read barrier), Reader (the local
// store), VoterAdmin (Raft membership changes) and Route (where the leader
// and the voters are). It must not know how roles change, decide placement,
// or hold any state of its own beyond open watch streams.
package apiserver
