package kubelet

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/probe"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

func TestNodeLoopStartsPod(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	h.objs.putConfigMap("default", "cfg", map[string]string{"COLOR": "blue", "SIZE": "xl"})
	c := api.Container{Name: "app", Image: "reg/app:1", Args: []string{"--color", "$(COLOR)"},
		Env: []api.EnvVar{
			{Name: "PLAIN", Value: "v"},
			{Name: "COLOR", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "cfg", Key: "COLOR"}}},
			{Name: "MY_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "MY_NODE", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "MY_NAME", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "GREETING", Value: "hi $(MY_NAME) $$(MY_NAME)"},
		},
		EnvFrom:      []api.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &api.LocalObjectReference{Name: "cfg"}}},
		Resources:    api.ResourceRequirements{Limits: api.ResourceList{"memory": "64Mi"}, Requests: api.ResourceList{"cpu": "250m"}},
		VolumeMounts: []api.VolumeMount{{Name: "data", MountPath: "/data"}},
	}
	pod := boundPod("web", "uid-web", c)
	pod.Spec.Volumes = []api.Volume{{Name: "data", EmptyDir: &api.EmptyDirVolumeSource{}}}
	h.start()
	h.pods.Replace([]*api.Pod{pod})

	st := h.waitStatus("web", "Running", running)
	if !ready(st) || st.HostIP != "192.168.5.1" || st.PodIP != "10.9.0.2" || st.StartTime == nil {
		t.Fatalf("status %+v", st)
	}
	cs := st.ContainerStatuses[0]
	if cs.State.Running == nil || !cs.Ready || cs.RestartCount != 0 || !strings.HasPrefix(cs.ContainerID, "containerd://") {
		t.Fatalf("container status %+v", cs)
	}
	if first := h.status.all("web")[0]; first.Phase != api.PodPending {
		t.Errorf("first status written %+v, want Pending", first)
	}
	spec := h.rt.spec(runtime.ContainerID("uid-web", "app", 0))
	wantEnv := []string{"CFG_COLOR=blue", "CFG_SIZE=xl", "PLAIN=v", "COLOR=blue", "MY_IP=10.9.0.2", "MY_NODE=n1", "MY_NAME=web", "GREETING=hi web $(MY_NAME)"}
	if !slices.Equal(spec.Env, wantEnv) {
		t.Errorf("env\n got %q\nwant %q", spec.Env, wantEnv)
	}
	if !slices.Equal(spec.Args, []string{"--color", "blue"}) {
		t.Errorf("args %q", spec.Args)
	}
	if spec.CPUMilli != 250 || spec.MemoryLimitBytes != 64<<20 || spec.NetNSPath != "/run/netns/uid-web" || spec.Hostname != "web" {
		t.Errorf("spec %+v", spec)
	}
	if len(spec.Mounts) != 1 || spec.Mounts[0].Destination != "/data" {
		t.Errorf("mounts %+v", spec.Mounts)
	}
	if spec.Labels[runtime.LabelPodUID] != "uid-web" || spec.Labels[runtime.LabelAttempt] != "0" || spec.Labels[runtime.LabelContainerName] != "app" {
		t.Errorf("labels %v", spec.Labels)
	}
	// Nothing changes: no more writes after a resync.
	n := len(h.status.all("web"))
	h.loop.Resync()
	h.waitFor("resync", func() bool { return len(h.rt.Calls("start")) == 1 })
	// A resync also brings the pod's configMap/secret volumes up to date.
	h.waitFor("a volume refresh", func() bool { return h.vols.refreshes("uid-web") > 0 })
	if got := len(h.status.all("web")); got != n {
		t.Errorf("%d status writes after an idle resync", got-n)
	}
}

func TestNodeLoopMissingConfigMapThenCreated(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	env := api.Container{Name: "app", Image: "reg/app:1", Env: []api.EnvVar{{Name: "K", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "late", Key: "k"}}}}}
	vol := api.Container{Name: "app", Image: "reg/app:1"}
	p1 := boundPod("env", "uid-env", env)
	p2 := boundPod("vol", "uid-vol", vol)
	p2.Spec.Volumes = []api.Volume{{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "late2"}}}
	h.start()
	h.pods.Replace([]*api.Pod{p1, p2})
	for _, name := range []string{"env", "vol"} {
		st := h.waitStatus(name, "CreateContainerConfigError", func(st api.PodStatus) bool {
			return waitingReason(st, 0) == ReasonCreateContainerConfigError
		})
		if st.Phase != api.PodPending || !strings.Contains(st.ContainerStatuses[0].State.Waiting.Message, "late") {
			t.Fatalf("%s: %+v", name, st)
		}
	}
	if n := len(h.rt.Calls("start")); n != 0 {
		t.Fatalf("%d starts before the ConfigMaps exist", n)
	}
	h.objs.putConfigMap("default", "late", map[string]string{"k": "v"})
	h.objs.putConfigMap("default", "late2", map[string]string{"k": "v"})
	h.waitStatus("env", "Running", running)
	h.waitStatus("vol", "Running", running)
}

func TestNodeLoopRestartBackoff(t *testing.T) {
	h := newNodeHarness(t, true, func(c *Config) {
		c.Backoff = DefaultBackoff()
		c.Resync = time.Hour // only the test kicks
	})
	h.start()
	h.pods.Replace([]*api.Pod{boundPod("crash", "uid-c", api.Container{Name: "app", Image: "reg/app:1"})})
	h.waitStatus("crash", "Running", running)

	id0 := runtime.ContainerID("uid-c", "app", 0)
	id1 := runtime.ContainerID("uid-c", "app", 1)
	id2 := runtime.ContainerID("uid-c", "app", 2)
	// First crash: restarted at once.
	h.clock.Advance(time.Second)
	h.rt.exit(id0, 1, false)
	st := h.waitStatus("crash", "restart 1 running", func(st api.PodStatus) bool {
		return st.ContainerStatuses[0].RestartCount == 1 && st.ContainerStatuses[0].State.Running != nil
	})
	if lt := st.ContainerStatuses[0].LastState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != ReasonError {
		t.Fatalf("last state %+v", st.ContainerStatuses[0].LastState)
	}
	// Second crash (OOM): 10 s of back-off, shown as CrashLoopBackOff.
	h.clock.Advance(time.Second)
	h.rt.exit(id1, 137, true)
	st = h.waitStatus("crash", "CrashLoopBackOff", func(st api.PodStatus) bool {
		return waitingReason(st, 0) == ReasonCrashLoopBackOff
	})
	if lt := st.ContainerStatuses[0].LastState.Terminated; lt == nil || lt.Reason != ReasonOOMKilled {
		t.Fatalf("last state %+v", st.ContainerStatuses[0].LastState)
	}
	if st.Phase != api.PodRunning || ready(st) {
		t.Fatalf("pod %s ready=%v", st.Phase, ready(st))
	}
	h.clock.Advance(9 * time.Second)
	h.loop.Resync()
	h.waitFor("resync seen", func() bool { return len(h.rt.Calls("remove")) == 0 && len(h.rt.Calls("create")) == 2 })
	if slices.Contains(h.rt.Calls("create"), "create "+id2) {
		t.Fatal("restarted before the back-off ended")
	}
	h.clock.Advance(time.Second)
	h.loop.Resync()
	st = h.waitStatus("crash", "restart 2 running", func(st api.PodStatus) bool {
		return st.ContainerStatuses[0].RestartCount == 2 && st.ContainerStatuses[0].State.Running != nil
	})
	// The attempt before the previous one is removed; the previous is kept.
	h.waitFor("attempt 0 removed", func() bool { return slices.Contains(h.rt.Calls("remove"), "remove "+id0) })
	if slices.Contains(h.rt.Calls("remove"), "remove "+id1) {
		t.Fatal("the previous attempt was removed")
	}
}

func TestNodeLoopImagePullFailure(t *testing.T) {
	h := newNodeHarness(t, false, func(c *Config) {
		c.Backoff = BackoffConfig{Initial: time.Hour, Max: time.Hour, Reset: time.Hour}
	})
	h.rt.badImages["reg/missing:1"] = true
	h.start()
	h.pods.Replace([]*api.Pod{
		boundPod("bad", "uid-bad", api.Container{Name: "app", Image: "reg/missing:1"}),
		boundPod("good", "uid-good", api.Container{Name: "app", Image: "reg/app:1"}),
	})
	h.waitStatus("good", "Running", running)
	h.waitStatus("bad", "ImagePullBackOff", func(st api.PodStatus) bool { return waitingReason(st, 0) == ReasonImagePullBackOff })
	var reasons []string
	for _, st := range h.status.all("bad") {
		if r := waitingReason(st, 0); len(reasons) == 0 || reasons[len(reasons)-1] != r {
			reasons = append(reasons, r)
		}
	}
	if !slices.Equal(reasons, []string{ReasonContainerCreating, ReasonErrImagePull, ReasonImagePullBackOff}) {
		t.Fatalf("waiting reasons %q", reasons)
	}
	if msg := h.status.all("bad")[len(h.status.all("bad"))-1].ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "not found") {
		t.Errorf("message %q", msg)
	}
	if n := len(h.rt.Calls("pull reg/missing:1")); n != 1 {
		t.Errorf("%d pulls during the back-off", n)
	}
}

func TestNodeLoopDeletion(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	h.start()
	pod := boundPod("del", "uid-del", api.Container{Name: "a", Image: "reg/app:1"}, api.Container{Name: "b", Image: "reg/app:1"})
	g := int64(7)
	pod.Spec.TerminationGracePeriodSeconds = &g
	h.pods.Replace([]*api.Pod{pod})
	h.waitStatus("del", "Running", running)
	// Deletion with a timestamp first (graceful, as the API marks it:
	// now + grace), then gone from the source.
	dp := markDeleted(pod, time.Now(), 7)
	h.pods.Put(dp)
	h.waitFor("containers removed", func() bool { return len(h.rt.byPod("uid-del")) == 0 })
	h.waitFor("sandbox torn down", func() bool { return !h.net.has("uid-del") && !h.vols.has("uid-del") })
	h.rt.mu.Lock()
	for id, g := range h.rt.stops {
		// What is left of the 7 s (the deadline is to the second).
		if g > 7*time.Second || g < 4*time.Second {
			t.Errorf("stop %s with grace %v", id, g)
		}
	}
	n := len(h.rt.stops)
	h.rt.mu.Unlock()
	if n != 2 {
		t.Errorf("%d stops", n)
	}
	h.waitFor("the final delete", func() bool { return len(h.status.deleted()) == 1 })
	if d := h.status.deleted(); d[0] != "del uid-del" {
		t.Errorf("deleted %q", d)
	}
	h.pods.Delete("uid-del")
	h.waitFor("worker retired", func() bool {
		h.loop.mu.Lock()
		defer h.loop.mu.Unlock()
		return len(h.loop.workers) == 0
	})
}

func TestNodeLoopAdoption(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	h.start()
	keep := boundPod("keep", "uid-keep", api.Container{Name: "app", Image: "reg/app:1"})
	moved := boundPod("moved", "uid-moved", api.Container{Name: "app", Image: "reg/app:1"})
	h.pods.Replace([]*api.Pod{keep, moved})
	st := h.waitStatus("keep", "Running", running)
	h.waitStatus("moved", "Running", running)
	ip := st.PodIP
	// An orphan network namespace and volume state of a pod long gone.
	h.net.Setup(t.Context(), networkRef("default", "ghost", "uid-ghost"))
	h.vols.Setup(&api.Pod{ObjectMeta: api.ObjectMeta{UID: "uid-ghost2"}}, h.objs)

	// The agent stops (containers keep running) and a new one starts. Its
	// pods come as in production, from a Follower of a voter's API, and
	// that voter lags: a restarted voter whose replica holds a snapshot
	// older than both pods. Meanwhile the control plane gave "moved" up
	// (forced delete, as node loss does). Only a list that reflects what
	// the leader committed may stop anything.
	h.stop()
	starts := len(h.rt.Calls("start"))
	h.status = newStatusRecorder()
	h.pods = NewPodSet()
	stored := keep.DeepCopyObject().(*api.Pod)
	stored.Status = st
	voter := newLaggingVoter(t)
	voter.committed(createOp(stored), createOp(moved))
	voter.committed(deleteOp("Pod", "default", "moved"))
	h.withConfig(nil)
	h.start()
	// Not synced yet: nothing may be stopped.
	h.loop.Resync()
	h.waitFor("adopted workers", func() bool {
		h.loop.mu.Lock()
		defer h.loop.mu.Unlock()
		return h.loop.workers["uid-keep"] != nil && h.loop.workers["uid-moved"] != nil
	})
	f := voter.follow(t, "n1", h.pods)
	h.waitFor("moved stopped and cleaned", func() bool { return len(h.rt.byPod("uid-moved")) == 0 && !h.net.has("uid-moved") })
	h.waitFor("orphans cleaned", func() bool { return !h.net.has("uid-ghost") && !h.vols.has("uid-ghost2") })
	keepStops := func() {
		t.Helper()
		if stops := h.rt.Calls("stop " + runtime.ContainerID("uid-keep", "app", 0)); len(stops) != 0 {
			t.Fatalf("the kept pod was stopped on a lagging replica's word: %q", stops)
		}
	}
	keepStops()
	if got := len(h.rt.Calls("start")); got != starts {
		t.Fatalf("%d starts after adoption", got-starts)
	}
	if cs := h.rt.byPod("uid-keep"); len(cs) != 1 || cs[0].State != runtime.StateRunning {
		t.Fatalf("kept pod's containers %+v", cs)
	}
	// The adopted pod's status is unchanged (so not rewritten), its IP kept.
	h.loop.Resync()
	h.waitFor("keep's worker has its network", func() bool {
		w := h.loop.workerByName("default", "keep")
		return w != nil && func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.view) == 1 }()
	})
	keepStops()
	if !f.Synced() || voter.barriers.Load() == 0 {
		t.Fatalf("the follower synced (%v) without a linearizable list (%d barriers)", f.Synced(), voter.barriers.Load())
	}
	if all := h.status.all("keep"); len(all) != 0 {
		t.Fatalf("adopted pod's status rewritten: %+v", all)
	}
	if ips, _ := h.net.Setup(t.Context(), networkRef("default", "keep", "uid-keep")); ips.IP.String() != ip {
		t.Fatalf("IP %s, was %s", ips.IP, ip)
	}
	// A pod goes when the control plane says so, through the same source.
	voter.applied(t, deleteOp("Pod", "default", "keep"))
	h.waitFor("keep stopped once deleted", func() bool { return len(h.rt.byPod("uid-keep")) == 0 && !h.net.has("uid-keep") })
}

func TestNodeLoopLivenessRestart(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	c := api.Container{Name: "app", Image: "reg/app:1",
		LivenessProbe:  &api.Probe{Exec: &api.ExecAction{Command: []string{"live"}}, PeriodSeconds: 1, FailureThreshold: 1},
		ReadinessProbe: &api.Probe{Exec: &api.ExecAction{Command: []string{"ready"}}, PeriodSeconds: 1},
	}
	pod := boundPod("live", "uid-live", c)
	g := int64(1)
	pod.Spec.TerminationGracePeriodSeconds = &g
	h.start()
	h.pods.Replace([]*api.Pod{pod})
	h.waitStatus("live", "Ready", func(st api.PodStatus) bool { return running(st) && ready(st) })
	h.prober.set(probe.Readiness, true)
	h.waitStatus("live", "not Ready", func(st api.PodStatus) bool { return running(st) && !ready(st) })
	h.prober.set(probe.Readiness, false)
	h.prober.set(probe.Liveness, true)
	h.waitFor("stopped for liveness", func() bool {
		return slices.Contains(h.rt.Calls("stop"), "stop "+runtime.ContainerID("uid-live", "app", 0))
	})
	h.prober.set(probe.Liveness, false)
	h.waitStatus("live", "restarted", func(st api.PodStatus) bool {
		return st.ContainerStatuses[0].RestartCount >= 1 && st.ContainerStatuses[0].State.Running != nil
	})
}

func TestNodeLoopLogsAndExec(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	h.start()
	h.pods.Replace([]*api.Pod{boundPod("web", "uid-web", api.Container{Name: "app", Image: "reg/app:1"})})
	h.waitStatus("web", "Running", running)
	id := runtime.ContainerID("uid-web", "app", 0)
	path := h.rt.spec(id).LogPath
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("hello from app\n"), 0o644)
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/namespaces/{ns}/pods/{name}/log", h.loop.LogHandler())
	mux.Handle("POST /api/v1/namespaces/{ns}/pods/{name}/exec", h.loop.ExecHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(url string) (int, string) {
		resp, err := http.Get(srv.URL + url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/api/v1/namespaces/default/pods/web/log"); code != 200 || body != "hello from app\n" {
		t.Fatalf("log: %d %q", code, body)
	}
	if code, body := get("/api/v1/namespaces/default/pods/web/log?previous=true"); code != 400 || !strings.Contains(body, "previous") {
		t.Fatalf("previous: %d %q", code, body)
	}
	if code, _ := get("/api/v1/namespaces/default/pods/nope/log"); code != 404 {
		t.Fatalf("missing pod: %d", code)
	}
	if code, _ := get("/api/v1/namespaces/default/pods/web/log?container=zzz"); code != 400 {
		t.Fatalf("missing container: %d", code)
	}
	resp, err := http.Post(srv.URL+"/api/v1/namespaces/default/pods/web/exec?command=ls&command=-l", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res ExecResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || res.ExitCode != 3 || res.Stdout != "ran ls -l in app\n" {
		t.Fatalf("exec: %v %+v", err, res)
	}
}

func TestPodSubresource(t *testing.T) {
	for _, tc := range []struct{ path, ns, name string }{
		{"/api/v1/namespaces/default/pods/web/log", "default", "web"},
		{"/api/v1/namespaces/a/pods/b/log/", "a", "b"},
		{"/api/v1/pods/web/log", "", ""},
		{"/api/v1/namespaces/default/services/web/log", "", ""},
	} {
		ns, name, _ := podSubresource(tc.path, "log")
		if ns != tc.ns || name != tc.name {
			t.Errorf("%s: %q %q", tc.path, ns, name)
		}
	}
}

// markDeleted returns a copy of pod as the API marks it when it is deleted
// at now with grace seconds.
func markDeleted(pod *api.Pod, now time.Time, grace int64) *api.Pod {
	dp := pod.DeepCopyObject().(*api.Pod)
	ts := api.NewTime(now.Add(time.Duration(grace) * time.Second))
	dp.DeletionTimestamp, dp.DeletionGracePeriodSeconds = &ts, &grace
	return dp
}

func indexOf(calls []string, s string) int { return slices.Index(calls, s) }

// noteWriter hands every write (a log line) to a function.
type noteWriter func(string)

func (f noteWriter) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }

// A deleted pod: each container's preStop hook (exec, httpGet), then stop,
// then removal and teardown, and the object's final delete only once all
// that is gone; the worker retires when the source drops the pod.
func TestNodeLoopGracefulDeletion(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	h.start()
	web := api.Container{Name: "web", Image: "reg/app:1", Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}},
		Lifecycle: &api.Lifecycle{PreStop: &api.LifecycleHandler{HTTPGet: &api.HTTPGetAction{Path: "/drain", Port: api.IntOrString{IsString: true, StrVal: "http"}}}}}
	side := api.Container{Name: "side", Image: "reg/app:1",
		Lifecycle: &api.Lifecycle{PreStop: &api.LifecycleHandler{Exec: &api.ExecAction{Command: []string{"hook", "drain"}}}}}
	plain := api.Container{Name: "plain", Image: "reg/app:1"}
	pod := boundPod("g", "uid-g", web, side, plain)
	h.pods.Replace([]*api.Pod{pod})
	st := h.waitStatus("g", "Running", running)

	var early []string
	h.status.onDelete = func(p *api.Pod) {
		if h.net.has(p.UID) || h.vols.has(p.UID) || len(h.rt.byPod(p.UID)) > 0 {
			early = append(early, "deleted before the pod was torn down")
		}
		h.rt.note("delete-pod " + p.Name)
	}
	h.pods.Put(markDeleted(pod, time.Now(), 30))
	h.waitFor("the final delete", func() bool { return len(h.status.deleted()) == 1 })
	if len(early) > 0 {
		t.Error(early)
	}
	calls := h.rt.Calls("")
	id := func(c string) string { return runtime.ContainerID("uid-g", c, 0) }
	webHook := "prestop " + id("web") + " GET " + st.PodIP + ":http/drain"
	for _, c := range []string{"web", "side"} {
		hook := "prestop " + id(c)
		if c == "web" {
			hook = webHook
		}
		if h, s := indexOf(calls, hook), indexOf(calls, "stop "+id(c)); h < 0 || s < h {
			t.Errorf("%s: hook at %d, stop at %d:\n%s", c, h, s, strings.Join(calls, "\n"))
		}
	}
	if slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "prestop "+id("plain")) }) {
		t.Error("a container without a hook ran one")
	}
	last := indexOf(calls, "delete-pod g")
	if last < 0 {
		t.Fatalf("no final delete:\n%s", strings.Join(calls, "\n"))
	}
	for _, c := range []string{"web", "side", "plain"} {
		if i := indexOf(calls, "remove "+id(c)); i < 0 || i > last {
			t.Errorf("%s not removed before the delete", c)
		}
	}
	// Until the source drops the pod the worker may pass over it again
	// and repeat a removal (idempotent); nothing else may follow the
	// final delete.
	for _, c := range calls[last+1:] {
		if !strings.HasPrefix(c, "remove ") || indexOf(calls[:last], c) < 0 {
			t.Errorf("%q after the final delete:\n%s", c, strings.Join(calls, "\n"))
		}
	}
	// The source still has the pod a moment: the worker waits for it to go.
	h.loop.Resync()
	h.pods.Delete("uid-g")
	h.waitFor("worker retired", func() bool {
		h.loop.mu.Lock()
		defer h.loop.mu.Unlock()
		return len(h.loop.workers) == 0
	})
	if n := len(h.status.deleted()); n != 1 {
		t.Errorf("%d final deletes", n)
	}
}

// A sleep hook holds the container on the fake clock for its seconds; the
// stop then gets what is left of the grace period.
func TestNodeLoopPreStopSleep(t *testing.T) {
	var h *nodeHarness
	h = newNodeHarness(t, true, func(c *Config) {
		// The hook's log line tells when it began.
		c.Logger = slog.New(slog.NewTextHandler(noteWriter(func(line string) {
			if strings.Contains(line, "preStop") {
				h.rt.note("log " + line)
			}
		}), nil))
	})
	h.start()
	c := api.Container{Name: "app", Image: "reg/app:1", Lifecycle: &api.Lifecycle{PreStop: &api.LifecycleHandler{Sleep: &api.SleepAction{Seconds: 5}}}}
	pod := boundPod("s", "uid-s", c)
	h.pods.Replace([]*api.Pod{pod})
	h.waitStatus("s", "Running", running)
	h.pods.Put(markDeleted(pod, t0, 20))
	h.waitFor("the hook began", func() bool { return len(h.rt.Calls("log ")) == 1 })
	h.clock.Advance(4 * time.Second)
	h.loop.Resync()
	// (A stop at t0+4s would show as a grace of 16s below.)
	if n := len(h.rt.Calls("stop")); n != 0 {
		t.Fatalf("stopped during the preStop sleep: %q", h.rt.Calls("stop"))
	}
	h.clock.Advance(time.Second)
	h.loop.Resync()
	h.waitFor("stopped after the sleep", func() bool { return len(h.rt.Calls("stop")) == 1 })
	h.rt.mu.Lock()
	g := h.rt.stops[runtime.ContainerID("uid-s", "app", 0)]
	h.rt.mu.Unlock()
	if g != 15*time.Second {
		t.Errorf("stopped with grace %v, want the 15s left", g)
	}
	h.waitFor("the final delete", func() bool { return len(h.status.deleted()) == 1 })
}

// A second delete with a shorter grace period cuts a running hook short.
func TestNodeLoopShorterGraceCutsHook(t *testing.T) {
	h := newNodeHarness(t, false, nil)
	h.prober.hookBlocks = true
	h.start()
	c := api.Container{Name: "app", Image: "reg/app:1", Lifecycle: &api.Lifecycle{PreStop: &api.LifecycleHandler{Exec: &api.ExecAction{Command: []string{"hook"}}}}}
	pod := boundPod("h", "uid-h", c)
	h.pods.Replace([]*api.Pod{pod})
	h.waitStatus("h", "Running", running)
	id := runtime.ContainerID("uid-h", "app", 0)
	h.pods.Put(markDeleted(pod, time.Now(), 600))
	h.waitFor("the hook runs", func() bool { return len(h.rt.Calls("prestop "+id)) == 1 })
	h.pods.Put(markDeleted(pod, time.Now(), 1))
	h.waitFor("the hook cut short", func() bool { return len(h.rt.Calls("prestop cut "+id)) == 1 })
	h.waitFor("stopped", func() bool { return len(h.rt.Calls("stop "+id)) == 1 })
	h.rt.mu.Lock()
	g := h.rt.stops[id]
	h.rt.mu.Unlock()
	if g > 2*time.Second {
		t.Errorf("stopped with grace %v after the grace period was shortened to 1s", g)
	}
	h.waitFor("the final delete", func() bool { return len(h.status.deleted()) == 1 })
}
