package kubelet

// The node loop: the kubelet of every agent. It drives the host (containerd,
// CNI, volumes, probes) toward the pods the control plane binds to this node,
// one safe step at a time, and reports their status.
//
// Shape (STYLE 6): one goroutine here owns the set of pod workers and feeds
// them — pod changes from the PodSource, runtime events (exit, OOM, resync),
// a periodic runtime listing — and one worker per pod (nodepod.go) decides
// (decidePod, podStatus: pure) and applies. A worker retires once its pod is
// not wanted here and nothing of it is left on the host.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/clock"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/probe"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// Loop runs this node's pods. Create it with New, run it with Run.
type Loop struct {
	cfg     Config
	log     *slog.Logger
	prober  PodProber
	deleter PodDeleter

	seq        atomic.Uint64 // orders listings against workers' own changes
	starts     chan struct{} // a slot per start step running (MaxParallelStarts)
	statuses   chan struct{} // a slot per status write (MaxParallelStatusWrites)
	waiting    atomic.Int64  // status writes waiting for a slot (not those alongside steps)
	relist     chan struct{}
	refreshing atomic.Bool // a volume refresh pass is running

	mu      sync.Mutex
	workers map[string]*podWorker // by pod UID
	owners  map[string]string     // container ID → pod UID
	ctx     context.Context       // Run's, for workers
	wg      sync.WaitGroup
}

// New checks cfg.
func New(cfg Config) (*Loop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Loop{
		cfg:      cfg,
		log:      cfg.Logger,
		prober:   cfg.Prober,
		relist:   make(chan struct{}, 1),
		starts:   make(chan struct{}, cfg.MaxParallelStarts),
		statuses: make(chan struct{}, cfg.MaxParallelStatusWrites),
		workers:  map[string]*podWorker{},
		owners:   map[string]string{},
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("loop", "node")
	if l.prober == nil {
		l.prober = &probe.Prober{Exec: l.execProbe, Dial: cfg.ProbeDial}
	}
	l.deleter = cfg.Deleter
	if d, ok := cfg.Status.(PodDeleter); ok && l.deleter == nil {
		l.deleter = d
	}
	return l, nil
}

func (l *Loop) now() time.Time { return l.cfg.Now() }

// execProbe runs an exec probe through the runtime.
func (l *Loop) execProbe(ctx context.Context, id string, cmd []string) (int, []byte, error) {
	var out limitedBuffer
	out.max = probe.MaxOutput
	code, err := l.cfg.Runtime.Exec(ctx, id, cmd, &out, &out)
	return code, out.buf, err
}

// Resync lists the runtime again and has every worker reconsider its pod
// now (tests with a fake clock call it after moving the clock).
func (l *Loop) Resync() {
	select {
	case l.relist <- struct{}{}:
	default:
	}
}

// Run adopts what the host has, then runs the pods until ctx is done. It
// leaves containers running when it returns: a restarted agent adopts them.
func (l *Loop) Run(ctx context.Context) error {
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
	defer l.wg.Wait()

	events, err := l.cfg.Runtime.Events(ctx)
	if err != nil {
		return fmt.Errorf("node loop: runtime events: %w", err)
	}
	// Adopt: everything the host has becomes a worker, wanted or not.
	for !l.adopt(ctx) {
		if !clock.Sleep(ctx, l.cfg.Retry) {
			return nil
		}
	}
	l.syncPods()

	tick := time.NewTicker(l.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.cfg.Pods.Changes():
			l.syncPods()
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				events = l.reopenEvents(ctx)
				continue
			}
			l.dispatchEvent(ev)
		case <-tick.C:
			l.resync(ctx)
		case <-l.relist:
			l.resync(ctx)
		}
	}
}

// reopenEvents retries the event stream until it opens or ctx is done.
func (l *Loop) reopenEvents(ctx context.Context) <-chan runtime.Event {
	for {
		ch, err := l.cfg.Runtime.Events(ctx)
		if err == nil {
			l.resync(ctx)
			return ch
		}
		l.log.Warn("runtime events", "err", err)
		if !clock.Sleep(ctx, l.cfg.Retry) {
			return nil
		}
	}
}

// adopt lists the runtime, the pod networks and the volume state and makes a
// worker for every pod found. It reports false when the runtime cannot be
// listed (containerd down): nothing is decided blind.
func (l *Loop) adopt(ctx context.Context) bool {
	gen := l.seq.Add(1)
	list, err := l.cfg.Runtime.List(ctx)
	if err != nil {
		l.log.Warn("adopt: runtime list", "err", err)
		return false
	}
	nets, err := l.cfg.Network.List()
	if err != nil {
		l.log.Warn("adopt: network list", "err", err)
	}
	vols, err := l.cfg.Volumes.ListPods()
	if err != nil {
		l.log.Warn("adopt: volume list", "err", err)
	}
	byPod := groupByPod(list)
	l.mu.Lock()
	defer l.mu.Unlock()
	for uid, cs := range byPod {
		w := l.workerLocked(uid, refFromLabels(cs[0].Labels, uid))
		w.offerSnapshot(gen, cs)
		for _, c := range cs {
			l.owners[c.ID] = uid
		}
	}
	for _, ref := range nets {
		w := l.workerLocked(ref.UID, ref)
		w.mu.Lock()
		w.adoptNetwork = true
		w.mu.Unlock()
	}
	for _, uid := range vols {
		w := l.workerLocked(uid, network.PodRef{UID: uid})
		w.mu.Lock()
		w.adoptVolumes = true
		w.mu.Unlock()
	}
	// Workers found here but with no containers still get an (empty)
	// listing, so they know the runtime has nothing for them.
	for uid, w := range l.workers {
		if _, ok := byPod[uid]; !ok {
			w.offerSnapshot(gen, nil)
		}
	}
	l.log.Info("node loop adopted host state", "containers", len(list), "networks", len(nets), "volumes", len(vols))
	return true
}

// resync lists the runtime, hands each worker its pod's containers, rotates
// logs, and makes workers for containers of pods it has no worker for.
func (l *Loop) resync(ctx context.Context) {
	gen := l.seq.Add(1)
	list, err := l.cfg.Runtime.List(ctx)
	if err != nil {
		l.log.Warn("resync: runtime list", "err", err)
		return
	}
	if l.cfg.LogMaxBytes > 0 {
		for _, c := range list {
			if c.State == runtime.StateRunning && c.LogPath != "" {
				if err := runtime.RotateLog(c.LogPath, l.cfg.LogMaxBytes, l.cfg.LogKeep); err != nil {
					l.log.Debug("rotate log", "path", c.LogPath, "err", err)
				}
			}
		}
	}
	byPod := groupByPod(list)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		return
	}
	for uid, cs := range byPod {
		for _, c := range cs {
			l.owners[c.ID] = uid
		}
		l.workerLocked(uid, refFromLabels(cs[0].Labels, uid))
	}
	for uid, w := range l.workers {
		w.offerSnapshot(gen, byPod[uid])
	}
	pods := l.livePods()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.refreshVolumes(pods)
	}()
}

// livePods are the pods of the workers that are not being deleted; the
// caller holds l.mu.
func (l *Loop) livePods() []*api.Pod {
	var out []*api.Pod
	for _, w := range l.workers {
		w.mu.Lock()
		if w.pod != nil && w.pod.DeletionTimestamp == nil {
			out = append(out, w.pod)
		}
		w.mu.Unlock()
	}
	return out
}

// PodPhases counts the pods bound to this node that are not being
// deleted, by their phase as stored (for metrics).
func (l *Loop) PodPhases() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, p := range l.livePods() {
		phase := p.Status.Phase
		if phase == "" {
			phase = api.PodPending // not yet reported
		}
		out[phase]++
	}
	return out
}

// refreshVolumes brings configMap and secret volumes of running pods up to
// date with their objects (atomically, as Kubernetes does; env is not
// changed, it is read once when a container starts). Volumes not set up
// yet are left to the pod's own steps.
func (l *Loop) refreshVolumes(pods []*api.Pod) {
	if !l.refreshing.CompareAndSwap(false, true) {
		return // the previous pass is still running
	}
	defer l.refreshing.Store(false)
	for _, pod := range pods {
		changed, err := l.cfg.Volumes.Refresh(pod, l.cfg.Objects)
		switch {
		case err != nil:
			l.log.Debug("refreshing volumes", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		case changed:
			l.log.Info("volumes updated from their ConfigMaps/Secrets", "pod", pod.Namespace+"/"+pod.Name)
		}
	}
}

// groupByPod groups the containers that carry our pod labels by pod UID.
func groupByPod(list []runtime.Status) map[string][]runtime.Status {
	by := map[string][]runtime.Status{}
	for _, c := range list {
		uid := c.Labels[runtime.LabelPodUID]
		if uid == "" || c.Labels[runtime.LabelContainerName] == "" {
			continue
		}
		if _, ok := attemptOf(c.Labels); !ok {
			continue
		}
		by[uid] = append(by[uid], c)
	}
	return by
}

func refFromLabels(labels map[string]string, uid string) network.PodRef {
	return network.PodRef{Namespace: labels[runtime.LabelPodNamespace], Name: labels[runtime.LabelPodName], UID: uid}
}

// syncPods hands every worker its pod (nil when it is no longer bound here)
// and starts workers for new pods.
func (l *Loop) syncPods() {
	pods, synced := l.cfg.Pods.Pods()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		return
	}
	seen := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName != l.cfg.NodeName || p.UID == "" {
			continue
		}
		seen[p.UID] = true
		w := l.workerLocked(p.UID, network.PodRef{Namespace: p.Namespace, Name: p.Name, UID: p.UID})
		w.setPod(p)
	}
	if !synced {
		return
	}
	for uid, w := range l.workers {
		if !seen[uid] {
			w.setGone()
		}
	}
}

// workerLocked returns the worker of uid, starting one when there is none.
func (l *Loop) workerLocked(uid string, ref network.PodRef) *podWorker {
	if w := l.workers[uid]; w != nil {
		w.mu.Lock()
		if w.ref.Name == "" && ref.Name != "" {
			w.ref = ref
		}
		w.mu.Unlock()
		return w
	}
	w := newPodWorker(l, uid, ref)
	l.workers[uid] = w
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		w.run(l.ctx)
	}()
	return w
}

// retire removes w once its pod is cleaned up and gone from the source;
// false when the source still has it (a terminating pod whose final delete
// the source has not seen yet) or it came back meanwhile.
func (l *Loop) retire(w *podWorker) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pod != nil || w.kicked() {
		return false
	}
	if l.workers[w.uid] == w {
		delete(l.workers, w.uid)
	}
	for id, uid := range l.owners {
		if uid == w.uid {
			delete(l.owners, id)
		}
	}
	return true
}

// own records that container id belongs to pod uid (before it is created,
// so its events find the worker).
func (l *Loop) own(id, uid string) {
	l.mu.Lock()
	l.owners[id] = uid
	l.mu.Unlock()
}

func (l *Loop) disown(id string) {
	l.mu.Lock()
	delete(l.owners, id)
	l.mu.Unlock()
}

// dispatchEvent hands a runtime event to the worker of its container; a
// resync event, or one for a container we do not know, lists again.
func (l *Loop) dispatchEvent(ev runtime.Event) {
	if ev.Type == runtime.EventResync {
		l.Resync()
		return
	}
	l.mu.Lock()
	w := l.workers[l.owners[ev.ID]]
	l.mu.Unlock()
	if w == nil {
		l.Resync()
		return
	}
	w.offerEvent(ev)
}

// worker returns the worker of the pod ns/name that is wanted here (or, if
// none, any worker of that name), for the logs and exec handlers.
func (l *Loop) workerByName(ns, name string) *podWorker {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found *podWorker
	for _, w := range l.workers {
		w.mu.Lock()
		ref, want := w.ref, wanted(w.pod)
		w.mu.Unlock()
		if ref.Namespace == ns && ref.Name == name {
			if want {
				return w
			}
			found = w
		}
	}
	return found
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}
