package placement

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Reasons of a Deployment's conditions, as Kubernetes writes them so that
// `rollout status` logic carries over.
const (
	DeploymentProgressing = "Progressing"
	DeploymentAvailable   = "Available"

	ReasonNewRSAvailable          = "NewReplicaSetAvailable"
	ReasonRSUpdated               = "ReplicaSetUpdated"
	ReasonProgressDeadline        = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused        = "DeploymentPaused"
	ReasonMinimumReplicasAvail    = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavail  = "MinimumReplicasUnavailable"
	defaultProgressDeadlineSecond = 600
)

// DeploymentInput is everything ReconcileDeployment reads.
type DeploymentInput struct {
	Deployment *api.Deployment
	// ReplicaSets of the Deployment's namespace that it owns, or that its
	// selector matches (orphans to adopt). Others are ignored, except that
	// a name clash with the new ReplicaSet's name is detected among them.
	ReplicaSets []*api.ReplicaSet
	// Pods owned by those ReplicaSets; Recreate waits until the old ones
	// are gone.
	Pods []*api.Pod
	Now  time.Time
}

// ReconcileDeployment rolls spec.template out through ReplicaSets.
//
// The ReplicaSet of the current template (the "new" one) is found by
// template equality and is named <deployment>-<TemplateHash>; its pods and
// selector carry the pod-template-hash label. A template equal to an old
// ReplicaSet's reuses it, which is how a rollback works. The new ReplicaSet
// gets the next revision (annotation deployment.kubernetes.io/revision),
// and the Deployment carries the same annotation.
//
// RollingUpdate (one step per reconcile, as Kubernetes): scale the new
// ReplicaSet up so that the pods of all ReplicaSets stay within
// replicas+maxSurge; if nothing was scaled up, scale old ReplicaSets down,
// their unavailable pods first, keeping at least replicas-maxUnavailable
// available. maxSurge percentages round up and maxUnavailable percentages
// round down; both zero count as maxUnavailable 1. Recreate scales every
// old ReplicaSet to 0, waits until none of their pods is left, then scales
// the new one up. Counts come from ReplicaSet status, which the ReplicaSet
// reconcile keeps.
//
// When the rollout is complete, old empty ReplicaSets beyond
// revisionHistoryLimit are deleted, lowest revision first. A paused
// Deployment does not roll out (only its status is kept). Status carries
// the counts and the Available and Progressing conditions; Progressing
// turns False with ProgressDeadlineExceeded when no progress was seen for
// progressDeadlineSeconds before Now (the loop should reconcile again at
// ProgressDeadline). A Deployment whose metadata changes (revision
// annotation) gets that Update alone; its status follows on the next
// reconcile, so that two writes never race on one resourceVersion.
func ReconcileDeployment(in DeploymentInput) Plan {
	d := in.Deployment
	if d == nil || d.DeletionTimestamp != nil {
		return Plan{}
	}
	r := &deploymentReconcile{in: in, d: d, w: &rsWork{changed: map[string]*api.ReplicaSet{}}}
	sel, err := api.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		r.say("invalid selector: %v", err)
		return r.plan
	}
	r.desired = int(int32Or(d.Spec.Replicas, 1))
	if r.maxSurge, r.maxUnavailable, err = deploymentFenceposts(d, r.desired); err != nil {
		r.say("%v", err)
		return r.plan
	}

	r.claimReplicaSets(sel)
	r.findNewReplicaSet()
	if !d.Spec.Paused && !r.prepareNewReplicaSet() {
		return r.plan // a name clash: the collisionCount step alone
	}
	r.revision = r.maxOld + 1 // a new ReplicaSet, or one rolled back to
	if r.newRS != nil && Revision(&r.newRS.ObjectMeta) > r.maxOld {
		r.revision = Revision(&r.newRS.ObjectMeta)
	}

	switch {
	case d.Spec.Paused:
		// A paused Deployment may still be scaled when it is not mid-rollout.
		if r.newRS != nil && r.oldSpec() == 0 {
			r.scale(r.newRS, r.desired)
		}
	case d.Spec.Strategy.Type == api.RecreateStrategy:
		r.recreateStep()
	default:
		r.rollingStep()
	}
	if r.creating != nil {
		r.say("created ReplicaSet %s (revision %d) with %d replicas", r.creating.Name, r.revision, int32Or(r.creating.Spec.Replicas, 0))
		r.plan.Create = append(r.plan.Create, r.creating)
	}

	complete := r.complete()
	if complete {
		r.pruneHistory()
	}
	r.plan.Update = append(r.plan.Update, r.w.updates()...)
	if r.stampRevision() {
		return r.plan
	}
	st := deploymentStatus(d, r.newRS, r.owned, r.desired, r.maxUnavailable, complete, r.progressed, in.Now)
	if !reflect.DeepEqual(st, d.Status) {
		c := d.DeepCopyObject().(*api.Deployment)
		c.Status = st
		r.plan.UpdateStatus = append(r.plan.UpdateStatus, c)
	}
	return r.plan
}

// deploymentReconcile is the working state of one ReconcileDeployment: each
// step below reads what the steps before it found and adds to the plan.
type deploymentReconcile struct {
	in DeploymentInput
	d  *api.Deployment

	desired, maxSurge, maxUnavailable int

	owned    []*api.ReplicaSet // the Deployment's, adopted ones included
	newRS    *api.ReplicaSet   // the owned one of the current template, if any
	old      []*api.ReplicaSet // the other owned ones, lowest revision first
	maxOld   int64             // the highest revision among old
	creating *api.ReplicaSet   // the new ReplicaSet this plan creates, if any
	revision int64             // the Deployment's revision once the plan applies

	w          *rsWork // changes to existing ReplicaSets
	progressed bool    // the plan creates or scales a ReplicaSet
	plan       Plan
}

func (r *deploymentReconcile) say(format string, a ...any) {
	r.plan.Events = append(r.plan.Events, fmt.Sprintf("Deployment %s/%s: ", r.d.Namespace, r.d.Name)+fmt.Sprintf(format, a...))
}

// claimReplicaSets collects the ReplicaSets the Deployment owns and adopts
// the orphans its selector matches.
func (r *deploymentReconcile) claimReplicaSets(sel api.Selector) {
	for _, rs := range r.in.ReplicaSets {
		if rs.Namespace != r.d.Namespace || rs.DeletionTimestamp != nil {
			continue
		}
		switch controllerUID(&rs.ObjectMeta) {
		case r.d.UID:
			r.owned = append(r.owned, rs)
		case "":
			if sel.Matches(rs.Labels) {
				c := r.w.mut(rs)
				c.OwnerReferences = append(c.OwnerReferences, newControllerRef(r.d))
				r.say("adopted ReplicaSet %s", rs.Name)
				r.owned = append(r.owned, rs)
			}
		}
	}
}

// findNewReplicaSet splits the owned ReplicaSets into the new one (the
// oldest whose template is the Deployment's) and the old ones.
func (r *deploymentReconcile) findNewReplicaSet() {
	want := TemplateHash(&r.d.Spec.Template, 0)
	owned := r.owned
	sort.SliceStable(owned, func(i, j int) bool { return olderFirst(&owned[i].ObjectMeta, &owned[j].ObjectMeta) })
	for _, rs := range owned {
		if r.newRS == nil && TemplateHash(&rs.Spec.Template, 0) == want {
			r.newRS = rs
		} else {
			r.old = append(r.old, rs)
		}
	}
	old := r.old
	sort.SliceStable(old, func(i, j int) bool { return Revision(&old[i].ObjectMeta) < Revision(&old[j].ObjectMeta) })
	for _, rs := range old {
		r.maxOld = max(r.maxOld, Revision(&rs.ObjectMeta))
	}
}

// prepareNewReplicaSet makes the current template's ReplicaSet the newest
// revision: it builds one when none exists, or moves a rolled-back one to
// the top. It returns false when the new ReplicaSet's name is taken by
// someone else's; the plan then only steps status.collisionCount (and
// keeps any adoptions).
func (r *deploymentReconcile) prepareNewReplicaSet() bool {
	d := r.d
	if r.newRS != nil {
		if Revision(&r.newRS.ObjectMeta) <= r.maxOld {
			// Rolled back to an old template: it becomes the newest revision.
			c := r.w.mut(r.newRS)
			setRevision(&c.ObjectMeta, r.maxOld+1)
			r.say("ReplicaSet %s becomes revision %d", r.newRS.Name, r.maxOld+1)
		}
		return true
	}
	collisions := int32Or(d.Status.CollisionCount, 0)
	name := d.Name + "-" + TemplateHash(&d.Spec.Template, collisions)
	for _, rs := range r.in.ReplicaSets {
		if rs.Namespace == d.Namespace && rs.Name == name {
			// Someone else's ReplicaSet holds our name: step the hash, as
			// Kubernetes does with collisionCount.
			collisions++
			r.say("ReplicaSet name %s is taken; collisionCount %d", name, collisions)
			c := d.DeepCopyObject().(*api.Deployment)
			c.Status.CollisionCount = &collisions
			r.plan.UpdateStatus = append(r.plan.UpdateStatus, c)
			r.plan.Update = append(r.plan.Update, r.w.updates()...)
			return false
		}
	}
	r.creating = newReplicaSetFor(d, name, r.maxOld+1)
	r.progressed = true
	return true
}

// spec is rs's replica count as the plan leaves it.
func (r *deploymentReconcile) spec(rs *api.ReplicaSet) int {
	if c, ok := r.w.changed[rs.UID]; ok {
		return int(int32Or(c.Spec.Replicas, 1))
	}
	return int(int32Or(rs.Spec.Replicas, 1))
}

// oldSpec sums the old ReplicaSets' replica counts as the plan leaves them.
func (r *deploymentReconcile) oldSpec() int {
	t := 0
	for _, rs := range r.old {
		t += r.spec(rs)
	}
	return t
}

// scale sets an existing ReplicaSet's replica count in the plan.
func (r *deploymentReconcile) scale(rs *api.ReplicaSet, n int) {
	if r.spec(rs) == n {
		return
	}
	r.say("scaling ReplicaSet %s from %d to %d", rs.Name, r.spec(rs), n)
	c := r.w.mut(rs)
	c.Spec.Replicas = i32ptr(int32(n))
	r.progressed = true
}

// recreateStep takes every old ReplicaSet to 0, waits for their pods to be
// gone, then brings the new one to the desired count.
func (r *deploymentReconcile) recreateStep() {
	if r.oldSpec() > 0 {
		for _, rs := range r.old {
			r.scale(rs, 0)
		}
		if r.creating != nil {
			r.creating.Spec.Replicas = i32ptr(0)
		}
		return
	}
	if n := oldPodsLeft(r.old, r.in.Pods); n > 0 {
		r.say("waiting for %d old pods to terminate", n)
		if r.creating != nil {
			r.creating.Spec.Replicas = i32ptr(0)
		}
		return
	}
	if r.creating != nil {
		r.creating.Spec.Replicas = i32ptr(int32(r.desired))
	} else {
		r.scale(r.newRS, r.desired)
	}
}

// rollingStep takes one RollingUpdate step: the new ReplicaSet up within
// maxSurge, or else the old ones down within maxUnavailable.
func (r *deploymentReconcile) rollingStep() {
	desired := r.desired
	if r.creating != nil {
		n := min(max(desired+r.maxSurge-r.oldSpec(), 0), desired)
		r.creating.Spec.Replicas = i32ptr(int32(n))
		return
	}
	newRS := r.newRS
	if r.oldSpec() == 0 {
		r.scale(newRS, desired) // not a rollout: just a scale
		return
	}
	if r.spec(newRS) > desired {
		r.scale(newRS, desired)
		return
	}
	total := r.oldSpec() + r.spec(newRS)
	if up := min(desired+r.maxSurge-total, desired-r.spec(newRS)); up > 0 {
		r.scale(newRS, r.spec(newRS)+up)
		return
	}
	scaleDownOld(r.old, newRS, desired, r.maxUnavailable, r.spec, r.scale)
}

// complete reports whether the rollout is done: the existing new
// ReplicaSet has every replica available and the old ones have none.
func (r *deploymentReconcile) complete() bool {
	newRS := r.newRS
	return newRS != nil && r.creating == nil && r.spec(newRS) == r.desired && int(newRS.Status.AvailableReplicas) >= r.desired &&
		int(newRS.Status.Replicas) == r.desired && r.oldSpec() == 0 && oldStatusReplicas(r.old) == 0
}

// pruneHistory deletes the empty old ReplicaSets beyond
// revisionHistoryLimit, lowest revision first.
func (r *deploymentReconcile) pruneHistory() {
	limit := int(int32Or(r.d.Spec.RevisionHistoryLimit, 10))
	var empty []*api.ReplicaSet
	for _, rs := range r.old {
		if r.spec(rs) == 0 && rs.Status.Replicas == 0 {
			empty = append(empty, rs)
		}
	}
	for i := 0; i < len(empty)-limit; i++ {
		r.say("deleting old ReplicaSet %s (revision %d) beyond revisionHistoryLimit %d", empty[i].Name, Revision(&empty[i].ObjectMeta), limit)
		r.plan.Delete = append(r.plan.Delete, RefOf(empty[i]))
		delete(r.w.changed, empty[i].UID)
	}
}

// stampRevision updates the Deployment's revision annotation when it is
// behind (not while paused). It reports whether it did: the status then
// waits for the next reconcile.
func (r *deploymentReconcile) stampRevision() bool {
	d := r.d
	rev := strconv.FormatInt(r.revision, 10)
	if d.Annotations[AnnotationRevision] == rev || d.Spec.Paused {
		return false
	}
	c := d.DeepCopyObject().(*api.Deployment)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[AnnotationRevision] = rev
	r.plan.Update = append(r.plan.Update, c)
	return true
}

// scaleDownOld takes old ReplicaSets down without letting availability
// drop below desired-maxUnavailable: first their unavailable pods, then
// available ones, oldest revision first.
func scaleDownOld(old []*api.ReplicaSet, newRS *api.ReplicaSet, desired, maxUnavailable int,
	spec func(*api.ReplicaSet) int, scale func(*api.ReplicaSet, int)) {
	minAvailable := desired - maxUnavailable
	all := spec(newRS)
	for _, rs := range old {
		all += spec(rs)
	}
	newUnavailable := max(spec(newRS)-int(newRS.Status.AvailableReplicas), 0)
	budget := all - minAvailable - newUnavailable
	if budget <= 0 {
		return
	}
	// Unhealthy pods of old ReplicaSets cost no availability.
	for _, rs := range old {
		if budget <= 0 {
			break
		}
		unhealthy := spec(rs) - int(rs.Status.AvailableReplicas)
		if unhealthy <= 0 {
			continue
		}
		n := min(unhealthy, budget)
		scale(rs, spec(rs)-n)
		budget -= n
	}
	available := int(newRS.Status.AvailableReplicas)
	for _, rs := range old {
		available += int(rs.Status.AvailableReplicas)
	}
	room := available - minAvailable
	for _, rs := range old {
		if room <= 0 {
			break
		}
		n := min(spec(rs), room)
		if n > 0 {
			scale(rs, spec(rs)-n)
			room -= n
		}
	}
}

// deploymentFenceposts resolves maxSurge (rounded up) and maxUnavailable
// (rounded down, capped at replicas) against replicas.
func deploymentFenceposts(d *api.Deployment, desired int) (surge, unavailable int, err error) {
	if d.Spec.Strategy.Type == api.RecreateStrategy {
		return 0, desired, nil
	}
	s, u := api.FromString("25%"), api.FromString("25%")
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			s = *ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			u = *ru.MaxUnavailable
		}
	}
	if surge, err = s.ScaledValue(desired, true); err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxSurge: %w", err)
	}
	if unavailable, err = u.ScaledValue(desired, false); err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxUnavailable: %w", err)
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1 // the API rejects this; never deadlock on it
	}
	return max(surge, 0), min(max(unavailable, 0), desired), nil
}
