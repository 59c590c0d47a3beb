package placement

import (
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// DefaultBurst caps the pods one reconcile of a ReplicaSet creates or
// deletes. A ReplicaSet of 20,000 reaches its size over several reconciles;
// each applied plan changes the pods, which marks the ReplicaSet dirty
// again. A plan goes to Raft in entries of at most 512 ops, all in flight
// one after another, so other writes still find room between them. It was
// 500 (Kubernetes' burstReplicas), with one round trip through Raft per
// 500 pods: a 5,000-pod apply onto 100 hollow nodes bound 3,300-3,500
// pods/s that way, 6,500-7,600 with 5,000 and the entries in flight. At
// 5,000, a 10,000-pod apply onto 250 hollow nodes was two plans, the
// second decided only once the first had applied and the nodes' status
// writes had begun to compete with it: all bound in 2.8-3.6 s (six runs);
// as one plan, 2.1-3.0 s (seven runs). A plan of 10,000 pods holds about
// 25 MB on the leader while it goes through Raft.
const DefaultBurst = 10000

// ReplicaSetInput is everything ReconcileReplicaSet reads.
type ReplicaSetInput struct {
	ReplicaSet *api.ReplicaSet
	// Pods are the pods of the ReplicaSet's namespace that it owns or that
	// its selector matches (orphans to adopt); others are ignored.
	Pods []*api.Pod
	Now  time.Time
	// NameSuffix names the i-th pod created by this reconcile
	// (<rs>-<suffix>). Nil means HashSuffix(uid/resourceVersion, i):
	// deterministic, so a retried reconcile proposes the same names.
	NameSuffix func(i int) string
	// Burst caps creations and deletions per reconcile; 0 means DefaultBurst.
	Burst int
}

// ReconcileReplicaSet keeps spec.replicas active pods of the template:
//
//   - orphans (no controller) that match the selector are adopted, owned
//     pods that no longer match are released;
//   - the shortfall is created (at most Burst);
//   - the surplus is deleted, the least useful first: unscheduled before
//     scheduled, pending before running, not ready before ready, the
//     younger before the older;
//   - status (replicas, fullyLabeled, ready, available with minReadySeconds
//     against Now, observedGeneration) is written only when it changed.
//
// A ReplicaSet being deleted is left alone (garbage collection removes its
// pods).
func ReconcileReplicaSet(in ReplicaSetInput) Plan {
	var plan Plan
	rs := in.ReplicaSet
	if rs == nil || rs.DeletionTimestamp != nil {
		return plan
	}
	sel, err := api.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		plan.Events = append(plan.Events, fmt.Sprintf("ReplicaSet %s/%s: invalid selector: %v", rs.Namespace, rs.Name, err))
		return plan
	}
	burst := in.Burst
	if burst <= 0 {
		burst = DefaultBurst
	}

	var owned []*api.Pod
	for _, p := range in.Pods {
		if p.Namespace != rs.Namespace {
			continue
		}
		switch controllerUID(&p.ObjectMeta) {
		case rs.UID:
			if !sel.Matches(p.Labels) && p.DeletionTimestamp == nil {
				plan.Update = append(plan.Update, releasePod(p, rs.UID))
				plan.Events = append(plan.Events, fmt.Sprintf("ReplicaSet %s/%s: released pod %s (labels no longer match)", rs.Namespace, rs.Name, p.Name))
				continue
			}
			owned = append(owned, p)
		case "":
			if !podIsActive(p) || !sel.Matches(p.Labels) {
				continue
			}
			c := p.DeepCopyObject().(*api.Pod)
			c.OwnerReferences = append(c.OwnerReferences, newControllerRef(rs))
			plan.Update = append(plan.Update, c)
			plan.Events = append(plan.Events, fmt.Sprintf("ReplicaSet %s/%s: adopted pod %s", rs.Namespace, rs.Name, p.Name))
			owned = append(owned, p)
		}
	}

	var active []*api.Pod
	for _, p := range owned {
		if podIsActive(p) {
			active = append(active, p)
		}
	}
	want := int(int32Or(rs.Spec.Replicas, 1))
	switch diff := want - len(active); {
	case diff > 0:
		n := min(diff, burst)
		namer := newPodNamer(rs.Name, rs.UID+"/"+rs.ResourceVersion, in.NameSuffix, in.Pods)
		for range n {
			plan.Create = append(plan.Create, podFromTemplate(&rs.Spec.Template, rs, namer.name(), nil))
		}
		plan.Events = append(plan.Events, fmt.Sprintf("ReplicaSet %s/%s: creating %d pods (have %d, want %d)", rs.Namespace, rs.Name, n, len(active), want))
	case diff < 0:
		n := min(-diff, burst)
		victims := append([]*api.Pod(nil), active...)
		sortForDeletion(victims)
		for _, p := range victims[:n] {
			plan.Delete = append(plan.Delete, RefOf(p))
		}
		plan.Events = append(plan.Events, fmt.Sprintf("ReplicaSet %s/%s: deleting %d pods (have %d, want %d)", rs.Namespace, rs.Name, n, len(active), want))
	}

	st := replicaSetStatus(rs, active, in.Now)
	if !reflect.DeepEqual(st, rs.Status) {
		c := rs.DeepCopyObject().(*api.ReplicaSet)
		c.Status = st
		plan.UpdateStatus = append(plan.UpdateStatus, c)
	}
	return plan
}

// releasePod returns a copy of p without the controller reference to uid.
func releasePod(p *api.Pod, uid string) *api.Pod {
	c := p.DeepCopyObject().(*api.Pod)
	refs := c.OwnerReferences[:0]
	for _, r := range c.OwnerReferences {
		if r.UID != uid {
			refs = append(refs, r)
		}
	}
	c.OwnerReferences = refs
	return c
}

// replicaSetStatus counts the active pods as observed.
func replicaSetStatus(rs *api.ReplicaSet, active []*api.Pod, now time.Time) api.ReplicaSetStatus {
	st := api.ReplicaSetStatus{
		Replicas:           int32(len(active)),
		ObservedGeneration: rs.Generation,
		Conditions:         rs.Status.Conditions,
	}
	for _, p := range active {
		if labelsContain(p.Labels, rs.Spec.Template.Labels) {
			st.FullyLabeledReplicas++
		}
		if podIsReady(p) {
			st.ReadyReplicas++
		}
		if podIsAvailable(p, rs.Spec.MinReadySeconds, now) {
			st.AvailableReplicas++
		}
	}
	return st
}

// deletionRank orders pods from the first to delete: unscheduled, then
// pending/unknown, then running; not ready before ready; among ready pods
// the more recently ready first; then the younger; then by name.
func sortForDeletion(pods []*api.Pod) {
	phaseRank := func(p *api.Pod) int {
		switch p.Status.Phase {
		case api.PodPending, "":
			return 0
		case api.PodUnknown:
			return 1
		}
		return 2
	}
	sched := func(p *api.Pod) int {
		if p.Spec.NodeName == "" {
			return 0
		}
		return 1
	}
	ready := func(p *api.Pod) int {
		if podIsReady(p) {
			return 1
		}
		return 0
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if x, y := sched(a), sched(b); x != y {
			return x < y
		}
		if x, y := phaseRank(a), phaseRank(b); x != y {
			return x < y
		}
		if x, y := ready(a), ready(b); x != y {
			return x < y
		}
		if ready(a) == 1 {
			ta := podReadyCondition(a).LastTransitionTime
			tb := podReadyCondition(b).LastTransitionTime
			if !ta.Equal(tb.Time) {
				return ta.After(tb.Time)
			}
		}
		if !a.CreationTimestamp.Equal(b.CreationTimestamp.Time) {
			return a.CreationTimestamp.After(b.CreationTimestamp.Time)
		}
		return a.Name < b.Name
	})
}
