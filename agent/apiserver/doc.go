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
// Writes the way kubectl sends them (issue 13):
//
//   - PATCH of an object or its /status with application/json-patch+json
//     (RFC 6902: add, remove, replace, move, copy, test; at most 10,000
//     operations), application/merge-patch+json (RFC 7386) or
//     application/strategic-merge-patch+json (patch_strategic.go: lists
//     merged by the merge keys of Kubernetes for the fields Shoal has:
//     containers, initContainers, env, volumes by name, volumeMounts by
//     mountPath, container ports by containerPort, Service ports by port,
//     conditions and Node addresses by type, ownerReferences by uid,
//     finalizers as a set; any other list replaced whole; $patch replace/delete/merge,
//     $retainKeys, $deleteFromPrimitiveList; $setElementOrder accepted and
//     ignored). Any other Content-Type is 415. The patch is applied to the
//     object read after a barrier and stored as a compare-and-swap against
//     that version, through the same checks as a PUT (defaults,
//     validation, NodeRestriction); a lost race re-applies it to the new
//     version (at most 5 times) unless the patch names a resourceVersion.
//     A patch that cannot apply (a pointer naming nothing, a failed test)
//     or whose result does not decode or validate is 422.
//   - Server-side apply (application/apply-patch+yaml, fieldManager
//     required, force accepted): create if absent; else a strategic merge
//     of the configuration over the live object that also removes the
//     fields the same manager applied last time and now leaves out (map
//     keys, and elements of lists merged by key). Each manager's last
//     configuration is kept in the annotation apply.shoal.dev/applied.
//     Not supported: per-field ownership and managedFields, hence no
//     conflicts between managers (force changes nothing), apply to /status
//     and /scale (415).
//   - /scale (autoscaling/v1 Scale) of Deployments, ReplicaSets and
//     StatefulSets: GET, PUT, and PATCH of any of the first three types;
//     only spec.replicas is written; a resourceVersion in the Scale is a
//     precondition.
//   - dryRun=All (query, or DeleteOptions.dryRun) on create, update, patch,
//     apply, scale and delete: defaulted, validated and checked against the
//     store (a taken name is 409), answered as if done, nothing proposed.
//   - DELETE options in the body or the query: gracePeriodSeconds,
//     preconditions (uid, resourceVersion; body only), propagationPolicy or
//     orphanDependents. Background and Foreground both delete the object
//     at once and leave its dependents to garbage collection (Foreground
//     does not wait for them). Orphan (delete_orphan.go) first marks the
//     owner deleted (so its controller stops adopting) together with
//     removing its uid from the ownerReferences of its dependents in one
//     entry, retries dependents that changed meanwhile, then deletes it.
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
