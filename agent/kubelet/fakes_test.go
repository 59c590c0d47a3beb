package kubelet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/runtime"
	"github.com/shoal-dev/shoal/dataplane/volume"
)

// fakeRuntime is an in-memory container runtime.
type fakeRuntime struct {
	clock func() time.Time

	mu         sync.Mutex
	containers map[string]*runtime.Status
	specs      map[string]runtime.ContainerSpec
	badImages  map[string]bool
	calls      []string
	stops      map[string]time.Duration
	events     chan runtime.Event
	// startGate, when set, holds every Start until it receives from
	// the gate (one receive lets one Start go on) or its ctx ends;
	// inStart and maxInStart count the Starts held at once.
	startGate           chan struct{}
	inStart, maxInStart int
}

func newFakeRuntime(clock func() time.Time) *fakeRuntime {
	return &fakeRuntime{clock: clock, containers: map[string]*runtime.Status{}, specs: map[string]runtime.ContainerSpec{},
		badImages: map[string]bool{}, stops: map[string]time.Duration{}, events: make(chan runtime.Event, 256)}
}

func (f *fakeRuntime) record(s string) { f.calls = append(f.calls, s) }

// note adds something that is not a runtime call (a hook, a delete) to the
// call log, to check the order of everything.
func (f *fakeRuntime) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(s)
}

func (f *fakeRuntime) Calls(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeRuntime) EnsureImage(ctx context.Context, ref, policy string) (runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("pull " + ref)
	if f.badImages[ref] {
		return runtime.Image{}, fmt.Errorf("%w: %s: not found", runtime.ErrImagePull, ref)
	}
	return runtime.Image{Ref: ref}, nil
}

func (f *fakeRuntime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("create " + spec.ID)
	if _, ok := f.containers[spec.ID]; ok {
		return nil
	}
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	f.containers[spec.ID] = &runtime.Status{ID: spec.ID, Labels: labels, Image: spec.Image, State: runtime.StateCreated, LogPath: spec.LogPath, CreatedAt: f.clock()}
	f.specs[spec.ID] = spec
	return nil
}

func (f *fakeRuntime) Start(ctx context.Context, id string) error {
	f.mu.Lock()
	if gate := f.startGate; gate != nil {
		f.inStart++
		f.maxInStart = max(f.maxInStart, f.inStart)
		f.mu.Unlock()
		var err error
		select {
		case <-gate:
		case <-ctx.Done():
			err = ctx.Err()
		}
		f.mu.Lock()
		f.inStart--
		if err != nil {
			f.mu.Unlock()
			return err
		}
	}
	defer f.mu.Unlock()
	f.record("start " + id)
	c := f.containers[id]
	switch {
	case c == nil:
		return runtime.ErrNotFound
	case c.State == runtime.StateExited:
		return runtime.ErrExited
	case c.State == runtime.StateCreated:
		c.State, c.StartedAt = runtime.StateRunning, f.clock()
	}
	return nil
}

// exit makes a running container exit with code, as its process would.
func (f *fakeRuntime) exit(id string, code int, oom bool) {
	f.mu.Lock()
	c := f.containers[id]
	at := f.clock()
	c.State, c.ExitCode, c.FinishedAt, c.OOMKilled = runtime.StateExited, code, at, oom
	f.mu.Unlock()
	if oom {
		f.events <- runtime.Event{ID: id, Type: runtime.EventOOM, At: at}
	}
	f.events <- runtime.Event{ID: id, Type: runtime.EventExit, ExitCode: code, At: at}
}

func (f *fakeRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	f.record("stop " + id)
	f.stops[id] = grace
	c := f.containers[id]
	running := c != nil && c.State == runtime.StateRunning
	f.mu.Unlock()
	if running {
		f.exit(id, 143, false)
	}
	return nil
}

func (f *fakeRuntime) Remove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("remove " + id)
	delete(f.containers, id)
	return nil
}

func (f *fakeRuntime) List(ctx context.Context) ([]runtime.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runtime.Status
	for _, c := range f.containers {
		cp := *c
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeRuntime) Events(ctx context.Context) (<-chan runtime.Event, error) { return f.events, nil }

func (f *fakeRuntime) Exec(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	f.mu.Lock()
	c := f.containers[id]
	f.mu.Unlock()
	if c == nil || c.State != runtime.StateRunning {
		return 0, runtime.ErrNotRunning
	}
	fmt.Fprintf(stdout, "ran %s in %s\n", strings.Join(cmd, " "), c.Labels[runtime.LabelContainerName])
	return 3, nil
}

// running returns the IDs of running containers of pod uid.
func (f *fakeRuntime) byPod(uid string) []runtime.Status {
	all, _ := f.List(context.Background())
	var out []runtime.Status
	for _, c := range all {
		if c.Labels[runtime.LabelPodUID] == uid {
			out = append(out, c)
		}
	}
	return out
}

// starting returns how many Starts the gate holds now, and the most it
// held at once.
func (f *fakeRuntime) starting() (now, most int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inStart, f.maxInStart
}

func (f *fakeRuntime) spec(id string) runtime.ContainerSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.specs[id]
}

// fakeNetwork hands out 10.9.0.N addresses.
type fakeNetwork struct {
	mu   sync.Mutex
	pods map[string]network.PodRef
	ips  map[string]net.IP
	next int
}

func newFakeNetwork() *fakeNetwork {
	return &fakeNetwork{pods: map[string]network.PodRef{}, ips: map[string]net.IP{}, next: 2}
}

func (n *fakeNetwork) Setup(ctx context.Context, pod network.PodRef) (network.PodNetwork, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.ips[pod.UID]; !ok {
		n.ips[pod.UID] = net.IPv4(10, 9, 0, byte(n.next))
		n.next++
	}
	n.pods[pod.UID] = pod
	return network.PodNetwork{NetNSPath: "/run/netns/" + pod.UID, IP: n.ips[pod.UID]}, nil
}

func (n *fakeNetwork) Teardown(ctx context.Context, pod network.PodRef) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pods, pod.UID)
	delete(n.ips, pod.UID)
	return nil
}

func (n *fakeNetwork) List() ([]network.PodRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []network.PodRef
	for _, p := range n.pods {
		out = append(out, p)
	}
	return out, nil
}

func (n *fakeNetwork) has(uid string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.pods[uid]
	return ok
}

// fakeVolumes checks configMap volumes against the objects.
type fakeVolumes struct {
	mu        sync.Mutex
	pods      map[string]bool
	refreshed map[string]int // pod UID → Refresh calls
}

func newFakeVolumes() *fakeVolumes { return &fakeVolumes{pods: map[string]bool{}} }

func (v *fakeVolumes) Setup(pod *api.Pod, src volume.Source) error {
	v.mu.Lock()
	v.pods[pod.UID] = true
	v.mu.Unlock()
	for _, vol := range pod.Spec.Volumes {
		if vol.ConfigMap != nil {
			if _, err := src.ConfigMap(pod.Namespace, vol.ConfigMap.Name); err != nil {
				return fmt.Errorf("%w: configmap %q: %w", volume.ErrMissingSource, vol.ConfigMap.Name, err)
			}
		}
	}
	return nil
}

func (v *fakeVolumes) Prepare(pod *api.Pod, c api.Container, src volume.Source) ([]volume.Mount, error) {
	var out []volume.Mount
	for _, m := range c.VolumeMounts {
		out = append(out, volume.Mount{Source: "/vol/" + pod.UID + "/" + m.Name, Destination: m.MountPath})
	}
	return out, nil
}

func (v *fakeVolumes) Refresh(pod *api.Pod, src volume.Source) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.refreshed == nil {
		v.refreshed = map[string]int{}
	}
	v.refreshed[pod.UID]++
	return false, nil
}

func (v *fakeVolumes) refreshes(uid string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.refreshed[uid]
}

func (v *fakeVolumes) Teardown(uid string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.pods, uid)
	return nil
}

func (v *fakeVolumes) ListPods() ([]string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for u := range v.pods {
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}

func (v *fakeVolumes) has(uid string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pods[uid]
}

// fakeObjects holds ConfigMaps and Secrets.
type fakeObjects struct {
	mu  sync.Mutex
	cms map[string]*api.ConfigMap
	sec map[string]*api.Secret
}

func newFakeObjects() *fakeObjects {
	return &fakeObjects{cms: map[string]*api.ConfigMap{}, sec: map[string]*api.Secret{}}
}

func (o *fakeObjects) ConfigMap(ns, name string) (*api.ConfigMap, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cm := o.cms[ns+"/"+name]; cm != nil {
		return cm, nil
	}
	return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, volume.ErrNotFound)
}

func (o *fakeObjects) Secret(ns, name string) (*api.Secret, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s := o.sec[ns+"/"+name]; s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("secret %s/%s: %w", ns, name, volume.ErrNotFound)
}

func (o *fakeObjects) putConfigMap(ns, name string, data map[string]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cms[ns+"/"+name] = &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// statusRecorder is a StatusWriter (and PodDeleter) that keeps every
// status written and every pod deleted.
type statusRecorder struct {
	mu       sync.Mutex
	writes   map[string][]api.PodStatus // by pod name
	deletes  []string                   // "name uid"
	onWrite  func(name string, st api.PodStatus)
	onDelete func(pod *api.Pod)
}

func (r *statusRecorder) DeletePod(ctx context.Context, pod *api.Pod) error {
	// The callback runs before the delete is recorded, so a test that
	// waits for deleted() sees what the callback noted too.
	r.mu.Lock()
	cb := r.onDelete
	r.mu.Unlock()
	if cb != nil {
		cb(pod)
	}
	r.mu.Lock()
	r.deletes = append(r.deletes, pod.Name+" "+pod.UID)
	r.mu.Unlock()
	return nil
}

func (r *statusRecorder) deleted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.deletes...)
}

func newStatusRecorder() *statusRecorder {
	return &statusRecorder{writes: map[string][]api.PodStatus{}}
}

func (r *statusRecorder) UpdatePodStatus(ctx context.Context, pod *api.Pod) error {
	r.mu.Lock()
	r.writes[pod.Name] = append(r.writes[pod.Name], pod.Status)
	cb := r.onWrite
	r.mu.Unlock()
	if cb != nil {
		cb(pod.Name, pod.Status)
	}
	return nil
}

func (r *statusRecorder) last(name string) (api.PodStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.writes[name]
	if len(w) == 0 {
		return api.PodStatus{}, false
	}
	return w[len(w)-1], true
}

func (r *statusRecorder) all(name string) []api.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]api.PodStatus(nil), r.writes[name]...)
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// nodeHarness is a Loop over fakes.
type nodeHarness struct {
	t      *testing.T
	rt     *fakeRuntime
	net    *fakeNetwork
	vols   *fakeVolumes
	objs   *fakeObjects
	pods   *PodSet
	status *statusRecorder
	prober *fakeProber
	clock  *fakeClock // nil: real time
	loop   *Loop
	cancel context.CancelFunc
	done   chan struct{}
}

func newNodeHarness(t *testing.T, fake bool, tweak func(*Config)) *nodeHarness {
	h := &nodeHarness{t: t, net: newFakeNetwork(), vols: newFakeVolumes(), objs: newFakeObjects(), pods: NewPodSet(), status: newStatusRecorder(), prober: &fakeProber{}}
	now := time.Now
	if fake {
		h.clock = &fakeClock{now: t0}
		now = h.clock.Now
	}
	h.rt = newFakeRuntime(now)
	h.prober.note = h.rt.note
	return h.withConfig(tweak)
}

func (h *nodeHarness) withConfig(tweak func(*Config)) *nodeHarness {
	cfg := TestConfig()
	cfg.NodeName, cfg.HostIP = "n1", "192.168.5.1"
	cfg.Runtime, cfg.Network, cfg.Volumes, cfg.Objects = h.rt, h.net, h.vols, h.objs
	cfg.Pods, cfg.Status, cfg.Prober = h.pods, h.status, h.prober
	cfg.LogDir = h.t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if h.clock != nil {
		cfg.Now = h.clock.Now
	}
	if tweak != nil {
		tweak(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.loop = l
	return h
}

func (h *nodeHarness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.loop.Run(ctx); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	}()
	h.t.Cleanup(h.stop)
}

func (h *nodeHarness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// waitFor polls cond (kicking the loop when the clock is fake) until it
// holds or 10 s pass.
func (h *nodeHarness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	d := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(d) // polling a condition with a deadline, not synchronising on time
		d = min(2*d, 50*time.Millisecond)
	}
}

func (h *nodeHarness) waitStatus(name, what string, cond func(api.PodStatus) bool) api.PodStatus {
	h.t.Helper()
	var st api.PodStatus
	h.waitFor(name+": "+what, func() bool {
		s, ok := h.status.last(name)
		st = s
		return ok && cond(s)
	})
	return st
}

func running(st api.PodStatus) bool { return st.Phase == api.PodRunning && st.PodIP != "" }

func ready(st api.PodStatus) bool {
	c := api.FindCondition(st.Conditions, api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

func waitingReason(st api.PodStatus, i int) string {
	if i < len(st.ContainerStatuses) && st.ContainerStatuses[i].State.Waiting != nil {
		return st.ContainerStatuses[i].State.Waiting.Reason
	}
	return ""
}

func boundPod(name, uid string, containers ...api.Container) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: uid}}
	p.Spec.NodeName = "n1"
	p.Spec.Containers = containers
	api.SetDefaults(p)
	return p
}

func networkRef(ns, name, uid string) network.PodRef {
	return network.PodRef{Namespace: ns, Name: name, UID: uid}
}
