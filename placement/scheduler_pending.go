package placement

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// ReasonUnschedulable is the reason of the PodScheduled=False condition a
// pod gets when no node fits it.
const ReasonUnschedulable = "Unschedulable"

// SchedulePending places every pod that has no spec.nodeName, given all the
// pods of the cluster (bound ones count against their nodes). Pods go in a
// fixed order — higher spec.priority first, then older, then by namespace
// and name — so the result does not depend on the order of the input, and
// each placement is counted before the next pod is decided.
//
// A pod that fits is bound: an Update that sets spec.nodeName. A pod that
// does not gets, in an UpdateStatus, a PodScheduled=False condition with
// reason Unschedulable and the explanation as its message — only when that
// condition changes, so a pod that stays unschedulable writes nothing.
// Pods being deleted or already finished are left alone.
func SchedulePending(cfg SchedulerConfig, nodes []*api.Node, pods []*api.Pod, now time.Time) Plan {
	var bound, pending []*api.Pod
	for _, p := range pods {
		switch {
		case p == nil:
		case p.Spec.NodeName != "":
			bound = append(bound, p)
		case p.DeletionTimestamp != nil, p.Status.Phase == api.PodSucceeded, p.Status.Phase == api.PodFailed:
		default:
			pending = append(pending, p)
		}
	}
	var plan Plan
	if len(pending) == 0 {
		return plan
	}
	slices.SortFunc(pending, comparePending)
	s := NewScheduler(cfg, nodes, bound)
	for _, p := range pending {
		node, ex := s.Schedule(p)
		if node != "" {
			c := p.DeepCopyObject().(*api.Pod)
			c.Spec.NodeName = node
			plan.Update = append(plan.Update, c)
			plan.Events = append(plan.Events, "scheduled "+p.Namespace+"/"+p.Name+" to "+node)
			continue
		}
		if c := unschedulableCopy(p, ex.String(), now); c != nil {
			plan.UpdateStatus = append(plan.UpdateStatus, c)
			plan.Events = append(plan.Events, "cannot schedule "+p.Namespace+"/"+p.Name+": "+ex.String())
		}
	}
	return plan
}

// comparePending orders pods for scheduling: priority (higher first),
// creation time, namespace, name.
func comparePending(a, b *api.Pod) int {
	prio := func(p *api.Pod) int32 {
		if p.Spec.Priority == nil {
			return 0
		}
		return *p.Spec.Priority
	}
	if c := cmp.Compare(prio(b), prio(a)); c != 0 {
		return c
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// unschedulable returns a copy of the pod with PodScheduled=False
// Unschedulable and the message, or nil when the pod already says so.
func unschedulableCopy(p *api.Pod, msg string, now time.Time) *api.Pod {
	cur := api.FindCondition(p.Status.Conditions, api.PodScheduled)
	if cur != nil && cur.Status == api.ConditionFalse && cur.Reason == ReasonUnschedulable && cur.Message == msg {
		return nil
	}
	want := api.Condition{
		Type:               api.PodScheduled,
		Status:             api.ConditionFalse,
		Reason:             ReasonUnschedulable,
		Message:            msg,
		LastProbeTime:      api.NewTime(now),
		LastTransitionTime: api.NewTime(now),
	}
	if cur != nil && cur.Status == api.ConditionFalse {
		want.LastTransitionTime = cur.LastTransitionTime
	}
	c := p.DeepCopyObject().(*api.Pod)
	if i := slices.IndexFunc(c.Status.Conditions, func(x api.Condition) bool { return x.Type == api.PodScheduled }); i >= 0 {
		c.Status.Conditions[i] = want
	} else {
		c.Status.Conditions = append(c.Status.Conditions, want)
	}
	if c.Status.Phase == "" {
		c.Status.Phase = api.PodPending
	}
	return c
}

// BindCreated places pods that a plan is about to create (named and
// defaulted, no spec.nodeName yet) so that they are created bound, as
// Nomad's scheduler creates allocations placed: one write per pod instead
// of a create and then a bind, and no pass of the scheduler in between.
// bound are the pods already placed (stored or bound earlier in the same
// plan); they count against their nodes. Pods go in SchedulePending's
// order; each that fits gets its spec.nodeName set in place, and an event
// says where. One that does not fit is left unbound: the scheduler's next
// pass decides it as any pending pod, unschedulable condition included.
func BindCreated(cfg SchedulerConfig, nodes []*api.Node, bound, created []*api.Pod) (events []string) {
	var pending []*api.Pod
	for _, p := range created {
		if p != nil && p.Spec.NodeName == "" && p.Name != "" {
			pending = append(pending, p)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	slices.SortFunc(pending, comparePending)
	s := NewScheduler(cfg, nodes, bound)
	for _, p := range pending {
		if node, _ := s.Schedule(p); node != "" {
			p.Spec.NodeName = node
			events = append(events, "scheduled "+p.Namespace+"/"+p.Name+" to "+node+" at creation")
		}
	}
	return events
}
