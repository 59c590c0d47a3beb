package apiserver

// Graceful deletion of pods, as Kubernetes does it: deleting a pod that is
// bound to a node does not remove the object. It sets
// metadata.deletionTimestamp (the time by which the pod must be gone) and
// metadata.deletionGracePeriodSeconds. Endpoints drop the pod at once; the
// pod's agent runs the preStop hooks, stops the containers within what is
// left of the grace period, and then deletes the object for good with a
// grace period of 0. Everything else is removed at once.

import (
	"time"

	"github.com/shoal-dev/shoal/api"
)

// deleteAction is what one DELETE does to an object.
type deleteAction int

const (
	// deleteNow removes the object from the store.
	deleteNow deleteAction = iota
	// deleteMark stores the returned copy: the pod is now terminating, or
	// terminating sooner than it was.
	deleteMark
	// deleteNoop leaves the object as it is: it is already terminating no
	// later than this request asks.
	deleteNoop
)

// decideDelete says what a DELETE of obj asking for the grace period
// requested (nil: the pod's own) does at now. A pod is removed at once when
// the grace period is 0 (a force delete, or the final delete of its agent),
// when it is bound to no node (nothing runs it) or when it has finished
// (nothing runs any more). A terminating pod asked for a shorter grace
// period gets the earlier deadline; asked again with the same or a longer
// one, it is left as it is.
func decideDelete(obj api.Object, requested *int64, now time.Time) (deleteAction, api.Object) {
	pod, ok := obj.(*api.Pod)
	if !ok {
		return deleteNow, nil
	}
	grace := int64(api.DefaultTerminationGracePeriodSeconds)
	switch {
	case requested != nil:
		grace = *requested
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if grace <= 0 || pod.Spec.NodeName == "" || pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed {
		return deleteNow, nil
	}
	deadline := api.NewTime(now.Add(time.Duration(grace) * time.Second))
	if cur := pod.DeletionTimestamp; cur != nil && !deadline.Before(cur.Time) {
		return deleteNoop, nil
	}
	next := pod.DeepCopyObject().(*api.Pod)
	next.DeletionTimestamp = &deadline
	next.DeletionGracePeriodSeconds = &grace
	return deleteMark, next
}
