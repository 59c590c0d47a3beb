package apiserver

import (
	"fmt"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// admitNodeEvent is the object half of NodeRestriction for Events: an
// agent creates and updates Events only about its own Node or a pod bound
// to it (the stored pod says where it is bound, and must be the one the
// Event names when it gives a uid), reported from its own host; it never
// deletes them (the leader's collector does). A voter's certificate may
// write Events about any object, still from its own host: the leader's
// scheduler and controllers speak of every node's pods, and a voter
// certificate can append anything to the Raft log anyway, so this gives
// it nothing more. storedPod reads a pod from the store (nil: none).
func admitNodeEvent(id Identity, a Attributes, old, next api.Object, storedPod func(ns, name string) *api.Pod) error {
	if a.Verb == VerbDelete {
		return forbidden(id, a, "an agent may not delete Events")
	}
	if old == nil && next == nil {
		return forbidden(id, a, "nothing to check")
	}
	for _, o := range []api.Object{old, next} {
		if o == nil {
			continue
		}
		e, ok := o.(*api.Event)
		if !ok {
			return forbidden(id, a, fmt.Sprintf("expected an Event, got %T", o))
		}
		for field, host := range map[string]string{"source.host": e.Source.Host, "reportingInstance": e.ReportingInstance} {
			if host != "" && host != id.Node {
				return forbidden(id, a, fmt.Sprintf("an agent reports Events from its own node %q, not %s %q", id.Node, field, host))
			}
		}
		ref := e.InvolvedObject
		if id.Voter {
			continue
		}
		switch ref.Kind {
		case "Node":
			if ref.Name != id.Node {
				return forbidden(id, a, fmt.Sprintf("an agent may write Events about its own Node (%q), not Node %q", id.Node, ref.Name))
			}
		case "Pod":
			p := storedPod(e.Namespace, ref.Name)
			switch {
			case p == nil:
				return forbidden(id, a, fmt.Sprintf("the Event is about pod %s/%s, which does not exist", e.Namespace, ref.Name))
			case p.Spec.NodeName != id.Node:
				return forbidden(id, a, fmt.Sprintf("the Event is about pod %s/%s, bound to %q, not to this agent's node %q", e.Namespace, ref.Name, p.Spec.NodeName, id.Node))
			case ref.UID != "" && ref.UID != p.UID:
				return forbidden(id, a, fmt.Sprintf("the Event is about pod %s/%s uid %s, not the stored one", e.Namespace, ref.Name, ref.UID))
			}
		default:
			return forbidden(id, a, fmt.Sprintf("an agent may write Events only about its own Node and the pods bound to it, not a %s", ref.Kind))
		}
	}
	return nil
}

// storedPod reads a pod from this server's store; nil when there is none.
func (s *Server) storedPod(ns, name string) *api.Pod {
	o, err := s.prop.reader.Get(store.Key{Kind: "Pod", Namespace: ns, Name: name})
	if err != nil {
		return nil
	}
	p, _ := o.(*api.Pod)
	return p
}
