package placement

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Revision reads the deployment.kubernetes.io/revision annotation (0 when
// absent or malformed).
func Revision(m *api.ObjectMeta) int64 {
	v, err := strconv.ParseInt(m.Annotations[AnnotationRevision], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func setRevision(m *api.ObjectMeta, r int64) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[AnnotationRevision] = strconv.FormatInt(r, 10)
}

func i32ptr(v int32) *int32 { return &v }

// newReplicaSetFor builds the ReplicaSet of d's current template.
func newReplicaSetFor(d *api.Deployment, name string, revision int64) *api.ReplicaSet {
	hash := name[len(d.Name)+1:]
	tmpl := (&api.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}).DeepCopyObject().(*api.Pod)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[LabelPodTemplateHash] = hash
	sel := &api.LabelSelector{}
	if d.Spec.Selector != nil {
		sel.MatchLabels = maps.Clone(d.Spec.Selector.MatchLabels)
		sel.MatchExpressions = append(sel.MatchExpressions, d.Spec.Selector.MatchExpressions...)
	}
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[LabelPodTemplateHash] = hash
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{
			Name:            name,
			Namespace:       d.Namespace,
			Labels:          maps.Clone(tmpl.Labels),
			OwnerReferences: []api.OwnerReference{newControllerRef(d)},
		},
		Spec: api.ReplicaSetSpec{
			Selector:        sel,
			MinReadySeconds: d.Spec.MinReadySeconds,
			Template:        api.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}
	setRevision(&rs.ObjectMeta, revision)
	api.SetTypeMeta(rs)
	return rs
}

// rsWork collects ReplicaSet changes so that each changes in one Update.
type rsWork struct {
	changed map[string]*api.ReplicaSet
	order   []string
}

func (w *rsWork) mut(rs *api.ReplicaSet) *api.ReplicaSet {
	if c, ok := w.changed[rs.UID]; ok {
		return c
	}
	c := rs.DeepCopyObject().(*api.ReplicaSet)
	w.changed[rs.UID] = c
	w.order = append(w.order, rs.UID)
	return c
}

func (w *rsWork) updates() []api.Object {
	var out []api.Object
	for _, uid := range w.order {
		if c, ok := w.changed[uid]; ok {
			out = append(out, c)
		}
	}
	return out
}

func oldStatusReplicas(old []*api.ReplicaSet) int {
	n := 0
	for _, rs := range old {
		n += int(rs.Status.Replicas)
	}
	return n
}

// oldPodsLeft counts the pods of old ReplicaSets that still exist (running
// or terminating; finished ones no longer hold anything).
func oldPodsLeft(old []*api.ReplicaSet, pods []*api.Pod) int {
	uids := map[string]bool{}
	n := 0
	for _, rs := range old {
		uids[rs.UID] = true
		n += int(rs.Status.Replicas)
	}
	left := 0
	for _, p := range pods {
		if uids[controllerUID(&p.ObjectMeta)] && p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed {
			left++
		}
	}
	return max(left, n)
}

// deploymentStatus sums the ReplicaSets' status and sets the conditions.
func deploymentStatus(d *api.Deployment, newRS *api.ReplicaSet, owned []*api.ReplicaSet, desired, maxUnavailable int,
	complete, progressed bool, now time.Time) api.DeploymentStatus {
	st := api.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Conditions:         d.Status.Conditions,
		CollisionCount:     d.Status.CollisionCount,
	}
	for _, rs := range owned {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(int32(desired)-st.AvailableReplicas, 0)

	avail := api.Condition{Type: DeploymentAvailable, Status: api.ConditionTrue, Reason: ReasonMinimumReplicasAvail,
		Message: "Deployment has minimum availability."}
	if int(st.AvailableReplicas) < desired-maxUnavailable {
		avail = api.Condition{Type: DeploymentAvailable, Status: api.ConditionFalse, Reason: ReasonMinimumReplicasUnavail,
			Message: "Deployment does not have minimum availability."}
	}
	st.Conditions, _ = setCondition(st.Conditions, avail, now)

	prev := api.FindCondition(d.Status.Conditions, DeploymentProgressing)
	old := d.Status
	progressed = progressed || st.UpdatedReplicas > old.UpdatedReplicas || st.Replicas < old.Replicas ||
		st.ReadyReplicas > old.ReadyReplicas || st.AvailableReplicas > old.AvailableReplicas
	var prog api.Condition
	switch {
	case d.Spec.Paused:
		prog = api.Condition{Type: DeploymentProgressing, Status: api.ConditionUnknown, Reason: ReasonDeploymentPaused,
			Message: "Deployment is paused"}
	case complete:
		prog = api.Condition{Type: DeploymentProgressing, Status: api.ConditionTrue, Reason: ReasonNewRSAvailable,
			Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)}
		if prev != nil && prev.Reason == ReasonNewRSAvailable {
			prog = *prev
		}
	case progressed || prev == nil || prev.Reason == ReasonDeploymentPaused || prev.Reason == ReasonNewRSAvailable:
		name := d.Name
		if newRS != nil {
			name = newRS.Name
		}
		prog = api.Condition{Type: DeploymentProgressing, Status: api.ConditionTrue, Reason: ReasonRSUpdated,
			Message: fmt.Sprintf("ReplicaSet %q is progressing.", name), LastUpdateTime: api.NewTime(now)}
	default:
		prog = *prev
		deadline := time.Duration(int32Or(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSecond)) * time.Second
		if prev.Reason != ReasonProgressDeadline && !prev.LastUpdateTime.Add(deadline).After(now) {
			prog = api.Condition{Type: DeploymentProgressing, Status: api.ConditionFalse, Reason: ReasonProgressDeadline,
				Message: fmt.Sprintf("Deployment %q has timed out progressing.", d.Name), LastUpdateTime: api.NewTime(now)}
		}
	}
	st.Conditions, _ = setCondition(st.Conditions, prog, now)
	return st
}

// ProgressDeadline is when a Deployment still progressing will be declared
// stuck: the loop reconciles it again then. ok is false when no deadline is
// pending (complete, paused, or already exceeded).
func ProgressDeadline(d *api.Deployment) (at time.Time, ok bool) {
	c := api.FindCondition(d.Status.Conditions, DeploymentProgressing)
	if d.Spec.Paused || c == nil || c.Reason != ReasonRSUpdated {
		return time.Time{}, false
	}
	deadline := time.Duration(int32Or(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSecond)) * time.Second
	return c.LastUpdateTime.Add(deadline), true
}

// Errors of RollbackTemplate.
var (
	ErrNoRolloutHistory = errors.New("no rollout history")
	ErrRevisionNotFound = errors.New("revision not found")
)

// RollbackTemplate returns the pod template of revision toRevision of d
// (0: the revision before the current one), for `shoal rollout undo`:
// writing it into d.spec.template rolls back, reusing that ReplicaSet.
// rsList holds the ReplicaSets of d's namespace; only d's count.
func RollbackTemplate(d *api.Deployment, rsList []*api.ReplicaSet, toRevision int64) (*api.PodTemplateSpec, error) {
	cur := TemplateHash(&d.Spec.Template, 0)
	var owned []*api.ReplicaSet
	var current int64
	for _, rs := range rsList {
		if rs.Namespace != d.Namespace || controllerUID(&rs.ObjectMeta) != d.UID {
			continue
		}
		owned = append(owned, rs)
		if TemplateHash(&rs.Spec.Template, 0) == cur {
			current = max(current, Revision(&rs.ObjectMeta))
		}
	}
	if current == 0 {
		current = Revision(&d.ObjectMeta)
	}
	var pick *api.ReplicaSet
	for _, rs := range owned {
		r := Revision(&rs.ObjectMeta)
		switch {
		case toRevision == 0:
			if r < current && (pick == nil || r > Revision(&pick.ObjectMeta)) {
				pick = rs
			}
		case r == toRevision:
			pick = rs
		}
	}
	if pick == nil {
		if toRevision == 0 {
			return nil, fmt.Errorf("deployment %s/%s: %w before revision %d", d.Namespace, d.Name, ErrNoRolloutHistory, current)
		}
		return nil, fmt.Errorf("deployment %s/%s: %w: %d", d.Namespace, d.Name, ErrRevisionNotFound, toRevision)
	}
	c := (&api.Pod{ObjectMeta: pick.Spec.Template.ObjectMeta, Spec: pick.Spec.Template.Spec}).DeepCopyObject().(*api.Pod)
	delete(c.Labels, LabelPodTemplateHash)
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	return &api.PodTemplateSpec{ObjectMeta: c.ObjectMeta, Spec: c.Spec}, nil
}
