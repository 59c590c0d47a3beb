package apiserver

import (
	"context"
	"fmt"

	"github.com/shoal-dev/shoal/api"
)

// admitFunc checks a write against the object it changes: old is the stored
// object (nil for a create), next what the request would store. The
// proposer calls it each time it reads old, so that the check and the write
// are about the same version.
type admitFunc func(old, next api.Object) error

// nodeAdmission returns the object checks of Kubernetes' NodeRestriction
// rule for a request made with an agent certificate, or nil for any other
// request (Authorize has decided those from the request alone). The
// identity comes from NewAuthHandler; a request without one (a Server not
// behind NewAuthHandler) is not restricted here.
func (s *Server) nodeAdmission(ctx context.Context, t target, verb string) admitFunc {
	id, ok := IdentityFrom(ctx)
	if !ok || id.Node == "" {
		return nil
	}
	a := Attributes{Verb: verb, ResourceRequest: true, Group: t.info.Group, Version: t.info.Version,
		Resource: t.info.Resource, Namespace: t.namespace, Name: t.name}
	if t.status {
		a.Subresource = "status"
	}
	if t.info.Kind == "Event" {
		return func(old, next api.Object) error { return admitNodeEvent(id, a, old, next, s.storedPod) }
	}
	return func(old, next api.Object) error { return admitNode(id, a, old, next) }
}

// admitNode is the object half of the NodeRestriction rule (Authorize is
// the request half): an agent creates and updates only the Node named
// after it, and updates the status of, or deletes, only pods bound to it
// (spec.nodeName), which it cannot change either (status writes keep the
// stored spec): a pod bound to another node, or to none, cannot be taken. Any other write is refused here too,
// should Authorize have let it through.
func admitNode(id Identity, a Attributes, old, next api.Object) error {
	switch {
	case old == nil && next == nil:
		return forbidden(id, a, "nothing to check")
	case a.Group != "":
	case a.Resource == "nodes":
		for _, o := range []api.Object{old, next} {
			if o != nil && o.GetObjectMeta().Name != id.Node {
				return forbidden(id, a, fmt.Sprintf("an agent may write only its own Node (%q), not %q", id.Node, o.GetObjectMeta().Name))
			}
		}
		if a.Verb == VerbDelete {
			return forbidden(id, a, "an agent may not delete its Node")
		}
		return nil
	case a.Resource == "pods":
		if old == nil {
			return forbidden(id, a, "an agent may not create pods")
		}
		if a.Verb != VerbDelete && a.Subresource != "status" {
			return forbidden(id, a, "an agent may update only the status of its pods")
		}
		// A status write keeps the stored spec, so the stored pod is the
		// one that says where it is bound.
		p, ok := old.(*api.Pod)
		if !ok || p.Spec.NodeName != id.Node {
			bound := "no node"
			if ok && p.Spec.NodeName != "" {
				bound = fmt.Sprintf("node %q", p.Spec.NodeName)
			}
			return forbidden(id, a, fmt.Sprintf("the pod is bound to %s, not to this agent's node %q", bound, id.Node))
		}
		return nil
	}
	return forbidden(id, a, "an agent certificate may change only its own Node and its pods")
}
