package kubelet

// One pod's worker: it owns the pod's observation, asks decidePod for the
// next steps, applies them (concurrently within one plan: they are
// independent), runs due probes, and writes the status when it changed.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/probe"
	"github.com/shoal-dev/shoal/dataplane/runtime"
	"github.com/shoal-dev/shoal/dataplane/volume"
)

// apply runs the plan's steps concurrently, and alongside (if not nil)
// with them, and then records the steps' outcomes. It reports whether any
// failed. alongside may read the observation, not change it: the steps'
// outcomes are recorded once it has returned. Its argument is closed when
// the steps are done.
func (w *podWorker) apply(ctx context.Context, pod *api.Pod, steps []step, now time.Time, alongside func(stepsDone <-chan struct{})) bool {
	results := make([]func(*podObservation) bool, len(steps))
	var wg sync.WaitGroup
	stepsDone := make(chan struct{})
	done := make(chan struct{})
	if alongside != nil {
		go func() {
			defer close(done)
			alongside(stepsDone)
		}()
	} else {
		close(done)
	}
	for i, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			results[i] = w.do(ctx, pod, s, now)
			w.l.log.Debug("pod step done", "pod", w.podRef().String(), "step", s.Kind.String(), "container", s.Container, "took", time.Since(t0))
		}()
	}
	wg.Wait()
	close(stepsDone)
	<-done
	// Events that arrived meanwhile (an exit during a stop) go first.
	w.mu.Lock()
	events := w.events
	w.events = nil
	w.mu.Unlock()
	for _, ev := range events {
		w.applyEvent(ev)
	}
	failed := false
	for _, r := range results {
		if !r(w.obs) {
			failed = true
		}
	}
	return failed
}

// fail records the failure of s at now, not retried before now+retry.
func (w *podWorker) fail(s step, reason string, err error, now time.Time, retry time.Duration) func(*podObservation) bool {
	return func(o *podObservation) bool {
		prev := o.Errors[s.key()]
		o.Errors[s.key()] = stepError{Reason: reason, Message: err.Error(), At: now, Until: now.Add(retry), Count: prev.Count + 1}
		w.l.log.Debug("pod step failed", "pod", w.ref.String(), "step", s.Kind.String(), "container", s.Container, "err", err)
		return false
	}
}

func ok(s step, f func(*podObservation)) func(*podObservation) bool {
	return func(o *podObservation) bool {
		delete(o.Errors, s.key())
		f(o)
		return true
	}
}

func (w *podWorker) podRef() network.PodRef {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ref
}

func (w *podWorker) startContext() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.startCtx
}

func findContainer(pod *api.Pod, name string) (api.Container, bool) {
	for _, cs := range [][]api.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Name == name {
				return c, true
			}
		}
	}
	return api.Container{}, false
}

// startSlot waits for one of the loop's MaxParallelStarts slots for a
// start step; it returns the function that frees the slot, or an error
// when the pod's start is cancelled (it was deleted) or ctx ends first.
func (w *podWorker) startSlot(ctx context.Context) (func(), error) {
	sctx := w.startContext()
	select {
	case w.l.starts <- struct{}{}:
		return func() { <-w.l.starts }, nil
	case <-sctx.Done():
		return nil, sctx.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// boundedStep says whether s waits for a start slot (see
// Config.MaxParallelStarts).
func boundedStep(k stepKind) bool {
	return k == stepSetupNetwork || k == stepCreate || k == stepStart
}

// do performs one step (I/O only) and returns how to record its outcome.
func (w *podWorker) do(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	if boundedStep(s.Kind) {
		free, err := w.startSlot(ctx)
		if err != nil {
			return w.fail(s, "", err, now, w.l.cfg.Retry)
		}
		defer free()
	}
	switch s.Kind {
	case stepSetupNetwork:
		return w.setupNetwork(ctx, pod, s, now)
	case stepSetupVolumes:
		return w.setupVolumes(ctx, pod, s, now)
	case stepPull:
		return w.pull(ctx, pod, s, now)
	case stepCreate:
		return w.create(pod, s, now)
	case stepStart:
		return w.start(ctx, pod, s, now)
	case stepStop:
		return w.stop(ctx, pod, s, now)
	case stepRemove:
		return w.remove(ctx, pod, s, now)
	case stepTeardownVolumes:
		return w.teardownVolumes(ctx, pod, s, now)
	case stepTeardownNetwork:
		return w.teardownNetwork(ctx, pod, s, now)
	case stepPreStop:
		return w.preStop(pod, s, now)
	case stepDeletePod:
		return w.deletePod(ctx, pod, s, now)
	}
	return func(*podObservation) bool { return true }
}

// setupNetwork sets up the pod's network namespace.
func (w *podWorker) setupNetwork(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	retry := l.cfg.Retry
	pn, err := l.cfg.Network.Setup(w.startContext(), w.podRef())
	if err != nil {
		return w.fail(s, ReasonContainerCreating, err, now, retry)
	}
	return ok(s, func(o *podObservation) {
		o.Network = &podNet{NetNSPath: pn.NetNSPath, IP: pn.IP.String()}
		o.NetworkPresent = true
	})
}

// setupVolumes prepares the pod's volumes.
func (w *podWorker) setupVolumes(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	retry := l.cfg.Retry
	if err := checkHostPaths(pod, l.cfg.HostPathAllow); err != nil {
		if w.obs.Errors[s.key()].Message != err.Error() { // read-only here: apply runs after every do
			l.log.Warn("refusing a hostPath volume", "pod", w.podRef().String(), "err", err)
		}
		return w.fail(s, ReasonCreateContainerConfigError, err, now, retry)
	}
	err := l.cfg.Volumes.Setup(pod, l.cfg.Objects)
	if err != nil {
		w.event("", api.EventTypeWarning, EventFailedMount, "MountVolume.SetUp failed: %v", err)
		reason := ReasonContainerCreating
		if errors.Is(err, volume.ErrMissingSource) {
			reason = ReasonCreateContainerConfigError
		}
		f := w.fail(s, reason, err, now, retry)
		return func(o *podObservation) bool { o.VolumesPresent = true; return f(o) }
	}
	return ok(s, func(o *podObservation) { o.Volumes, o.VolumesPresent = true, true })
}

// pull makes sure the container's image is present.
func (w *podWorker) pull(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	rt := l.cfg.Runtime
	c, _ := findContainer(pod, s.Container)
	pctx, cancel := context.WithTimeout(w.startContext(), l.cfg.PullTimeout)
	w.event(s.Container, api.EventTypeNormal, EventPulling, "Pulling image %q", c.Image)
	start := time.Now() // for metrics; decisions take now
	_, err := rt.EnsureImage(pctx, c.Image, c.ImagePullPolicy)
	l.cfg.Metrics.ImagePull(time.Since(start), err)
	cancel()
	if err != nil {
		w.event(s.Container, api.EventTypeWarning, EventFailed, "Failed to pull image %q: %v", c.Image, err)
		reason := ReasonErrImagePull
		if errors.Is(err, runtime.ErrImageNeverPull) {
			reason = ReasonErrImageNeverPull
		}
		return func(o *podObservation) bool {
			n := o.Errors[s.key()].Count + 1
			return w.fail(s, reason, err, now, l.cfg.Backoff.delay(n))(o)
		}
	}
	w.event(s.Container, api.EventTypeNormal, EventPulled, "Successfully pulled image %q", c.Image)
	return ok(s, func(o *podObservation) { o.container(s.Container).PulledFor = s.Attempt })
}

// start starts a created attempt.
func (w *podWorker) start(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	rt := l.cfg.Runtime
	retry := l.cfg.Retry
	err := rt.Start(w.startContext(), s.ID)
	switch {
	case err == nil:
		w.event(s.Container, api.EventTypeNormal, EventStarted, "Started container %s", s.Container)
		return ok(s, func(o *podObservation) {
			a := w.findAttempt(s.ID)
			if a == nil {
				return
			}
			if a.State == runtime.StateCreated {
				a.State = runtime.StateRunning
			}
			if a.StartedAt.IsZero() {
				a.StartedAt = now
			}
			a.touched = l.seq.Add(1)
		})
	case errors.Is(err, runtime.ErrExited):
		l.Resync()
		return ok(s, func(*podObservation) {})
	case errors.Is(err, runtime.ErrStart):
		w.event(s.Container, api.EventTypeWarning, EventFailed, "Error: %v", err)
		// A start that cannot succeed (bad executable): the attempt
		// goes, and the next one waits the crash back-off.
		rerr := rt.Remove(ctx, s.ID)
		return func(o *podObservation) bool {
			co := o.container(s.Container)
			if rerr == nil {
				co.Attempts = slices.DeleteFunc(co.Attempts, func(a attemptObs) bool { return a.ID == s.ID })
				l.disown(s.ID)
			}
			co.Failures++
			ck := step{Kind: stepCreate, Container: s.Container}
			return w.fail(ck, ReasonRunContainerError, err, now, l.cfg.Backoff.delay(co.Failures))(o)
		}
	}
	return w.fail(s, "", err, now, retry)
}

// stop stops an attempt within its grace period.
func (w *podWorker) stop(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	rt := l.cfg.Runtime
	retry := l.cfg.Retry
	if name := w.containerOf(s.ID); name != "" {
		w.event(name, api.EventTypeNormal, EventKilling, "Stopping container %s", name)
	}
	if err := rt.Stop(ctx, s.ID, s.Grace); err != nil {
		return w.fail(s, "", err, now, retry)
	}
	l.Resync() // the exit code comes with the listing (or the exit event)
	return ok(s, func(o *podObservation) {
		a := w.findAttempt(s.ID)
		if a != nil && a.State != runtime.StateExited {
			a.State, a.ExitCode, a.FinishedAt = runtime.StateExited, 137, l.now()
			a.touched = l.seq.Add(1)
		}
	})
}

// remove removes an exited attempt.
func (w *podWorker) remove(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	rt := l.cfg.Runtime
	retry := l.cfg.Retry
	if err := rt.Remove(ctx, s.ID); err != nil {
		return w.fail(s, "", err, now, retry)
	}
	l.disown(s.ID)
	return ok(s, func(o *podObservation) {
		for name, co := range o.Containers {
			co.Attempts = slices.DeleteFunc(co.Attempts, func(a attemptObs) bool { return a.ID == s.ID })
			if _, inSpec := findContainer(pod, name); len(co.Attempts) == 0 && (!inSpec || !wanted(pod)) {
				delete(o.Containers, name)
			}
		}
	})
}

// teardownVolumes removes the pod's volumes.
func (w *podWorker) teardownVolumes(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	retry := l.cfg.Retry
	if err := l.cfg.Volumes.Teardown(w.uid); err != nil {
		return w.fail(s, "", err, now, retry)
	}
	if l.cfg.ResolvConf != nil {
		if err := os.RemoveAll(filepath.Join(l.cfg.ResolvDir, w.uid)); err != nil {
			return w.fail(s, "", err, now, retry)
		}
	}
	return ok(s, func(o *podObservation) { o.Volumes, o.VolumesPresent = false, false })
}

// teardownNetwork releases the pod's network namespace.
func (w *podWorker) teardownNetwork(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	retry := l.cfg.Retry
	ref := w.podRef()
	if err := l.cfg.Network.Teardown(ctx, ref); err != nil {
		return w.fail(s, "", err, now, retry)
	}
	return ok(s, func(o *podObservation) { o.Network, o.NetworkPresent = nil, false })
}

// create resolves the container's env and mounts and creates the attempt.
func (w *podWorker) create(pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	c, found := findContainer(pod, s.Container)
	if !found {
		return func(*podObservation) bool { return true }
	}
	var netns, ip string
	if n := w.obs.Network; n != nil { // read-only here: apply runs after every do
		netns, ip = n.NetNSPath, n.IP
	}
	configErr := func(err error) func(*podObservation) bool {
		return w.fail(s, ReasonCreateContainerConfigError, err, now, l.cfg.Retry)
	}
	env, err := containerEnv(pod, c, envSources{Objects: l.cfg.Objects, PodIP: ip, HostIP: l.cfg.HostIP, NodeName: l.cfg.NodeName})
	if err != nil {
		return configErr(err)
	}
	mounts, err := l.cfg.Volumes.Prepare(pod, c, l.cfg.Objects)
	if err != nil {
		if errors.Is(err, volume.ErrMissingSource) {
			return configErr(err)
		}
		return w.fail(s, ReasonCreateContainerError, err, now, l.cfg.Retry)
	}
	if m, ok, err := w.resolvConf(pod); err != nil {
		return w.fail(s, ReasonCreateContainerError, err, now, l.cfg.Retry)
	} else if ok {
		mounts = append(mounts, m)
	}
	spec, err := containerSpecFor(pod, c, s.Attempt, netns, l.cfg.LogDir, env, mounts)
	if err != nil {
		return w.fail(s, ReasonCreateContainerError, err, now, l.cfg.Retry)
	}
	l.own(spec.ID, w.uid)
	if err := l.cfg.Runtime.Create(w.startContext(), spec); err != nil {
		w.event(s.Container, api.EventTypeWarning, EventFailed, "Error: %v", err)
		return w.fail(s, ReasonCreateContainerError, err, now, l.cfg.Retry)
	}
	w.event(s.Container, api.EventTypeNormal, EventCreated, "Created container %s", s.Container)
	return ok(s, func(o *podObservation) {
		co := o.container(s.Container)
		delete(o.Errors, step{Kind: stepPull, Container: s.Container}.key())
		delete(o.Errors, step{Kind: stepStart, Container: s.Container}.key())
		co.Failures = s.Failures
		if slices.ContainsFunc(co.Attempts, func(a attemptObs) bool { return a.ID == spec.ID }) {
			return
		}
		co.Attempts = append(co.Attempts, attemptObs{Attempt: s.Attempt, ID: spec.ID, State: runtime.StateCreated, LogPath: spec.LogPath, touched: l.seq.Add(1)})
		sortAttempts(co)
	})
}

// resolvConf writes the pod's resolv.conf (when the loop has cluster DNS
// and the pod's dnsPolicy is ClusterFirst) and returns its mount.
func (w *podWorker) resolvConf(pod *api.Pod) (volume.Mount, bool, error) {
	l := w.l
	if l.cfg.ResolvConf == nil || (pod.Spec.DNSPolicy != "" && pod.Spec.DNSPolicy != "ClusterFirst") {
		return volume.Mount{}, false, nil
	}
	dir := filepath.Join(l.cfg.ResolvDir, w.uid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return volume.Mount{}, false, err
	}
	path := filepath.Join(dir, "resolv.conf")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, l.cfg.ResolvConf(pod.Namespace), 0o644); err != nil {
		return volume.Mount{}, false, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return volume.Mount{}, false, err
	}
	return volume.Mount{Source: path, Destination: "/etc/resolv.conf", ReadOnly: true}, true, nil
}

// hookContext is the context preStop hooks run in; setPod cancels it when
// a second delete brings the deadline forward.
func (w *podWorker) hookContext() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hookCtx == nil || w.hookCtx.Err() != nil {
		w.hookCtx, w.cancelHooks = context.WithCancel(w.l.ctx)
	}
	return w.hookCtx
}

// preStop runs a container's preStop hook, at most for s.Grace (what is
// left of the pod's grace period). An exec or httpGet hook runs as a
// one-shot probe (exec through the runtime, httpGet to the pod's IP
// through ProbeDial) and blocks the step; a sleep hook only records when
// it began, and decidePod waits its seconds out. A hook that fails is
// logged, and the container is stopped all the same.
func (w *podWorker) preStop(pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	hook := preStopHook(pod, s.Container)
	done := func(finished bool) func(*podObservation) bool {
		return ok(s, func(o *podObservation) { o.PreStop[s.ID] = preStopObs{Started: now, Done: finished} })
	}
	if hook == nil {
		return done(true)
	}
	w.l.log.Info("running preStop hook", "pod", w.ref.String(), "container", s.Container, "within", s.Grace)
	if hook.Sleep != nil {
		return done(false)
	}
	c, _ := findContainer(pod, s.Container)
	target := probe.Target{ContainerID: s.ID, Ports: probe.PortsOf(c)}
	if n := w.obs.Network; n != nil { // read-only here: apply runs after every do
		target.PodIP = n.IP
	}
	pr := &api.Probe{Exec: hook.Exec, HTTPGet: hook.HTTPGet, TimeoutSeconds: int32(max((s.Grace+time.Second-1)/time.Second, 1))}
	ctx, cancel := context.WithTimeout(w.hookContext(), s.Grace)
	defer cancel()
	res := w.l.prober.Run(ctx, pr, target)
	if !res.Success {
		w.l.log.Warn("preStop hook failed; stopping the container anyway", "pod", w.ref.String(), "container", s.Container, "reason", res.Message)
	}
	return done(true)
}

// deletePod removes the object of a pod whose containers, volumes and
// network are gone, for good.
func (w *podWorker) deletePod(ctx context.Context, pod *api.Pod, s step, now time.Time) func(*podObservation) bool {
	l := w.l
	if l.deleter != nil {
		if err := l.deleter.DeletePod(ctx, pod); err != nil {
			return w.fail(s, "", err, now, l.cfg.Retry)
		}
		l.log.Info("pod terminated and deleted", "pod", w.ref.String())
	}
	return ok(s, func(o *podObservation) { o.ObjectGone = true })
}
