package kubelet

// The node loop's pure half: given the pod the control plane wants (or nil
// when it no longer wants it here) and what the host has, decide the next
// safe steps. Nothing here does I/O or reads the clock; time comes in as now.
// The worker (nodepod.go) applies the steps and records what happened in the
// observation, then asks again (STYLE 3, 4, 7).

import (
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// Waiting reasons of container statuses, spelled as Kubernetes does.
const (
	ReasonContainerCreating          = "ContainerCreating"
	ReasonPodInitializing            = "PodInitializing"
	ReasonErrImagePull               = "ErrImagePull"
	ReasonImagePullBackOff           = "ImagePullBackOff"
	ReasonErrImageNeverPull          = "ErrImageNeverPull"
	ReasonCrashLoopBackOff           = "CrashLoopBackOff"
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonRunContainerError          = "RunContainerError"
	ReasonCompleted                  = "Completed"
	ReasonError                      = "Error"
	ReasonOOMKilled                  = "OOMKilled"
)

// BackoffConfig is the restart (and image pull) back-off: Initial, doubling
// on every further quick failure up to Max; a container that ran for Reset
// or longer starts over (Kubernetes: 10s, 5m, 10m).
type BackoffConfig struct {
	Initial, Max, Reset time.Duration
}

// DefaultBackoff is Kubernetes' crash-loop back-off.
func DefaultBackoff() BackoffConfig {
	return BackoffConfig{Initial: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}
}

// delay is the wait before the restart that follows `failures` quick
// failures in a row: none for the first, then Initial, 2×Initial, … Max.
func (b BackoffConfig) delay(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := b.Initial
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// stepKind is one kind of host operation.
type stepKind int

const (
	stepSetupNetwork stepKind = iota
	stepSetupVolumes
	stepPull   // EnsureImage for Container's next Attempt
	stepCreate // Create attempt Attempt of Container (resolves env and mounts)
	stepStart
	stepStop // SIGTERM, Grace, SIGKILL
	stepRemove
	stepTeardownVolumes
	stepTeardownNetwork
	stepPreStop   // run Container's preStop hook in attempt ID, within Grace
	stepDeletePod // remove the terminating pod's object for good
)

var stepNames = [...]string{"setup-network", "setup-volumes", "pull", "create", "start", "stop", "remove", "teardown-volumes", "teardown-network", "prestop", "delete-pod"}

func (k stepKind) String() string { return stepNames[k] }

// step is one idempotent host operation. The steps of one plan are
// independent of each other and may run concurrently.
type step struct {
	Kind      stepKind
	Container string
	Attempt   int
	ID        string
	Grace     time.Duration
	// Failures is the container's quick-failure count once this attempt
	// is created (stepCreate of a restart).
	Failures int
}

// key names the step for error bookkeeping: a failed step is not retried
// before its error's Until.
func (s step) key() string {
	switch s.Kind {
	case stepPull, stepCreate, stepStart:
		return s.Kind.String() + "/" + s.Container
	case stepStop, stepRemove, stepPreStop:
		return s.Kind.String() + "/" + s.ID
	}
	return s.Kind.String()
}

// podPlan is what decidePod returns.
type podPlan struct {
	Steps []step
	// WakeAt is when to decide again if nothing else happens (a back-off or
	// retry ends); zero means only on an event.
	WakeAt time.Time
	// Done: the pod is not wanted here and nothing of it is left.
	Done bool
}

func (p *podPlan) wake(at time.Time) {
	if !at.IsZero() && (p.WakeAt.IsZero() || at.Before(p.WakeAt)) {
		p.WakeAt = at
	}
}

// stepError is a failed step, kept until the step succeeds.
type stepError struct {
	Reason, Message string
	At, Until       time.Time // failed at; not retried before Until
	Count           int       // failures in a row
}

// attemptObs is one container (one attempt) as the runtime has it.
type attemptObs struct {
	Attempt    int
	ID         string
	State      runtime.State
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	OOMKilled  bool
	LogPath    string
	// Unhealthy: its liveness or startup probe decided a restart.
	Unhealthy bool
	// touched is the loop sequence of the worker's last own change, so
	// that a runtime listing taken earlier does not undo it.
	touched uint64
}

// containerObs is what the host has of one container name of the pod.
type containerObs struct {
	Attempts  []attemptObs // ascending by Attempt
	PulledFor int          // the attempt whose image was ensured; -1 none
	Failures  int          // quick failures in a row (back-off exponent)
}

func (c *containerObs) latest() *attemptObs {
	if c == nil || len(c.Attempts) == 0 {
		return nil
	}
	return &c.Attempts[len(c.Attempts)-1]
}

func (c *containerObs) previous() *attemptObs {
	if c == nil || len(c.Attempts) < 2 {
		return nil
	}
	return &c.Attempts[len(c.Attempts)-2]
}

// podNet is the pod's network as Setup returned it.
type podNet struct {
	NetNSPath, IP string
}

// preStopObs is the preStop hook of one attempt: begun at Started; Done
// once it returned (a sleep hook is never Done: it lasts its seconds from
// Started).
type preStopObs struct {
	Started time.Time
	Done    bool
}

// podObservation is what the host has of one pod.
type podObservation struct {
	Network        *podNet // set once Setup succeeded (in this agent's life)
	NetworkPresent bool    // a network namespace exists (set up or adopted)
	Volumes        bool    // Setup succeeded
	VolumesPresent bool    // volume state exists (set up or adopted)
	Containers     map[string]*containerObs
	Errors         map[string]stepError  // by step key
	PreStop        map[string]preStopObs // by attempt ID
	// ObjectGone: the pod's object has left the store (the source no
	// longer has it, or this node's final delete succeeded).
	ObjectGone bool
}

func newPodObservation() *podObservation {
	return &podObservation{Containers: map[string]*containerObs{}, Errors: map[string]stepError{}, PreStop: map[string]preStopObs{}}
}

func (o *podObservation) container(name string) *containerObs {
	c := o.Containers[name]
	if c == nil {
		c = &containerObs{PulledFor: -1}
		o.Containers[name] = c
	}
	return c
}

// blocked says whether step s failed and may not be retried yet.
func (o *podObservation) blocked(s step, now time.Time) (time.Time, bool) {
	e, ok := o.Errors[s.key()]
	if ok && now.Before(e.Until) {
		return e.Until, true
	}
	return time.Time{}, false
}

// wanted says whether pod should run here.
func wanted(pod *api.Pod) bool {
	return pod != nil && pod.DeletionTimestamp == nil
}

// gracePeriod is the pod's termination grace period (30 s by default).
func gracePeriod(pod *api.Pod) time.Duration {
	if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return time.Duration(api.DefaultTerminationGracePeriodSeconds) * time.Second
}

// minStopGrace is the least time between SIGTERM and SIGKILL when a pod
// is deleted, even once its preStop hooks used up the grace period (the
// kubelet's minimum too).
const minStopGrace = 2 * time.Second

// termination returns when a pod that is no longer wanted must be stopped
// by, and the grace period it was given: its deletionTimestamp and
// deletionGracePeriodSeconds as the API set them (now + grace; the node's
// clock is taken to agree with the API's), or, for a pod without them,
// the spec's grace period from now.
func termination(pod *api.Pod, now time.Time) (deadline time.Time, grace time.Duration) {
	grace = gracePeriod(pod)
	if pod == nil || pod.DeletionTimestamp == nil {
		return now.Add(grace), grace
	}
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	return pod.DeletionTimestamp.Time, grace
}

// stopGrace is the time between SIGTERM and SIGKILL of a container stopped
// at now: what is left until the deadline, never more than the grace
// period, never less than minStopGrace.
func stopGrace(deadline time.Time, grace time.Duration, now time.Time) time.Duration {
	return max(min(deadline.Sub(now), grace), minStopGrace)
}

// preStopHook returns the preStop hook of an app container of pod, or nil
// (init containers have none).
func preStopHook(pod *api.Pod, name string) *api.LifecycleHandler {
	if pod == nil {
		return nil
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name && c.Lifecycle != nil {
			return c.Lifecycle.PreStop
		}
	}
	return nil
}

// preStopWait says whether the running attempt a must wait for its
// preStop hook before it is stopped, adding the step that runs the hook or
// the wake-up that ends a sleep. A hook runs once, and only while the
// deadline has not passed; a sleep lasts its seconds, cut at the deadline.
func preStopWait(hook *api.LifecycleHandler, name string, a attemptObs, obs *podObservation, deadline, now time.Time, plan *podPlan, add func(step)) bool {
	if hook == nil {
		return false
	}
	ps, begun := obs.PreStop[a.ID]
	switch {
	case !begun && now.Before(deadline):
		add(step{Kind: stepPreStop, Container: name, ID: a.ID, Grace: deadline.Sub(now)})
		return true
	case !begun, ps.Done:
		return false
	case hook.Sleep != nil:
		until := ps.Started.Add(time.Duration(hook.Sleep.Seconds) * time.Second)
		if until.After(deadline) {
			until = deadline
		}
		if now.Before(until) {
			plan.wake(until)
			return true
		}
	}
	return false
}

// restartVerdict says what becomes of a container whose latest attempt exited.
type restartVerdict struct {
	Restart  bool      // the policy restarts it
	At       time.Time // not before (back-off)
	Failures int       // the quick-failure count after the restart
	Backoff  time.Duration
}

// restartAfterExit applies the restart policy and the back-off to the exited
// attempt a of container c. Init containers restart unless the policy is
// Never, and only on failure.
func restartAfterExit(policy string, init bool, c *containerObs, a *attemptObs, b BackoffConfig) restartVerdict {
	var v restartVerdict
	switch {
	case policy == api.RestartNever:
		return v
	case (policy == api.RestartOnFailure || init) && a.ExitCode == 0:
		return v
	}
	v.Restart = true
	failures := c.Failures
	if !a.StartedAt.IsZero() && a.FinishedAt.Sub(a.StartedAt) >= b.Reset {
		failures = 0
	}
	v.Backoff = b.delay(failures)
	v.At = a.FinishedAt.Add(v.Backoff)
	v.Failures = failures + 1
	return v
}

// decidePod returns the next safe steps for pod (nil when the control plane
// no longer wants it here) given what the host has.
func decidePod(pod *api.Pod, obs *podObservation, now time.Time, b BackoffConfig) podPlan {
	var plan podPlan
	if !wanted(pod) {
		decideTeardown(pod, obs, now, &plan)
		return plan
	}
	add := func(s step) {
		if until, ok := obs.blocked(s, now); ok {
			plan.wake(until)
			return
		}
		plan.Steps = append(plan.Steps, s)
	}

	// Containers the spec does not name (left by an older spec): stop and
	// remove.
	named := map[string]bool{}
	for _, c := range pod.Spec.InitContainers {
		named[c.Name] = true
	}
	for _, c := range pod.Spec.Containers {
		named[c.Name] = true
	}
	for _, name := range sortedNames(obs.Containers) {
		if !named[name] {
			for _, a := range obs.Containers[name].Attempts {
				removeAttempt(a, gracePeriod(pod), add)
			}
		}
	}

	// The sandbox: network and volumes, independent of each other.
	if obs.Network == nil {
		add(step{Kind: stepSetupNetwork})
	}
	if !obs.Volumes {
		add(step{Kind: stepSetupVolumes})
	}
	if obs.Network == nil || !obs.Volumes {
		// Meanwhile the images of the first containers to run are pulled:
		// a pull needs no sandbox, and a new pod then waits for the
		// longer of the two instead of both one after the other.
		first := pod.Spec.Containers
		if len(pod.Spec.InitContainers) > 0 {
			first = pod.Spec.InitContainers[:1]
		}
		for _, c := range first {
			if co := obs.container(c.Name); len(co.Attempts) == 0 && co.PulledFor != 0 {
				add(step{Kind: stepPull, Container: c.Name, Attempt: 0})
			}
		}
		return plan
	}

	policy := pod.Spec.RestartPolicy
	if policy == "" {
		policy = api.RestartAlways
	}

	// Init containers, one at a time, each to a successful exit.
	for _, c := range pod.Spec.InitContainers {
		co := obs.container(c.Name)
		pruneAttempts(co, add)
		a := co.latest()
		if a != nil && a.State == runtime.StateExited && a.ExitCode == 0 {
			continue
		}
		decideContainer(c, true, policy, gracePeriod(pod), co, now, b, &plan, add)
		return plan
	}
	for _, c := range pod.Spec.Containers {
		co := obs.container(c.Name)
		pruneAttempts(co, add)
		decideContainer(c, false, policy, gracePeriod(pod), co, now, b, &plan, add)
	}
	return plan
}

// decideContainer moves one container of a wanted pod one step.
func decideContainer(c api.Container, init bool, policy string, grace time.Duration, co *containerObs, now time.Time, b BackoffConfig, plan *podPlan, add func(step)) {
	a := co.latest()
	next := 0
	failures := co.Failures
	if a != nil {
		switch a.State {
		case runtime.StateCreated:
			add(step{Kind: stepStart, Container: c.Name, Attempt: a.Attempt, ID: a.ID})
			return
		case runtime.StateRunning:
			if a.Unhealthy {
				add(step{Kind: stepStop, Container: c.Name, ID: a.ID, Grace: grace})
			}
			return
		case runtime.StateExited:
			v := restartAfterExit(policy, init, co, a, b)
			if !v.Restart {
				return
			}
			if now.Before(v.At) {
				plan.wake(v.At)
				return
			}
			next, failures = a.Attempt+1, v.Failures
		default: // unknown: wait for the next listing
			return
		}
	}
	if co.PulledFor != next {
		add(step{Kind: stepPull, Container: c.Name, Attempt: next})
		return
	}
	add(step{Kind: stepCreate, Container: c.Name, Attempt: next, Failures: failures})
}

// pruneAttempts removes attempts older than the previous one (the previous
// stays for `logs --previous` and lastTerminationState), stopping any that
// still runs.
func pruneAttempts(co *containerObs, add func(step)) {
	for i := 0; i < len(co.Attempts)-2; i++ {
		removeAttempt(co.Attempts[i], 2*time.Second, add)
	}
	// A previous attempt that still runs (adoption after a crash of the
	// agent between a restart's create and the old one's exit) is stopped.
	if p := co.previous(); p != nil && p.State == runtime.StateRunning {
		add(step{Kind: stepStop, ID: p.ID, Grace: 2 * time.Second})
	}
}

// removeAttempt stops a, if it runs, or removes it.
func removeAttempt(a attemptObs, grace time.Duration, add func(step)) {
	if a.State == runtime.StateRunning || a.State == runtime.StateUnknown {
		add(step{Kind: stepStop, ID: a.ID, Grace: grace})
		return
	}
	add(step{Kind: stepRemove, ID: a.ID})
}

// decideTeardown ends a pod that is not wanted here: each running
// container's preStop hook, then SIGTERM and, after what is left of the
// grace period, SIGKILL; then its containers are removed, then its volumes
// and network; and once nothing is left, the pod's object is deleted for
// good (if it is still in the store).
func decideTeardown(pod *api.Pod, obs *podObservation, now time.Time, plan *podPlan) {
	add := func(s step) {
		if until, ok := obs.blocked(s, now); ok {
			plan.wake(until)
			return
		}
		plan.Steps = append(plan.Steps, s)
	}
	deadline, grace := termination(pod, now)
	left := false
	for _, name := range sortedNames(obs.Containers) {
		hook := preStopHook(pod, name)
		for _, a := range obs.Containers[name].Attempts {
			left = true
			switch {
			case a.State == runtime.StateCreated:
				add(step{Kind: stepRemove, ID: a.ID})
			case a.State == runtime.StateRunning && preStopWait(hook, name, a, obs, deadline, now, plan, add):
			default:
				removeAttempt(a, stopGrace(deadline, grace, now), add)
			}
		}
	}
	if left {
		return
	}
	if obs.VolumesPresent || obs.Volumes {
		add(step{Kind: stepTeardownVolumes})
	}
	if obs.NetworkPresent || obs.Network != nil {
		add(step{Kind: stepTeardownNetwork})
	}
	if len(plan.Steps) == 0 && plan.WakeAt.IsZero() && pod != nil && !obs.ObjectGone {
		add(step{Kind: stepDeletePod})
	}
	plan.Done = len(plan.Steps) == 0 && plan.WakeAt.IsZero()
}

func sortedNames(m map[string]*containerObs) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// attemptOf parses the attempt label of a runtime container.
func attemptOf(labels map[string]string) (int, bool) {
	n, err := strconv.Atoi(labels[runtime.LabelAttempt])
	return n, err == nil && n >= 0
}

// sortAttempts keeps Attempts ascending.
func sortAttempts(co *containerObs) {
	slices.SortFunc(co.Attempts, func(a, b attemptObs) int { return a.Attempt - b.Attempt })
}
