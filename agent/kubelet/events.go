package kubelet

import (
	"fmt"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/probe"
)

// Reasons of the node loop's Events, as Kubernetes' kubelet writes them.
const (
	EventPulling     = "Pulling"
	EventPulled      = "Pulled"
	EventFailed      = "Failed"
	EventCreated     = "Created"
	EventStarted     = "Started"
	EventKilling     = "Killing"
	EventBackOff     = "BackOff"
	EventUnhealthy   = "Unhealthy"
	EventFailedMount = "FailedMount"
)

// event records an Event about the worker's pod, about one container of
// it when container is not empty. It never blocks (Config.Events queues).
func (w *podWorker) event(container, typ, reason, format string, a ...any) {
	if w.l.cfg.Events == nil {
		return
	}
	ref := w.podRef()
	r := api.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID}
	if container != "" {
		r.FieldPath = "spec.containers{" + container + "}"
	}
	w.l.cfg.Events.Event(r, typ, reason, fmt.Sprintf(format, a...))
}

// probeEvent records a failed probe as Unhealthy.
func (w *podWorker) probeEvent(r probeResult) {
	if r.result.Success {
		return
	}
	w.event(r.container, api.EventTypeWarning, EventUnhealthy, "%s probe failed: %s", probeName(r.kind), r.result.Message)
}

func probeName(k probe.Kind) string {
	switch k {
	case probe.Liveness:
		return "Liveness"
	case probe.Readiness:
		return "Readiness"
	case probe.Startup:
		return "Startup"
	}
	return fmt.Sprint(k)
}

// backOffEvents records BackOff for each container a new status shows
// waiting out its crash back-off.
func (w *podWorker) backOffEvents(pod *api.Pod, st api.PodStatus) {
	for _, cs := range st.ContainerStatuses {
		if wt := cs.State.Waiting; wt != nil && wt.Reason == ReasonCrashLoopBackOff {
			w.event(cs.Name, api.EventTypeWarning, EventBackOff, "Back-off restarting failed container %s in pod %s_%s(%s)", cs.Name, pod.Name, pod.Namespace, pod.UID)
		}
	}
}

// containerOf names the container of an attempt (a stop step knows only
// the attempt's ID); "" when unknown. Read-only on the observation, as
// the steps' I/O half may be.
func (w *podWorker) containerOf(id string) string {
	for name, co := range w.obs.Containers {
		for _, a := range co.Attempts {
			if a.ID == id {
				return name
			}
		}
	}
	return ""
}
