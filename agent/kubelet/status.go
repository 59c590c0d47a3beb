package kubelet

// The pod status a node reports, computed from the observation alone (pure:
// time is an input), so that it can be table-tested and written only when
// it changes.

import (
	"fmt"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// Pod condition types and reasons beyond api.PodReady and api.PodScheduled.
const (
	PodInitialized     = "Initialized"
	PodContainersReady = "ContainersReady"

	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonContainersNotReady       = "ContainersNotReady"
	reasonPodCompleted             = "PodCompleted"
)

// probeView is what the probes of a container's running attempt say.
type probeView struct{ Ready, Started bool }

// statusInput is everything podStatus reads besides the pod.
type statusInput struct {
	Obs     *podObservation
	Probes  map[string]probeView // by container name, for running attempts
	Prev    api.PodStatus        // last status written (or the stored one)
	HostIP  string
	Now     time.Time
	Backoff BackoffConfig
}

// podStatus computes the status of a wanted pod.
func podStatus(pod *api.Pod, in statusInput) api.PodStatus {
	now := api.NewTime(in.Now)
	obs := in.Obs
	policy := pod.Spec.RestartPolicy
	if policy == "" {
		policy = api.RestartAlways
	}
	st := api.PodStatus{HostIP: in.HostIP, StartTime: in.Prev.StartTime.DeepCopy()}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	if obs.Network != nil {
		st.PodIP = obs.Network.IP
	}

	// Init containers.
	initialized, initFailed := true, false
	for _, c := range pod.Spec.InitContainers {
		co := obs.Containers[c.Name]
		a := co.latest()
		switch {
		case a != nil && a.State == runtime.StateExited && a.ExitCode == 0:
		case a != nil && a.State == runtime.StateExited && !restartAfterExit(policy, true, co, a, in.Backoff).Restart:
			initialized, initFailed = false, true
		default:
			initialized = false
		}
	}

	// App containers.
	waitingDefault := ReasonContainerCreating
	if !initialized {
		waitingDefault = ReasonPodInitializing
	}
	var (
		unready            []string
		neverRan, finished int
		failed             bool
	)
	for _, c := range pod.Spec.Containers {
		co := obs.Containers[c.Name]
		cs := containerStatus(pod, c, false, policy, co, in, waitingDefault)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
		a := co.latest()
		switch {
		case a == nil || (a.State == runtime.StateCreated && len(co.Attempts) == 1):
			neverRan++
		case a.State == runtime.StateExited && !restartAfterExit(policy, false, co, a, in.Backoff).Restart:
			finished++
			if a.ExitCode != 0 {
				failed = true
			}
		}
	}

	switch {
	case initFailed:
		st.Phase = api.PodFailed
	case !initialized || neverRan > 0:
		st.Phase = api.PodPending
	case finished == len(pod.Spec.Containers) && failed:
		st.Phase = api.PodFailed
	case finished == len(pod.Spec.Containers):
		st.Phase = api.PodSucceeded
	default:
		st.Phase = api.PodRunning
	}

	terminal := st.Phase == api.PodSucceeded || st.Phase == api.PodFailed
	cond := func(typ string, ok bool, reason, msg string) api.Condition {
		c := api.Condition{Type: typ, Status: api.ConditionFalse, Reason: reason, Message: msg}
		if ok {
			c = api.Condition{Type: typ, Status: api.ConditionTrue}
		}
		c.LastTransitionTime = now
		if p := api.FindCondition(in.Prev.Conditions, typ); p != nil && p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
		}
		return c
	}
	initCond := cond(PodInitialized, initialized || terminal && !initFailed, reasonContainersNotInitialized,
		"containers with incomplete status: "+strings.Join(incompleteInits(pod, obs), " "))
	readyReason, readyMsg := reasonContainersNotReady, fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if terminal {
		readyReason, readyMsg = reasonPodCompleted, ""
	}
	allReady := len(unready) == 0 && !terminal
	st.Conditions = []api.Condition{
		initCond,
		cond(api.PodReady, allReady, readyReason, readyMsg),
		cond(PodContainersReady, allReady, readyReason, readyMsg),
		cond(api.PodScheduled, true, "", ""),
	}
	return st
}

func incompleteInits(pod *api.Pod, obs *podObservation) []string {
	var out []string
	for _, c := range pod.Spec.InitContainers {
		a := obs.Containers[c.Name].latest()
		if a == nil || a.State != runtime.StateExited || a.ExitCode != 0 {
			out = append(out, c.Name)
		}
	}
	return out
}

// containerStatus reports one container.
func containerStatus(pod *api.Pod, c api.Container, init bool, policy string, co *containerObs, in statusInput, waitingDefault string) api.ContainerStatus {
	f := false
	cs := api.ContainerStatus{Name: c.Name, Image: c.Image, Started: &f}
	a := co.latest()
	if a == nil {
		cs.State.Waiting = waitingFor(c.Name, in, waitingDefault)
		return cs
	}
	cs.ContainerID = "containerd://" + a.ID
	cs.RestartCount = int32(a.Attempt)
	if p := co.previous(); p != nil && p.State == runtime.StateExited {
		cs.LastState.Terminated = terminated(p)
	}
	switch a.State {
	case runtime.StateRunning:
		cs.State.Running = &api.ContainerStateRunning{StartedAt: api.NewTime(a.StartedAt)}
		pv, ok := in.Probes[c.Name]
		if !ok {
			pv = probeView{Ready: c.ReadinessProbe == nil && c.StartupProbe == nil, Started: c.StartupProbe == nil}
		}
		cs.Ready = pv.Ready
		started := pv.Started
		cs.Started = &started
	case runtime.StateExited:
		v := restartAfterExit(policy, init, co, a, in.Backoff)
		if !v.Restart {
			cs.State.Terminated = terminated(a)
			break
		}
		cs.LastState = api.ContainerState{Terminated: terminated(a)}
		if in.Now.Before(v.At) {
			cs.State.Waiting = &api.ContainerStateWaiting{
				Reason:  ReasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", v.Backoff, c.Name, pod.Name, pod.Namespace, pod.UID),
			}
			break
		}
		cs.State.Waiting = waitingFor(c.Name, in, ReasonContainerCreating)
	case runtime.StateCreated:
		cs.State.Waiting = &api.ContainerStateWaiting{Reason: ReasonContainerCreating}
	default:
		cs.State.Waiting = &api.ContainerStateWaiting{Reason: "ContainerStatusUnknown", Message: "the runtime reports an unknown state"}
	}
	return cs
}

// waitingFor is the waiting state of a container that has no attempt to
// show (or is between attempts): the failure that holds it, if any.
func waitingFor(name string, in statusInput, def string) *api.ContainerStateWaiting {
	errs := in.Obs.Errors
	if e, ok := errs[step{Kind: stepPull, Container: name}.key()]; ok {
		reason := e.Reason
		if reason == ReasonErrImagePull && in.Now.After(e.At) {
			reason = ReasonImagePullBackOff
		}
		return &api.ContainerStateWaiting{Reason: reason, Message: e.Message}
	}
	for _, k := range []string{step{Kind: stepCreate, Container: name}.key(), step{Kind: stepStart, Container: name}.key(), stepSetupVolumes.String()} {
		if e, ok := errs[k]; ok && e.Reason != "" {
			return &api.ContainerStateWaiting{Reason: e.Reason, Message: e.Message}
		}
	}
	return &api.ContainerStateWaiting{Reason: def}
}

func terminated(a *attemptObs) *api.ContainerStateTerminated {
	t := &api.ContainerStateTerminated{
		ExitCode:   int32(a.ExitCode),
		StartedAt:  api.NewTime(a.StartedAt),
		FinishedAt: api.NewTime(a.FinishedAt),
	}
	switch {
	case a.OOMKilled:
		t.Reason = ReasonOOMKilled
	case a.ExitCode == 0:
		t.Reason = ReasonCompleted
	default:
		t.Reason = ReasonError
	}
	if a.StartedAt.IsZero() {
		t.StartedAt = api.Time{}
	}
	if a.FinishedAt.IsZero() {
		t.FinishedAt = api.Time{}
	}
	return t
}
