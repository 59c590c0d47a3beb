package controllers

import (
	"fmt"

	"github.com/shoal-dev/shoal/agent/internal/events"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// Components that the leader's Events name as their source.
const (
	ComponentScheduler = "default-scheduler"
	componentSuffix    = "-controller" // replicaset-controller, ...
)

// note is one Event a plan's change calls for, emitted only when the
// change went through (its key was not refused).
type note struct {
	key                  store.Key
	component            string
	ref                  api.ObjectReference
	typ, reason, message string
}

// planNotes derives the Events of an applied plan, as Kubernetes'
// scheduler and controllers write them: Scheduled and FailedScheduling for
// pods the scheduler bound or could not place, SuccessfulCreate and
// SuccessfulDelete on the controller of a pod created or deleted,
// ScalingReplicaSet on the Deployment of a ReplicaSet created or resized.
// get returns the object as the decision saw it (nil: none), read before
// the plan was applied (planOlds). The plan's
// Create objects carry their generated names by now (planOps sets them).
func planNotes(p placement.Plan, get func(kind, ns, name string) api.Object) []note {
	var out []note
	add := func(k store.Key, component string, ref api.ObjectReference, typ, reason, format string, a ...any) {
		out = append(out, note{key: k, component: component, ref: ref, typ: typ, reason: reason, message: fmt.Sprintf(format, a...)})
	}
	ownerRef := func(m *api.ObjectMeta) (api.ObjectReference, string, bool) {
		c := api.ControllerOf(m)
		if c == nil {
			return api.ObjectReference{}, "", false
		}
		ref := api.ObjectReference{Kind: c.Kind, Namespace: m.Namespace, Name: c.Name, UID: c.UID, APIVersion: c.APIVersion}
		return ref, lowerKind(c.Kind) + componentSuffix, true
	}
	for _, obj := range p.Create {
		m, k := obj.GetObjectMeta(), store.KeyOf(obj)
		ref, comp, ok := ownerRef(m)
		if !ok {
			continue
		}
		switch o := obj.(type) {
		case *api.Pod:
			add(k, comp, ref, api.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", o.Name)
			if o.Spec.NodeName != "" { // bound at creation (placement.BindCreated)
				add(k, ComponentScheduler, api.RefTo(o), api.EventTypeNormal, "Scheduled",
					"Successfully assigned %s/%s to %s", o.Namespace, o.Name, o.Spec.NodeName)
			}
		case *api.ReplicaSet:
			if ref.Kind == "Deployment" {
				add(k, comp, ref, api.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s to %d", o.Name, replicas(o.Spec.Replicas))
			}
		}
	}
	for _, obj := range p.Update {
		k := store.KeyOf(obj)
		old := get(k.Kind, k.Namespace, k.Name)
		switch o := obj.(type) {
		case *api.Pod:
			if op, ok := old.(*api.Pod); ok && op.Spec.NodeName == "" && o.Spec.NodeName != "" {
				add(k, ComponentScheduler, api.RefTo(o), api.EventTypeNormal, "Scheduled",
					"Successfully assigned %s/%s to %s", o.Namespace, o.Name, o.Spec.NodeName)
			}
		case *api.ReplicaSet:
			or, ok := old.(*api.ReplicaSet)
			ref, comp, owned := ownerRef(&o.ObjectMeta)
			if !ok || !owned || ref.Kind != "Deployment" {
				continue
			}
			from, to := replicas(or.Spec.Replicas), replicas(o.Spec.Replicas)
			switch {
			case to > from:
				add(k, comp, ref, api.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s to %d from %d", o.Name, to, from)
			case to < from:
				add(k, comp, ref, api.EventTypeNormal, "ScalingReplicaSet", "Scaled down replica set %s to %d from %d", o.Name, to, from)
			}
		}
	}
	for _, obj := range p.UpdateStatus {
		o, ok := obj.(*api.Pod)
		if !ok || o.Spec.NodeName != "" {
			continue
		}
		if c := api.FindCondition(o.Status.Conditions, api.PodScheduled); c != nil && c.Status == api.ConditionFalse && c.Reason == placement.ReasonUnschedulable {
			add(store.KeyOf(o), ComponentScheduler, api.RefTo(o), api.EventTypeWarning, "FailedScheduling", "%s", c.Message)
		}
	}
	for _, r := range p.Delete {
		if r.Kind != "Pod" {
			continue
		}
		old := get(r.Kind, r.Namespace, r.Name)
		if old == nil {
			continue
		}
		if ref, comp, ok := ownerRef(old.GetObjectMeta()); ok && old.GetObjectMeta().DeletionTimestamp == nil {
			add(store.Key{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}, comp, ref, api.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", r.Name)
		}
	}
	return out
}

// planOlds reads, before a plan is applied, the objects its updates and
// deletions change, for planNotes to compare with afterwards.
func planOlds(p placement.Plan, get func(kind, ns, name string) api.Object) func(kind, ns, name string) api.Object {
	olds := map[store.Key]api.Object{}
	for _, o := range p.Update {
		k := store.KeyOf(o)
		olds[k] = get(k.Kind, k.Namespace, k.Name)
	}
	for _, r := range p.Delete {
		olds[store.Key{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}] = get(r.Kind, r.Namespace, r.Name)
	}
	return func(kind, ns, name string) api.Object { return olds[store.Key{Kind: kind, Namespace: ns, Name: name}] }
}

// emitNotes records the notes whose change was not refused.
func emitNotes(rec *events.Recorder, notes []note, refused map[store.Key]bool) {
	if rec == nil {
		return
	}
	for _, n := range notes {
		if refused[n.key] {
			continue
		}
		rec.For(n.component).Event(n.ref, n.typ, n.reason, n.message)
	}
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func lowerKind(kind string) string {
	b := []byte(kind)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
