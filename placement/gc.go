package placement

import (
	"fmt"
	"slices"
	"sort"

	"github.com/shoal-dev/shoal/api"
)

// DefaultOwnerKinds are the kinds that own other objects in Shoal.
var DefaultOwnerKinds = []string{"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"}

// GCInput is everything CollectGarbage reads.
type GCInput struct {
	// Objects holds every object of OwnerKinds (all namespaces) and the
	// dependents to check (typically ReplicaSets and Pods).
	Objects []api.Object
	// OwnerKinds are the kinds Objects lists completely: an ownerReference
	// to one of them that matches no uid in Objects is dangling. References
	// to other kinds are never judged. Nil means DefaultOwnerKinds.
	OwnerKinds []string
}

// CollectGarbage deletes the objects whose owners are gone, Kubernetes'
// background cascading deletion: an object whose controller reference (by
// uid, so that an owner deleted and re-created under the same name does not
// count) points to a missing owner is deleted; an object with only
// non-controller references is deleted when all of them dangle. The cascade
// runs to the end in one plan: a deleted Deployment's ReplicaSets and their
// pods go together. Objects already terminating are skipped. Deletes carry
// the resourceVersion read, so an object adopted meanwhile survives.
func CollectGarbage(in GCInput) Plan {
	var plan Plan
	kinds := in.OwnerKinds
	if kinds == nil {
		kinds = DefaultOwnerKinds
	}
	alive := map[string]bool{}
	for _, o := range in.Objects {
		if uid := o.GetObjectMeta().UID; uid != "" {
			alive[uid] = true
		}
	}
	// Objects deleted in this plan count as gone for their dependents.
	doomed := map[string]bool{}
	judged := func(r api.OwnerReference) bool { return slices.Contains(kinds, r.Kind) }
	dangling := func(r api.OwnerReference) bool { return !alive[r.UID] || doomed[r.UID] }
	orphaned := func(m *api.ObjectMeta) (bool, string) {
		if c := api.ControllerOf(m); c != nil {
			if judged(*c) && dangling(*c) {
				return true, fmt.Sprintf("its controller %s %s (uid %s) is gone", c.Kind, c.Name, c.UID)
			}
			return false, ""
		}
		n := 0
		for _, r := range m.OwnerReferences {
			if !judged(r) || !dangling(r) {
				return false, ""
			}
			n++
		}
		if n == 0 {
			return false, ""
		}
		return true, "all its owners are gone"
	}
	objs := append([]api.Object(nil), in.Objects...)
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i].GetObjectMeta(), objs[j].GetObjectMeta()
		if ka, kb := api.KindOf(objs[i]), api.KindOf(objs[j]); ka != kb {
			return ka < kb
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	// Repeat until nothing new is doomed: each pass reaches one level
	// further down the ownership chain.
	for changed := true; changed; {
		changed = false
		for _, o := range objs {
			m := o.GetObjectMeta()
			if doomed[m.UID] || m.DeletionTimestamp != nil {
				continue
			}
			if gone, why := orphaned(m); gone {
				doomed[m.UID] = true
				changed = true
				plan.Delete = append(plan.Delete, RefOf(o))
				plan.Events = append(plan.Events, fmt.Sprintf("%s %s/%s: deleted because %s", api.KindOf(o), m.Namespace, m.Name, why))
			}
		}
	}
	return plan
}
