package api

// Graceful deletion of pods, as Kubernetes does it: deleting a pod that is
// bound to a node does not remove the object. It sets
// metadata.deletionTimestamp (the time by which the pod must be gone) and
// metadata.deletionGracePeriodSeconds. Endpoints drop the pod at once; the
// pod's agent runs the preStop hooks, stops the containers within what is
// left of the grace period, and then deletes the object for good with a
// grace period of 0. Everything else is removed at once.

import "time"

// DeleteAction is what one DELETE does to an object.
type DeleteAction int

const (
	// DeleteNow removes the object from the store.
	DeleteNow DeleteAction = iota
	// DeleteMark stores the returned copy: the pod is now terminating, or
	// terminating sooner than it was.
	DeleteMark
	// DeleteNoop leaves the object as it is: it is already terminating no
	// later than this request asks.
	DeleteNoop
)

// DecideDelete says what a DELETE of obj (from the API, or a controller) asking for the grace period
// requested (nil: the pod's own) does at now. A pod is removed at once when
// the grace period is 0 (a force delete, or the final delete of its agent),
// when it is bound to no node (nothing runs it) or when it has finished
// (nothing runs any more). A terminating pod asked for a shorter grace
// period gets the earlier deadline; asked again with the same or a longer
// one, it is left as it is.
func DecideDelete(obj Object, requested *int64, now time.Time) (DeleteAction, Object) {
	pod, ok := obj.(*Pod)
	if !ok {
		return DeleteNow, nil
	}
	grace := int64(DefaultTerminationGracePeriodSeconds)
	switch {
	case requested != nil:
		grace = *requested
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if grace <= 0 || pod.Spec.NodeName == "" || pod.Status.Phase == PodSucceeded || pod.Status.Phase == PodFailed {
		return DeleteNow, nil
	}
	deadline := NewTime(now.Add(time.Duration(grace) * time.Second))
	if cur := pod.DeletionTimestamp; cur != nil && !deadline.Before(cur.Time) {
		return DeleteNoop, nil
	}
	next := pod.DeepCopyObject().(*Pod)
	next.DeletionTimestamp = &deadline
	next.DeletionGracePeriodSeconds = &grace
	return DeleteMark, next
}
