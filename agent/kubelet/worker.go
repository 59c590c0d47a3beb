package kubelet

// One pod's worker: it owns the pod's observation, asks decidePod for the
// next steps, applies them (concurrently within one plan: they are
// independent), runs due probes, and writes the status when it changed.

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/probe"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// maxPasses bounds the decide/apply passes of one sync, so a worker whose
// steps keep succeeding without progress still yields.
const maxPasses = 16

type podSnapshot struct {
	gen        uint64
	containers []runtime.Status
}

type probeResult struct {
	container, id string
	kind          probe.Kind
	at            time.Time
	result        probe.Result
}

// probeRun is the probe state of a container's running attempt.
type probeRun struct {
	id string
	cp *probe.ContainerProbes
	// assumeReady: an adopted container the stored status reported ready
	// stays ready until its first readiness result, so that an agent
	// restart does not take running pods out of their Services.
	assumeReady bool
}

func (pr *probeRun) view() probeView {
	return probeView{Ready: pr.assumeReady || pr.cp.Ready(), Started: pr.assumeReady || pr.cp.Started()}
}

// reportedReady says whether the stored status shows attempt id of
// container name ready.
func reportedReady(pod *api.Pod, name, id string) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == name && cs.ContainerID == "containerd://"+id {
			return cs.Ready
		}
	}
	return false
}

type podWorker struct {
	l    *Loop
	uid  string
	kick chan struct{}

	mu           sync.Mutex // guards the fields below
	ref          network.PodRef
	pod          *api.Pod // wanted pod; nil when not (yet) known or gone
	last         *api.Pod // the last pod seen, for the grace period after it is gone
	known        bool     // the source has said whether the pod is wanted
	snap         *podSnapshot
	events       []runtime.Event
	probeResults []probeResult
	adoptNetwork bool
	adoptVolumes bool
	cancelStart  context.CancelFunc // cancels pulls and creates when the pod goes
	view         map[string][]attemptObs
	podIP        string    // the pod's address while it has a network ("" else)
	goneAt       time.Time // when the source stopped having the pod
	hookCtx      context.Context
	cancelHooks  context.CancelFunc // cuts running preStop hooks short when the deadline moves earlier

	// Owned by the worker goroutine.
	obs        *podObservation
	probes     map[string]*probeRun
	written    *api.PodStatus
	startCtx   context.Context
	statusWake time.Time
}

func newPodWorker(l *Loop, uid string, ref network.PodRef) *podWorker {
	return &podWorker{
		l: l, uid: uid, ref: ref,
		kick:   make(chan struct{}, 1),
		obs:    newPodObservation(),
		probes: map[string]*probeRun{},
	}
}

func (w *podWorker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// kicked says (under w.mu) whether work is pending.
func (w *podWorker) kicked() bool {
	return len(w.kick) > 0 || w.snap != nil || len(w.events) > 0 || len(w.probeResults) > 0
}

func (w *podWorker) setPod(p *api.Pod) {
	w.mu.Lock()
	changed := w.pod != p || !w.known
	if w.pod == nil && p.DeletionTimestamp == nil {
		w.l.log.Debug("pod bound here", "pod", w.ref.String(), "sinceCreated", w.l.now().Sub(p.CreationTimestamp.Time))
	}
	if old := w.pod; old != nil && old.DeletionTimestamp != nil && p.DeletionTimestamp != nil &&
		p.DeletionTimestamp.Before(old.DeletionTimestamp.Time) && w.cancelHooks != nil {
		// A second delete shortened the grace period: the hooks running
		// against the old deadline stop, and the worker decides again.
		w.cancelHooks()
	}
	w.pod, w.last, w.known = p, p, true
	w.goneAt = time.Time{}
	if p.DeletionTimestamp != nil && w.cancelStart != nil {
		w.cancelStart()
	}
	w.mu.Unlock()
	if changed {
		w.poke()
	}
}

func (w *podWorker) setGone() {
	w.mu.Lock()
	changed := w.pod != nil || !w.known
	w.pod, w.known = nil, true
	if w.goneAt.IsZero() {
		w.goneAt = w.l.now()
	}
	if w.cancelStart != nil {
		w.cancelStart()
	}
	w.mu.Unlock()
	if changed {
		w.poke()
	}
}

func (w *podWorker) offerSnapshot(gen uint64, cs []runtime.Status) {
	w.mu.Lock()
	w.snap = &podSnapshot{gen: gen, containers: cs}
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) offerEvent(ev runtime.Event) {
	w.mu.Lock()
	w.events = append(w.events, ev)
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) offerProbe(r probeResult) {
	w.mu.Lock()
	w.probeResults = append(w.probeResults, r)
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	defer func() {
		w.mu.Lock()
		if w.cancelStart != nil {
			w.cancelStart()
		}
		w.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-timer.C:
		}
		wake, done := w.sync(ctx)
		if done && w.l.retire(w) {
			return
		}
		timer.Stop()
		if !wake.IsZero() {
			d := wake.Sub(w.l.now())
			d = max(d, time.Millisecond)
			d = min(d, w.l.cfg.Resync) // a fake clock may not move
			timer.Reset(d)
		}
	}
}

// take applies what arrived (listing, events, probe results) to the
// observation and returns the pod to decide for: the wanted pod, a
// tombstone of the last one when it is gone, or known=false.
func (w *podWorker) take(now time.Time) (pod *api.Pod, known bool) {
	w.mu.Lock()
	snap, events, results := w.snap, w.events, w.probeResults
	w.snap, w.events, w.probeResults = nil, nil, nil
	pod, known = w.pod, w.known
	if w.adoptNetwork {
		w.obs.NetworkPresent, w.adoptNetwork = true, false
	}
	if w.adoptVolumes {
		w.obs.VolumesPresent, w.adoptVolumes = true, false
	}
	if pod == nil && known {
		// Gone from the source: tear down what is left with the last
		// pod seen (its hooks), by the deadline it had when it was
		// terminating, else within its grace period from when it went.
		t := &api.Pod{}
		if w.last != nil {
			t = w.last.DeepCopyObject().(*api.Pod)
		}
		if t.DeletionTimestamp == nil {
			gone := w.goneAt
			if gone.IsZero() {
				gone = now
			}
			grace := gracePeriod(t)
			ts := api.NewTime(gone.Add(grace))
			secs := int64(grace / time.Second)
			t.DeletionTimestamp, t.DeletionGracePeriodSeconds = &ts, &secs
		}
		pod = t
		w.obs.ObjectGone = true
	}
	if wanted(pod) && (w.startCtx == nil || w.startCtx.Err() != nil) {
		w.startCtx, w.cancelStart = context.WithCancel(w.l.ctx)
	}
	w.mu.Unlock()

	if snap != nil {
		w.applySnapshot(snap)
	}
	for _, ev := range events {
		w.applyEvent(ev)
	}
	for _, r := range results {
		w.applyProbe(r)
	}
	return pod, known
}

// applySnapshot replaces the observed containers with a runtime listing,
// except those the worker changed after the listing began.
func (w *podWorker) applySnapshot(s *podSnapshot) {
	byName := map[string][]attemptObs{}
	for _, c := range s.containers {
		n, _ := attemptOf(c.Labels)
		byName[c.Labels[runtime.LabelContainerName]] = append(byName[c.Labels[runtime.LabelContainerName]], attemptObs{
			Attempt: n, ID: c.ID, State: c.State, ExitCode: c.ExitCode,
			StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, OOMKilled: c.OOMKilled, LogPath: c.LogPath,
		})
	}
	for name := range byName {
		w.obs.container(name)
	}
	for name, co := range w.obs.Containers {
		old := co.Attempts
		var keep []attemptObs
		for _, a := range old {
			if a.touched > s.gen {
				keep = append(keep, a)
			}
		}
		for _, a := range byName[name] {
			if slices.ContainsFunc(keep, func(k attemptObs) bool { return k.ID == a.ID }) {
				continue
			}
			if i := slices.IndexFunc(old, func(o attemptObs) bool { return o.ID == a.ID }); i >= 0 {
				a.Unhealthy = old[i].Unhealthy
				if a.State == runtime.StateExited && old[i].State == runtime.StateExited && a.FinishedAt.IsZero() {
					a.FinishedAt = old[i].FinishedAt
				}
			}
			keep = append(keep, a)
		}
		co.Attempts = keep
		sortAttempts(co)
		// An adopted container was pulled for.
		if a := co.latest(); a != nil && co.PulledFor < a.Attempt {
			co.PulledFor = a.Attempt
		}
	}
}

func (w *podWorker) findAttempt(id string) *attemptObs {
	for _, co := range w.obs.Containers {
		for i := range co.Attempts {
			if co.Attempts[i].ID == id {
				return &co.Attempts[i]
			}
		}
	}
	return nil
}

func (w *podWorker) applyEvent(ev runtime.Event) {
	a := w.findAttempt(ev.ID)
	if a == nil {
		w.l.Resync()
		return
	}
	a.touched = w.l.seq.Add(1)
	switch ev.Type {
	case runtime.EventOOM:
		a.OOMKilled = true
	case runtime.EventExit:
		a.State, a.ExitCode, a.FinishedAt = runtime.StateExited, ev.ExitCode, ev.At
		if a.FinishedAt.IsZero() {
			a.FinishedAt = w.l.now()
		}
	}
}

func (w *podWorker) applyProbe(r probeResult) {
	pr := w.probes[r.container]
	if pr == nil || pr.id != r.id {
		return
	}
	out := pr.cp.Record(r.kind, r.at, r.result)
	w.probeEvent(r)
	if r.kind == probe.Readiness {
		pr.assumeReady = false
	}
	if out.Restart {
		if a := w.findAttempt(r.id); a != nil {
			a.Unhealthy = true
			w.l.log.Info("container failed its probe; restarting", "pod", w.ref.String(), "container", r.container, "probe", r.kind, "reason", out.Message)
		}
	}
}

// sync decides and applies until nothing more can be done now. It returns
// when to come back, and whether the pod is gone and cleaned up.
func (w *podWorker) sync(ctx context.Context) (time.Time, bool) {
	for pass := 0; pass < maxPasses; pass++ {
		if ctx.Err() != nil {
			return time.Time{}, false
		}
		now := w.l.now()
		pod, known := w.take(now)
		if !known {
			return time.Time{}, false
		}
		probeDue := w.runProbes(ctx, pod, now)
		plan := decidePod(pod, w.obs, now, w.l.cfg.Backoff)
		if terminalPhase(pod) {
			plan = podPlan{}
		}
		w.publishView()
		// The status is written when the steps run out (or one fails); a
		// pod new to the node is also reported Pending at once, while its
		// steps run (a write to the control plane is a round trip the
		// steps need not wait for), unless the steps are done before a
		// slot for the write is free: the status after them is newer.
		var alongside func(<-chan struct{})
		if len(plan.Steps) == 0 {
			w.writeStatus(ctx, pod, now, nil)
		} else if w.written == nil && pod.Status.Phase == "" {
			alongside = func(stepsDone <-chan struct{}) { w.writeStatus(ctx, pod, now, stepsDone) }
		}
		if len(plan.Steps) == 0 {
			wake := plan.WakeAt
			for _, at := range []time.Time{probeDue, w.statusWake} {
				if !at.IsZero() && (wake.IsZero() || at.Before(wake)) {
					wake = at
				}
			}
			return wake, plan.Done
		}
		failed := w.apply(ctx, pod, plan.Steps, now, alongside)
		if failed {
			w.writeStatus(ctx, pod, now, nil)
		}
	}
	return w.l.now().Add(w.l.cfg.Retry), false
}

// terminalPhase: a pod the store already reports Succeeded or Failed is not
// started again (after an agent restart that cleaned up its containers).
func terminalPhase(pod *api.Pod) bool {
	return wanted(pod) && (pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed)
}

// publishView copies the attempts and the pod's IP for the logs, exec,
// attach and port-forward handlers.
func (w *podWorker) publishView() {
	v := make(map[string][]attemptObs, len(w.obs.Containers))
	for name, co := range w.obs.Containers {
		v[name] = slices.Clone(co.Attempts)
	}
	ip := ""
	if w.obs.Network != nil {
		ip = w.obs.Network.IP
	}
	w.mu.Lock()
	w.view, w.podIP = v, ip
	w.mu.Unlock()
}

// runProbes keeps probe state for each running app container, starts the
// probes that are due, and returns when the next one is.
func (w *podWorker) runProbes(ctx context.Context, pod *api.Pod, now time.Time) time.Time {
	running := map[string]bool{}
	var next time.Time
	if wanted(pod) {
		for _, c := range pod.Spec.Containers {
			a := w.obs.Containers[c.Name].latest()
			if a == nil || a.State != runtime.StateRunning || a.Unhealthy {
				continue
			}
			running[c.Name] = true
			pr := w.probes[c.Name]
			if pr == nil || pr.id != a.ID {
				started := a.StartedAt
				if started.IsZero() {
					started = now
				}
				pr = &probeRun{id: a.ID, cp: probe.NewContainerProbes(c, started), assumeReady: reportedReady(pod, c.Name, a.ID)}
				w.probes[c.Name] = pr
			}
			if w.obs.Network == nil {
				continue // adopted, network not looked up yet: no address to probe
			}
			target := probe.Target{ContainerID: a.ID, Ports: probe.PortsOf(c), PodIP: w.obs.Network.IP}
			for {
				kind, p, ok := pr.cp.Next(now)
				if !ok {
					break
				}
				go func(name, id string, kind probe.Kind, p *api.Probe) {
					res := w.l.prober.Run(ctx, p, target)
					w.offerProbe(probeResult{container: name, id: id, kind: kind, at: w.l.now(), result: res})
				}(c.Name, a.ID, kind, p)
			}
			if at, ok := pr.cp.NextDue(); ok && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	for name := range w.probes {
		if !running[name] {
			delete(w.probes, name)
		}
	}
	return next
}

// writeStatus writes the pod's status when it differs from the last one
// written (or, before any, from the stored one).
//
// At most MaxParallelStatusWrites writes of the node are under way; a
// write waits for a slot. What arrived meanwhile (the container started,
// or exited) goes into the status before it is written, so a burst of new
// pods on a busy control plane writes each pod's newest status once
// rather than every status it went through. stepsDone, if not nil, is the
// call alongside the steps (see sync): it reads the observation only, and
// gives up when the steps are done before a slot is free, since the pass
// after them writes a newer status.
func (w *podWorker) writeStatus(ctx context.Context, pod *api.Pod, now time.Time, stepsDone <-chan struct{}) {
	if !wanted(pod) {
		return
	}
	if terminalPhase(pod) && len(w.obs.Containers) == 0 {
		return
	}
	st, prev, same := w.status(pod, now)
	if same {
		w.noWrite(st)
		return
	}
	t0 := time.Now()
	var err error
	switch waited, ok := w.statusSlot(ctx, stepsDone); {
	case !ok && stepsDone != nil && ctx.Err() == nil:
		return // the steps are done first: the pass after them writes
	case !ok:
		err = ctx.Err()
	default:
		if waited && stepsDone == nil && w.arrived(pod) {
			var known bool
			now = w.l.now()
			if pod, known = w.take(now); !known || !wanted(pod) || (terminalPhase(pod) && len(w.obs.Containers) == 0) {
				<-w.l.statuses
				return // gone meanwhile: the next pass decides
			}
			if st, prev, same = w.status(pod, now); same {
				<-w.l.statuses
				w.noWrite(st)
				return
			}
		}
		cp := pod.DeepCopyObject().(*api.Pod)
		cp.Status = st
		err = w.l.cfg.Status.UpdatePodStatus(ctx, cp)
		<-w.l.statuses
	}
	w.l.log.Debug("pod status written", "pod", w.ref.String(), "phase", st.Phase, "took", time.Since(t0), "err", err)
	if err != nil {
		w.l.log.Warn("pod status", "pod", w.ref.String(), "err", err)
		w.statusWake = now.Add(w.l.cfg.Retry)
		return
	}
	if st.Phase == api.PodRunning && prev.Phase != api.PodRunning && !pod.CreationTimestamp.IsZero() {
		w.l.cfg.Metrics.PodStarted(now.Sub(pod.CreationTimestamp.Time))
	}
	w.written = &st
	w.statusWake = time.Time{}
	w.backOffEvents(pod, st)
}

// statusSlot takes a slot for a status write: at once when one is free,
// else once one frees (waited), unless ctx ends or stepsDone (if not nil)
// is closed first (ok false).
func (w *podWorker) statusSlot(ctx context.Context, stepsDone <-chan struct{}) (waited, ok bool) {
	select {
	case w.l.statuses <- struct{}{}:
		return false, true
	default:
	}
	if stepsDone == nil {
		w.l.waiting.Add(1)
		defer w.l.waiting.Add(-1)
	}
	select {
	case w.l.statuses <- struct{}{}:
		return true, true
	case <-stepsDone:
		return true, false
	case <-ctx.Done():
		return true, false
	}
}

// status is the pod's status now, the last one written (or, before any,
// the stored one), and whether the two are the same.
func (w *podWorker) status(pod *api.Pod, now time.Time) (st, prev api.PodStatus, same bool) {
	prev = pod.Status
	if w.written != nil {
		prev = *w.written
	}
	probes := map[string]probeView{}
	for name, pr := range w.probes {
		probes[name] = pr.view()
	}
	st = podStatus(pod, statusInput{Obs: w.obs, Probes: probes, Prev: prev, HostIP: w.l.cfg.HostIP, Now: now, Backoff: w.l.cfg.Backoff})
	a, _ := json.Marshal(st)
	b, _ := json.Marshal(prev)
	return st, prev, bytes.Equal(a, b)
}

// noWrite records that st needs no write.
func (w *podWorker) noWrite(st api.PodStatus) {
	if w.written == nil {
		w.written = &st
	}
	w.statusWake = time.Time{}
}

// arrived reports whether anything came for the worker since pod was
// taken: a runtime listing, events, probe results, or a newer pod.
func (w *podWorker) arrived(pod *api.Pod) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap != nil || len(w.events) > 0 || len(w.probeResults) > 0 || (w.pod != nil && w.pod != pod)
}
