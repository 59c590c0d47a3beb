package apiserver

import (
	"slices"
	"strconv"
	"strings"
)

// Paths outside the resource API that the rules name.
const (
	pathMembers     = "/v1/cluster/members"
	pathRaft        = "/v1/cluster/raft"
	pathVoters      = "/v1/cluster/raft/voters"
	pathReplica     = "/v1/cluster/replica"
	pathPromote     = "/v1/cluster/promote"
	pathDemote      = "/v1/cluster/demote"
	pathCertificate = "/v1/cluster/certificate"
	pathGossipKeys  = "/v1/cluster/gossip/keys"
	pathPprof       = "/debug/pprof"
	pathMetrics     = "/metrics"
)

// Authorize decides whether id may do what a asks; nil means yes, else a
// 403 *api.StatusError saying who cannot do what, and why. It is pure: the
// rules that need the stored object (which node a pod is bound to) are
// checked where the object is loaded (see admitNode).
//
//   - RoleAdmin: everything.
//   - RoleReadOnly: get, list and watch of every resource but Secrets
//     (pods/log included, pods/exec, attach and portforward never); GET of
//     /v1/cluster/members and /v1/cluster/raft; GET of /metrics
//     (Prometheus scrapes with a read-only token); API discovery paths.
//   - RoleWrite: read-only's rights, and every verb on every resource
//     (Secrets, exec and log included) inside its Namespaces; nothing
//     cluster-scoped (Nodes, Namespaces), no /v1/cluster/* change.
//   - an agent certificate (Node set), after Kubernetes' NodeRestriction:
//     reads of every resource; create, update and status of its own Node;
//     status updates and deletion of pods (admitNode checks that they are
//     bound to it); create and update of Events about its Node and the
//     pods bound to it (admitNodeEvent); logs (routed between agents; an
//     exec, attach or port-forward is authorised by the user's token it
//     carries, never by a certificate); GET of
//     /v1/cluster/members, /v1/cluster/raft, /v1/cluster/replica and
//     /metrics (a Prometheus may scrape with an agent's certificate); POST
//     of /v1/cluster/promote, /v1/cluster/demote (the agent's handler
//     checks that the caller leads), /v1/cluster/certificate and
//     /v1/cluster/gossip/keys (the handler checks the node) and
//     /v1/cluster/forward (batched writes, each authorised on its own
//     as the request it carries: see forward_batch.go); removal of
//     its own Raft seat (DELETE /v1/cluster/raft/voters/{its name}: an
//     agent leaving the voters on shutdown). Nothing else.
//   - /debug/pprof/ needs RoleAdmin whatever the rest says.
func Authorize(id Identity, a Attributes) error {
	if a.Path == pathPprof || strings.HasPrefix(a.Path, pathPprof+"/") {
		if id.Node == "" && id.Role == RoleAdmin {
			return nil
		}
		return forbidden(id, a, "profiling needs the admin role")
	}
	if id.Node != "" {
		return authorizeNode(id, a)
	}
	switch id.Role {
	case RoleAdmin:
		return nil
	case RoleReadOnly:
		if ok, why := readOnlyAllows(a); !ok {
			return forbidden(id, a, why+" (the read-only role only reads)")
		}
		return nil
	case RoleWrite:
		if ok, _ := readOnlyAllows(a); ok {
			return nil
		}
		if a.ResourceRequest && a.Namespace != "" && slices.Contains(id.Namespaces, a.Namespace) {
			return nil
		}
		if a.ResourceRequest && a.Namespace == "" {
			return forbidden(id, a, "the write role cannot change cluster-scoped resources or all namespaces at once")
		}
		if a.ResourceRequest {
			return forbidden(id, a, "the write role may change namespaces "+describeNamespaces(id.Namespaces)+" only")
		}
		return forbidden(id, a, "the write role cannot change the cluster's configuration")
	}
	return forbidden(id, a, "unknown role "+strconv.Quote(id.Role))
}

// readOnlyAllows applies the read-only role's rule, and says why not.
func readOnlyAllows(a Attributes) (bool, string) {
	if !a.ResourceRequest {
		if a.Verb != VerbGet {
			return false, "not a read"
		}
		if a.Path == pathMembers || a.Path == pathRaft || a.Path == pathMetrics || isDiscovery(a.Path) {
			return true, ""
		}
		return false, "only /v1/cluster/members, /v1/cluster/raft and /metrics are readable"
	}
	switch {
	case !a.IsRead():
		return false, "not a read"
	case a.Group == "" && a.Resource == "secrets":
		return false, "secrets are readable only by the admin role and where the write role may write"
	case reachesIntoPod(a):
		return false, a.Subresource + " reaches into a pod"
	}
	return true, ""
}

// reachesIntoPod reports whether a is a pod's exec, attach or portforward:
// requests that run commands in, read the terminal of, or open
// connections to a pod. Their WebSocket upgrades are GETs, yet no reader
// may make them.
func reachesIntoPod(a Attributes) bool {
	switch a.Subresource {
	case "exec", "attach", "portforward":
		return true
	}
	return false
}

// isDiscovery reports whether p is an API discovery path (/api, /apis,
// /api/v1, /apis/apps/v1) or an OpenAPI document (/openapi/v2,
// /openapi/v3, /openapi/v3/apis/apps/v1): what kubectl reads first; the
// Server answers it or 404.
func isDiscovery(p string) bool {
	switch {
	case p == "/api" || p == "/apis" || p == "/openapi/v2" || p == "/openapi/v3":
		return true
	case strings.HasPrefix(p, "/openapi/v3/"):
		return true
	case strings.HasPrefix(p, "/api/"):
		return !strings.Contains(strings.TrimSuffix(p[len("/api/"):], "/"), "/")
	case strings.HasPrefix(p, "/apis/"):
		return strings.Count(strings.TrimSuffix(p[len("/apis/"):], "/"), "/") <= 1
	}
	return false
}

// authorizeNode applies the NodeRestriction rule to an agent certificate.
func authorizeNode(id Identity, a Attributes) error {
	if !a.ResourceRequest {
		switch {
		case a.Verb == VerbGet && (a.Path == pathMembers || a.Path == pathRaft || a.Path == pathReplica || a.Path == pathMetrics || isDiscovery(a.Path)):
			return nil
		case a.Verb == "post" && (a.Path == pathPromote || a.Path == pathDemote || a.Path == pathCertificate ||
			a.Path == pathGossipKeys || a.Path == ForwardBatchPath || a.Path == ForwardStreamPath):
			return nil
		case a.Verb == "delete" && a.Path == pathVoters+"/"+id.Node:
			return nil // leaving the voters on shutdown
		}
		return forbidden(id, a, "an agent certificate may use only the agent-to-agent endpoints")
	}
	core := a.Group == ""
	switch {
	case a.IsRead() && !reachesIntoPod(a):
		return nil
	case core && a.Resource == "pods" && a.Namespace != "" && a.Name != "" && a.Subresource == "log":
		return nil // routed between agents
	case reachesIntoPod(a):
		// An exec, attach or port-forward routed between agents keeps the
		// user's bearer token, which is what authorises it; a certificate
		// alone never does, so one compromised host cannot run commands
		// in, or connect to, others' pods.
		return forbidden(id, a, "an agent certificate cannot "+a.Subresource+": the user's token authorises it")
	case core && a.Resource == "nodes" && a.Verb == VerbCreate && a.Name == "":
		return nil // admitNode checks the name in the body
	case core && a.Resource == "nodes" && a.Name == id.Node && (a.Subresource == "" || a.Subresource == "status") &&
		(a.Verb == VerbUpdate || a.Verb == VerbPatch):
		return nil
	case core && a.Resource == "nodes":
		return forbidden(id, a, "an agent may create and update only its own Node")
	case core && a.Resource == "pods" && a.Namespace != "" && a.Name != "" &&
		((a.Subresource == "status" && (a.Verb == VerbUpdate || a.Verb == VerbPatch)) || (a.Subresource == "" && a.Verb == VerbDelete)):
		return nil // admitNode checks that the pod is bound to this node
	case core && a.Resource == "pods":
		return forbidden(id, a, "an agent may only update the status of, and delete, pods bound to it")
	case core && a.Resource == "events" && a.Subresource == "" &&
		(a.Verb == VerbCreate && a.Name == "" || (a.Verb == VerbUpdate || a.Verb == VerbPatch) && a.Name != ""):
		return nil // admitNodeEvent checks the Event's object and host
	case core && a.Resource == "events":
		return forbidden(id, a, "an agent may only create and update Events about its Node and its pods")
	}
	return forbidden(id, a, "an agent certificate may change only its own Node and its pods")
}

func describeNamespaces(ns []string) string {
	if len(ns) == 0 {
		return "(none)"
	}
	q := make([]string, len(ns))
	for i, n := range ns {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
