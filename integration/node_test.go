package integration

// Root test of the node loop on the real dataplane: a private containerd,
// CNI inside a network namespace the test made (PodCIDR 10.244.9.0/24; the
// root namespace is never programmed), volumes under a temp dir, the test
// image from a loopback registry.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/agent/kubelet"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/probe"
	"github.com/shoal-dev/shoal/dataplane/runtime"
	"github.com/shoal-dev/shoal/dataplane/volume"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// nodeEnv is one node's dataplane.
type nodeEnv struct {
	t        *testing.T
	ctrd     *testenv.Containerd
	image    string
	host     *testenv.NetNS
	rt       *runtime.Runtime
	net      *network.Network
	vols     *volume.Manager
	objs     *mapObjects
	logDir   string
	netState string
}

func newNodeEnv(t *testing.T) *nodeEnv {
	testenv.RequireRoot(t)
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("skipped: CNI plugins not installed in /usr/lib/cni (Debian: containernetworking-plugins)")
	}
	e := &nodeEnv{t: t, objs: &mapObjects{cms: map[string]*api.ConfigMap{}}}
	e.host = testenv.NewNetNS(t) // deleted last (cleanups run in reverse)
	e.ctrd = testenv.StartContainerd(t)
	reg := testenv.StartRegistry(t)
	e.image = testenv.TestImage(t, reg)
	dir := t.TempDir()
	e.logDir = filepath.Join(dir, "logs")

	rcfg := runtime.DefaultConfig()
	rcfg.Socket, rcfg.Namespace = e.ctrd.Socket, e.ctrd.Namespace
	rcfg.RuncRoot, rcfg.CgroupParent = e.ctrd.RuncRoot, e.ctrd.CgroupParent
	rcfg.LogDir = e.logDir
	rt, err := runtime.New(context.Background(), rcfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt

	ncfg := network.DefaultConfig()
	ncfg.HostNetNS = e.host.Path
	ncfg.StateDir = filepath.Join(dir, "net")
	e.netState = ncfg.StateDir
	ncfg.PodCIDR, ncfg.ClusterCIDR, ncfg.ServiceCIDR = "10.244.9.0/24", "10.244.0.0/16", "10.96.0.0/16"
	n, err := network.New(ncfg)
	if err != nil {
		t.Fatal(err)
	}
	e.net = n
	t.Cleanup(func() {
		n.Close()
		if err := unix.Unmount(filepath.Join(ncfg.StateDir, "netns"), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount netns dir: %v", err)
		}
	})
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}
	vols, err := volume.New(volume.Config{Root: filepath.Join(dir, "pods"), LocalRoot: filepath.Join(dir, "local"), UseTmpfs: true})
	if err != nil {
		t.Fatal(err)
	}
	e.vols = vols
	// Whatever the test leaves (it failed half-way): containers, pod
	// networks, volumes. Runs before the unmount above and the daemon stop.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if list, err := rt.List(ctx); err == nil {
			for _, c := range list {
				if err := rt.Remove(ctx, c.ID); err != nil {
					t.Errorf("cleanup: remove %s: %v", c.ID, err)
				}
			}
		}
		if pods, err := n.List(); err == nil {
			for _, p := range pods {
				if err := n.Teardown(ctx, p); err != nil {
					t.Errorf("cleanup: teardown %s: %v", p, err)
				}
			}
		}
		if uids, err := vols.ListPods(); err == nil {
			for _, u := range uids {
				vols.Teardown(u)
			}
		}
		rt.Close()
	})
	return e
}

// mapObjects is a volume.Source of ConfigMaps.
type mapObjects struct {
	mu  sync.Mutex
	cms map[string]*api.ConfigMap
}

func (m *mapObjects) ConfigMap(ns, name string) (*api.ConfigMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cm := m.cms[ns+"/"+name]; cm != nil {
		return cm, nil
	}
	return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, volume.ErrNotFound)
}

func (m *mapObjects) Secret(ns, name string) (*api.Secret, error) {
	return nil, fmt.Errorf("secret %s/%s: %w", ns, name, volume.ErrNotFound)
}

// recorder is the StatusWriter: it keeps every status and when it came.
type recorder struct {
	mu       sync.Mutex
	statuses map[string][]api.PodStatus
	running  map[string]time.Time // first Running status, by pod name
}

func newRecorder() *recorder {
	return &recorder{statuses: map[string][]api.PodStatus{}, running: map[string]time.Time{}}
}

func (r *recorder) UpdatePodStatus(ctx context.Context, pod *api.Pod) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses[pod.Name] = append(r.statuses[pod.Name], pod.Status)
	if _, ok := r.running[pod.Name]; !ok && pod.Status.Phase == api.PodRunning {
		r.running[pod.Name] = now
	}
	return nil
}

func (r *recorder) last(name string) (api.PodStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.statuses[name]
	if len(s) == 0 {
		return api.PodStatus{}, false
	}
	return s[len(s)-1], true
}

func (r *recorder) ever(name string, cond func(api.PodStatus) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.statuses[name], cond)
}

// dialIn dials from inside the network namespace at path (the test's host
// namespace, where the pod bridge is), as the agent's prober would from
// the node's own namespace.
func dialIn(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			goruntime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			goruntime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			goruntime.UnlockOSThread()
			return nil, err
		}
		var d net.Dialer
		c, derr := d.DialContext(ctx, network, addr)
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with the goroutine
			// rather than run other code in the wrong namespace.
			return c, derr
		}
		goruntime.UnlockOSThread()
		return c, derr
	}
}

// loop runs a NodeLoop over e until the returned stop is called.
type runningLoop struct {
	l      *kubelet.Loop
	pods   *kubelet.PodSet
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *nodeEnv) startLoop(pods *kubelet.PodSet, tweak func(*kubelet.Config)) *runningLoop {
	cfg := kubelet.TestConfig()
	cfg.NodeName, cfg.HostIP = "node-1", "192.168.77.1"
	cfg.Runtime, cfg.Network, cfg.Volumes, cfg.Objects = e.rt, e.net, e.vols, e.objs
	cfg.LogDir = e.logDir
	cfg.Backoff = kubelet.BackoffConfig{Initial: 500 * time.Millisecond, Max: 2 * time.Second, Reset: time.Minute}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rl := &runningLoop{pods: pods, rec: newRecorder(), done: make(chan struct{})}
	cfg.Pods, cfg.Status = pods, rl.rec
	cfg.Prober = &probe.Prober{Dial: dialIn(e.host.Path), Exec: func(ctx context.Context, id string, cmd []string) (int, []byte, error) {
		var out strings.Builder
		code, err := e.rt.Exec(ctx, id, cmd, &out, &out)
		return code, []byte(out.String()), err
	}}
	if tweak != nil {
		tweak(&cfg)
	}
	l, err := kubelet.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	rl.l = l
	ctx, cancel := context.WithCancel(context.Background())
	rl.cancel = cancel
	go func() {
		defer close(rl.done)
		if err := l.Run(ctx); err != nil {
			e.t.Errorf("node loop: %v", err)
		}
	}()
	e.t.Cleanup(rl.stop)
	return rl
}

func (rl *runningLoop) stop() {
	rl.cancel()
	<-rl.done
}

func (e *nodeEnv) pod(name string, policy string, containers ...api.Container) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name}}
	p.Spec.NodeName = "node-1"
	p.Spec.RestartPolicy = policy
	for i := range containers {
		if containers[i].Image == "" {
			containers[i].Image = e.image
		}
	}
	p.Spec.Containers = containers
	api.SetDefaults(p)
	p.Spec.Containers[0].ImagePullPolicy = api.PullIfNotPresent
	return p
}

func (rl *runningLoop) waitStatus(t *testing.T, name, what string, timeout time.Duration, cond func(api.PodStatus) bool) api.PodStatus {
	t.Helper()
	var st api.PodStatus
	testenv.WaitFor(t, timeout, name+": "+what, func() bool {
		s, ok := rl.rec.last(name)
		st = s
		return ok && cond(s)
	})
	return st
}

func isReady(st api.PodStatus) bool {
	c := api.FindCondition(st.Conditions, api.PodReady)
	return st.Phase == api.PodRunning && c != nil && c.Status == api.ConditionTrue
}

func containersOf(t *testing.T, rt *runtime.Runtime, uid string) []runtime.Status {
	t.Helper()
	list, err := rt.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []runtime.Status
	for _, c := range list {
		if c.Labels[runtime.LabelPodUID] == uid {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func TestNodeLoopRoot(t *testing.T) {
	e := newNodeEnv(t)
	e.objs.cms["default/web-config"] = &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web-config"},
		Data: map[string]string{"greeting": "hello-from-configmap", "mode": "test"}}
	pods := kubelet.NewPodSet()
	rl := e.startLoop(pods, nil)

	web := e.pod("web", api.RestartAlways, api.Container{Name: "web", Args: []string{"print-env", "serve", "--port", "8080"},
		Env: []api.EnvVar{
			{Name: "FOO", Value: "bar"},
			{Name: "MODE", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "web-config", Key: "mode"}}},
			{Name: "MY_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		},
		VolumeMounts:   []api.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}},
		ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/healthz", Port: api.FromInt(8080)}, PeriodSeconds: 1},
		Resources:      api.ResourceRequirements{Limits: api.ResourceList{"memory": "64Mi", "cpu": "500m"}},
	})
	web.Spec.Volumes = []api.Volume{{Name: "cfg", ConfigMap: &api.ConfigMapVolumeSource{Name: "web-config"}}}
	crash := e.pod("crash", api.RestartAlways, api.Container{Name: "c", Args: []string{"exit", "1"}})
	oom := e.pod("oom", api.RestartAlways, api.Container{Name: "c", Args: []string{"alloc", "256", "sleep"},
		Resources: api.ResourceRequirements{Limits: api.ResourceList{"memory": "64Mi"}}})
	pods.Replace([]*api.Pod{web, crash, oom})

	// Running and Ready, with an address from the node's pod CIDR.
	st := rl.waitStatus(t, "web", "Running and Ready", 60*time.Second, isReady)
	ip, err := netip.ParseAddr(st.PodIP)
	if err != nil || !netip.MustParsePrefix("10.244.9.0/24").Contains(ip) || st.HostIP != "192.168.77.1" {
		t.Fatalf("podIP %q hostIP %q", st.PodIP, st.HostIP)
	}
	if rl.rec.ever("web", isReady) && !rl.rec.ever("web", func(s api.PodStatus) bool { return s.Phase == api.PodRunning && !isReady(s) }) {
		t.Logf("note: web was Ready in its first Running status (readiness probe passed before the write)")
	}

	// Logs (print-env ran first) and exec, through the handlers.
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/namespaces/{ns}/pods/{name}/log", rl.l.LogHandler())
	mux.Handle("POST /api/v1/namespaces/{ns}/pods/{name}/exec", rl.l.ExecHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var logs string
	testenv.WaitFor(t, 10*time.Second, "print-env output in the log", func() bool {
		resp, err := http.Get(srv.URL + "/api/v1/namespaces/default/pods/web/log")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		logs = string(b)
		return strings.Contains(logs, "listening on :8080")
	})
	for _, want := range []string{"ENV FOO=bar", "ENV MODE=test", "ENV MY_IP=" + st.PodIP} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	resp, err := http.Post(srv.URL+"/api/v1/namespaces/default/pods/web/exec?command=/app&command=cat&command=/etc/cfg/greeting", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var res kubelet.ExecResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || res.ExitCode != 0 || res.Stdout != "hello-from-configmap" {
		t.Fatalf("exec: %v %+v", err, res)
	}
	resp.Body.Close()

	// A container that exits 1: restarted, then backing off.
	st = rl.waitStatus(t, "crash", "CrashLoopBackOff after a restart", 60*time.Second, func(s api.PodStatus) bool {
		cs := s.ContainerStatuses[0]
		return cs.RestartCount >= 1 && cs.State.Waiting != nil && cs.State.Waiting.Reason == kubelet.ReasonCrashLoopBackOff
	})
	if lt := st.ContainerStatuses[0].LastState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != kubelet.ReasonError {
		t.Fatalf("crash last state %+v", st.ContainerStatuses[0].LastState)
	}
	rl.waitStatus(t, "crash", "restart count grows", 30*time.Second, func(s api.PodStatus) bool { return s.ContainerStatuses[0].RestartCount >= 3 })
	if n := len(containersOf(t, e.rt, "uid-crash")); n > 2 {
		t.Errorf("%d attempts kept, want at most 2 (current and previous)", n)
	}

	// Memory limit: OOM-killed, shown in lastTerminationState.
	st = rl.waitStatus(t, "oom", "OOMKilled", 60*time.Second, func(s api.PodStatus) bool {
		lt := s.ContainerStatuses[0].LastState.Terminated
		return lt != nil && lt.Reason == kubelet.ReasonOOMKilled
	})
	if lt := st.ContainerStatuses[0].LastState.Terminated; lt.ExitCode != 137 {
		t.Errorf("OOM exit code %d", lt.ExitCode)
	}

	// Agent restart: a new loop adopts; the web container is not
	// restarted and keeps its IP.
	before := containersOf(t, e.rt, "uid-web")
	rl.stop()
	stored := web.DeepCopyObject().(*api.Pod)
	stored.Status, _ = rl.rec.last("web")
	// The grace the deletion below uses, set before the pod set holds
	// the object: the loop's workers read it from then on (written later,
	// it raced with them).
	g := int64(5)
	stored.Spec.TerminationGracePeriodSeconds = &g
	pods2 := kubelet.NewPodSet()
	rl2 := e.startLoop(pods2, nil)
	pods2.Replace([]*api.Pod{stored, crash, oom})
	st = rl2.waitStatus(t, "crash", "the new loop reports", 30*time.Second, func(s api.PodStatus) bool { return s.Phase == api.PodRunning })
	resp2, err := http.Post(srv.URL+"/api/v1/namespaces/default/pods/web/exec?command=/app&command=echo&command=x", "", nil)
	if err == nil {
		resp2.Body.Close()
	}
	after := containersOf(t, e.rt, "uid-web")
	if len(before) != 1 || len(after) != 1 || after[0].ID != before[0].ID || after[0].State != runtime.StateRunning || !after[0].StartedAt.Equal(before[0].StartedAt) {
		t.Fatalf("web container not adopted as it was:\nbefore %+v\nafter  %+v", before, after)
	}
	if s, ok := rl2.rec.last("web"); ok && (s.PodIP != stored.Status.PodIP || !isReady(s)) {
		t.Fatalf("adopted web status %+v, had IP %s", s, stored.Status.PodIP)
	}
	if nets, _ := e.net.List(); !slices.Contains(nets, network.PodRef{Namespace: "default", Name: "web", UID: "uid-web"}) {
		t.Fatalf("web's network gone after adoption: %v", nets)
	}

	// Deletion: stopped within the grace, containers, netns, IP and
	// volumes cleaned up.
	start := time.Now()
	pods2.Delete("uid-web")
	testenv.WaitFor(t, 20*time.Second, "web cleaned up", func() bool {
		nets, _ := e.net.List()
		uids, _ := e.vols.ListPods()
		return len(containersOf(t, e.rt, "uid-web")) == 0 &&
			!slices.ContainsFunc(nets, func(p network.PodRef) bool { return p.UID == "uid-web" }) &&
			!slices.Contains(uids, "uid-web")
	})
	t.Logf("web deleted and cleaned up in %v", time.Since(start).Round(time.Millisecond))
	if held := ipamHolds(t, e.netState, stored.Status.PodIP); held {
		t.Fatalf("IP %s still allocated after deletion", stored.Status.PodIP)
	}

	// The rest goes the same way; nothing is left.
	pods2.Replace(nil)
	testenv.WaitFor(t, 30*time.Second, "everything cleaned up", func() bool {
		list, _ := e.rt.List(context.Background())
		nets, _ := e.net.List()
		uids, _ := e.vols.ListPods()
		return len(list) == 0 && len(nets) == 0 && len(uids) == 0
	})
}

// ipamHolds says whether host-local still holds ip under the network state.
func ipamHolds(t *testing.T, state, ip string) bool {
	t.Helper()
	found := false
	filepath.WalkDir(filepath.Join(state, "ipam"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == ip {
			found = true
		}
		return nil
	})
	return found
}

// TestNodeLoopStartLatencyFigure measures pod start latency with the image
// present: from the pod handed to the loop to its Running status written,
// over 50 pods started one after another, against raw `ctr run --rm` of the
// same image in the same run. SHOAL_FIGURES=1 runs it.
func TestNodeLoopStartLatencyFigure(t *testing.T) {
	if os.Getenv("SHOAL_FIGURES") != "1" {
		t.Skip("figure: set SHOAL_FIGURES=1")
	}
	e := newNodeEnv(t)
	pods := kubelet.NewPodSet()
	pods.Replace(nil)
	rl := e.startLoop(pods, nil)
	if err := e.ctrd.CtrPull(e.image); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.EnsureImage(context.Background(), e.image, runtime.PullIfNotPresent); err != nil {
		t.Fatal(err)
	}

	const n = 50
	var lat []time.Duration
	for i := 0; i < n; i++ {
		p := e.pod(fmt.Sprintf("lat-%d", i), api.RestartAlways, api.Container{Name: "c", Args: []string{"sleep"}})
		start := time.Now()
		pods.Put(p)
		testenv.WaitFor(t, 30*time.Second, p.Name+" Running", func() bool {
			rl.rec.mu.Lock()
			defer rl.rec.mu.Unlock()
			_, ok := rl.rec.running[p.Name]
			return ok
		})
		rl.rec.mu.Lock()
		lat = append(lat, rl.rec.running[p.Name].Sub(start))
		rl.rec.mu.Unlock()
	}
	var base []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if out, err := e.ctrd.CtrRun(e.image, fmt.Sprintf("baseline-%d", i), "exit", "0"); err != nil {
			t.Fatalf("ctr run: %v: %s", err, out)
		}
		base = append(base, time.Since(start))
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	p50, p99 := pct(lat, 0.50), pct(lat, 0.99)
	b50, b99 := pct(base, 0.50), pct(base, 0.99)
	t.Logf("pod start latency (handed to the loop → Running status written), %d pods, image present: p50 %v, p99 %v", n, p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	t.Logf("raw `ctr run --rm` of the same image (create, start, exit, delete), %d runs: p50 %v, p99 %v", len(base), b50.Round(time.Millisecond), b99.Round(time.Millisecond))
	t.Logf("ratio p99/baseline p99 %.2f, p50/baseline p50 %.2f (targets: p99 ≤ 1 s and ≤ 2× baseline)", float64(p99)/float64(b99), float64(p50)/float64(b50))
	if p99 > time.Second {
		t.Errorf("p99 %v over the 1 s target", p99)
	}

	pods.Replace(nil)
	testenv.WaitFor(t, 120*time.Second, "all pods cleaned up", func() bool {
		list, _ := e.rt.List(context.Background())
		nets, _ := e.net.List()
		return len(list) == 0 && len(nets) == 0
	})
}
