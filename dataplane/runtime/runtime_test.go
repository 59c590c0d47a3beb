package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	gort "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/testenv"
	"github.com/vishvananda/netns"
)

// One containerd, one registry and one image for the whole test binary:
// starting a daemon costs about a second, building the image more.
var env struct {
	ctrd  *testenv.Containerd
	reg   *testenv.Registry
	image string
	err   error // why the root tests cannot run
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		env.err = errors.New("skipping: needs root (containerd, network namespaces, cgroups); run as root, as .ci/run does")
		return m.Run()
	}
	if _, err := os.Stat(testenv.ContainerdBinary); err != nil {
		env.err = fmt.Errorf("skipping: %s not installed", testenv.ContainerdBinary)
		return m.Run()
	}
	c, err := testenv.LaunchContainerd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start containerd:", err)
		return 1
	}
	defer c.Stop()
	reg := testenv.NewRegistry()
	defer reg.Close()
	ref, err := testenv.BuildAndPush(reg.Addr(), "shoal/testprog", "v1", testenv.TestProgram)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build test image:", err)
		return 1
	}
	env.ctrd, env.reg, env.image = c, reg, ref
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "containerd log tail:\n%s\n", tail(c.LogPath, 30))
	}
	return code
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newRuntime connects a Runtime to the shared daemon, in the daemon's own
// namespace, runc root and cgroup parent, with the OCI runtime
// SHOAL_TEST_OCI_RUNTIME names (runc, crun; unset = auto).
func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	return newRuntimeWith(t, os.Getenv("SHOAL_TEST_OCI_RUNTIME"))
}

// newRuntimeWith is newRuntime with the OCI runtime oci.
func newRuntimeWith(t *testing.T, oci string) *Runtime {
	t.Helper()
	if env.err != nil {
		t.Skip(env.err.Error())
	}
	cfg := DefaultConfig()
	cfg.Socket = env.ctrd.Socket
	cfg.Namespace = env.ctrd.Namespace
	cfg.RuncRoot = env.ctrd.RuncRoot
	cfg.CgroupParent = env.ctrd.CgroupParent
	cfg.LogDir = t.TempDir()
	cfg.OCIRuntime = oci
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// spec returns a container spec running the test program with args, in a
// fresh network namespace, removed at cleanup.
func spec(t *testing.T, r *Runtime, id string, args ...string) ContainerSpec {
	t.Helper()
	if _, err := r.EnsureImage(ctx(t), env.image, PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	ns := testenv.NewNetNS(t)
	t.Cleanup(func() {
		// Its own connection: the test may have closed r (agent restart).
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cr, err := New(c, r.cfg)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer cr.Close()
		if err := cr.Remove(c, id); err != nil {
			t.Errorf("cleanup remove %s: %v", id, err)
		}
	})
	return ContainerSpec{
		ID:        id,
		Image:     env.image,
		Args:      args,
		NetNSPath: ns.Path,
		LogPath:   ContainerLogPath(r.cfg.LogDir, "default", "p", "uid-"+id, "c", 0),
		Labels:    map[string]string{LabelPodUID: "uid-" + id, LabelContainerName: "c", LabelAttempt: "0"},
	}
}

func statusOf(t *testing.T, r *Runtime, id string) (Status, bool) {
	t.Helper()
	all, err := r.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.ID == id {
			return s, true
		}
	}
	return Status{}, false
}

func waitState(t *testing.T, r *Runtime, id string, want State) Status {
	t.Helper()
	var s Status
	waitFor(t, 30*time.Second, func() bool {
		s, _ = statusOf(t, r, id)
		return s.State == want
	})
	return s
}

func TestPull(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	// A repository of its own per run: with -count=N an image pulled by
	// an earlier run is still in the package's containerd.
	repo := fmt.Sprintf("shoal/pulltest-%d", time.Now().UnixNano())
	ref := testenv.BuildImage(t, env.reg, repo, "v1", testenv.TestProgram)
	before := env.reg.ManifestRequests(repo)
	img, err := r.EnsureImage(c, ref, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.Digest, "sha256:") {
		t.Errorf("digest %q", img.Digest)
	}
	afterFirst := env.reg.ManifestRequests(repo)
	if afterFirst == before {
		t.Fatal("first IfNotPresent did not reach the registry")
	}
	if _, err := r.EnsureImage(c, ref, PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	if got := env.reg.ManifestRequests(repo); got != afterFirst {
		t.Errorf("second IfNotPresent pulled again (%d manifest requests, want %d)", got, afterFirst)
	}
	if _, err := r.EnsureImage(c, ref, PullAlways); err != nil {
		t.Fatal(err)
	}
	if got := env.reg.ManifestRequests(repo); got == afterFirst {
		t.Error("Always did not ask the registry")
	}
	if _, err := r.EnsureImage(c, ref, PullNever); err != nil {
		t.Errorf("Never with the image present: %v", err)
	}

	missing := env.reg.Addr() + "/shoal/pulltest:nope"
	_, err = r.EnsureImage(c, missing, PullNever)
	if !errors.Is(err, ErrImageNeverPull) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Never, missing image: %v", err)
	}
	_, err = r.EnsureImage(c, missing, PullIfNotPresent)
	if !errors.Is(err, ErrImagePull) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing tag: %v", err)
	}
	t.Logf("missing tag: %v", err)

	// A registry that does not answer: a loopback port nobody listens on.
	start := time.Now()
	short, cancel := context.WithTimeout(c, 10*time.Second)
	defer cancel()
	_, err = r.EnsureImage(short, "127.0.0.1:1/shoal/none:v1", PullIfNotPresent)
	if !errors.Is(err, ErrImagePull) || !strings.Contains(err.Error(), "127.0.0.1:1/shoal/none:v1") || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable registry: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("unreachable registry took %v", d)
	}
	t.Logf("unreachable registry after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestLifecycle(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	events, _ := r.Events(c)
	s := spec(t, r, "life", "print-env", "serve", "--port", "8080")
	s.Env = []string{"GREETING=hello world", "PORT=9999"}
	s.Hostname = "life-pod"
	s.CPUMilli = 250
	s.MemoryLimitBytes = 128 << 20
	for i := 0; i < 2; i++ {
		if err := r.Create(c, s); err != nil {
			t.Fatalf("create #%d: %v", i+1, err)
		}
	}
	if st, _ := statusOf(t, r, "life"); st.State != StateCreated || st.Labels[LabelPodUID] != "uid-life" {
		t.Fatalf("after create: %+v", st)
	}
	for i := 0; i < 2; i++ {
		if err := r.Start(c, "life"); err != nil {
			t.Fatalf("start #%d: %v", i+1, err)
		}
	}
	st := waitState(t, r, "life", StateRunning)
	if st.PID == 0 || st.StartedAt.IsZero() {
		t.Errorf("running status: %+v", st)
	}
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(s.LogPath)
		return strings.Contains(string(data), "listening on :8080")
	})
	logData, _ := os.ReadFile(s.LogPath)
	for _, want := range []string{"ARGS print-env serve --port 8080", "ENV GREETING=hello world", "ENV PATH=/usr/local/sbin"} {
		if !strings.Contains(string(logData), want) {
			t.Errorf("log lacks %q:\n%s", want, logData)
		}
	}
	checkConfined(t, s, st)

	start := time.Now()
	for i := 0; i < 2; i++ {
		if err := r.Stop(c, "life", 10*time.Second); err != nil {
			t.Fatalf("stop #%d: %v", i+1, err)
		}
	}
	st = waitState(t, r, "life", StateExited)
	t.Logf("graceful stop took %v", time.Since(start).Round(time.Millisecond))
	if st.ExitCode != 2 || st.FinishedAt.IsZero() || st.OOMKilled {
		t.Errorf("after SIGTERM: %+v (want exit 2: a Go PID 1 on SIGTERM)", st)
	}
	if err := r.Start(c, "life"); !errors.Is(err, ErrExited) {
		t.Errorf("start of an exited container: %v, want ErrExited", err)
	}
	waitEvent(t, events, "life", EventExit, 2)

	for i := 0; i < 2; i++ {
		if err := r.Remove(c, "life"); err != nil {
			t.Fatalf("remove #%d: %v", i+1, err)
		}
	}
	if _, ok := statusOf(t, r, "life"); ok {
		t.Error("container still listed after Remove")
	}
	snaps, err := env.ctrd.Ctr("snapshots", "--snapshotter", "overlayfs", "ls")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(snaps, "life") {
		t.Errorf("snapshot left after Remove:\n%s", snaps)
	}
	if err := r.Stop(c, "life", time.Second); err != nil {
		t.Errorf("stop of a removed container: %v", err)
	}
}

// checkConfined checks that the running container of TestLifecycle is
// confined as its spec says (the pod's network namespace, cgroup limits,
// seccomp, no-new-privileges) and serves HTTP there with its env and
// hostname.
func checkConfined(t *testing.T, s ContainerSpec, st Status) {
	// The container is in the namespace the test made, not the root one.
	cns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", st.PID))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	var want syscall.Stat_t
	if err := syscall.Stat(s.NetNSPath, &want); err != nil {
		t.Fatal(err)
	}
	if cns == self || cns != fmt.Sprintf("net:[%d]", want.Ino) {
		t.Errorf("container netns %s; root %s; pod netns inode %d", cns, self, want.Ino)
	}
	// Cgroup limits were applied under our cgroup parent (checked on
	// cgroup v1, where the files must exist).
	_, v1 := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes")
	limit, err := os.ReadFile("/sys/fs/cgroup/memory" + env.ctrd.CgroupParent + "/life/memory.limit_in_bytes")
	if (v1 == nil && err != nil) || (err == nil && strings.TrimSpace(string(limit)) != fmt.Sprint(128<<20)) {
		t.Errorf("memory.limit_in_bytes = %s (%v)", limit, err)
	}
	quota, err := os.ReadFile("/sys/fs/cgroup/cpu" + env.ctrd.CgroupParent + "/life/cpu.cfs_quota_us")
	if (v1 == nil && err != nil) || (err == nil && strings.TrimSpace(string(quota)) != "25000") {
		t.Errorf("cpu.cfs_quota_us = %s (%v)", quota, err)
	}
	// Seccomp and no-new-privileges are on.
	procStatus, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.PID))
	if !strings.Contains(string(procStatus), "Seccomp:\t2") || !strings.Contains(string(procStatus), "NoNewPrivs:\t1") {
		t.Errorf("container process status lacks seccomp filter / no_new_privs:\n%s", procStatus)
	}
	// The HTTP server answers inside the pod's namespace, with the env.
	var resp string
	waitFor(t, 10*time.Second, func() bool {
		resp, err = httpGetInNetNS(s.NetNSPath, "127.0.0.1:8080", "/env")
		return err == nil
	})
	if !strings.Contains(resp, "GREETING=hello world") {
		t.Errorf("GET /env in the pod: %q", resp)
	}
	if resp, _ := httpGetInNetNS(s.NetNSPath, "127.0.0.1:8080", "/hostname"); !strings.Contains(resp, "life-pod") {
		t.Errorf("hostname: %q", resp)
	}
}

// httpGetInNetNS connects to addr from inside the network namespace at
// nsPath (the socket stays there once made) and returns the HTTP response.
func httpGetInNetNS(nsPath, addr, path string) (string, error) {
	conn, err := dialInNetNS(nsPath, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	data, err := io.ReadAll(conn)
	return string(data), err
}

func dialInNetNS(nsPath, addr string) (net.Conn, error) {
	gort.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		gort.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		gort.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		gort.UnlockOSThread()
		return nil, err
	}
	conn, dialErr := net.DialTimeout("tcp", addr, 2*time.Second)
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with the goroutine.
		return nil, fmt.Errorf("restore netns: %w", err)
	}
	gort.UnlockOSThread()
	return conn, dialErr
}

func waitEvent(t *testing.T, ch <-chan Event, id string, typ EventType, code int) Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("event channel closed")
			}
			if e.ID == id && e.Type == typ {
				if typ == EventExit && e.ExitCode != code {
					t.Errorf("exit event of %s: code %d, want %d", id, e.ExitCode, code)
				}
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event for %s", typ, id)
		}
	}
}

func TestHostNetworkRefused(t *testing.T) {
	r := newRuntime(t)
	err := r.Create(ctx(t), ContainerSpec{ID: "hostnet", Image: env.image})
	if !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("create without netns: %v", err)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	s := spec(t, r, "stubborn", "ignore-term", "echo", "ready", "sleep")
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "stubborn"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(s.LogPath)
		return strings.Contains(string(data), "ready")
	})
	start := time.Now()
	if err := r.Stop(c, "stubborn", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("stop returned after %v, before the grace period", d)
	}
	if st := waitState(t, r, "stubborn", StateExited); st.ExitCode != 137 {
		t.Errorf("exit code %d, want 137 (SIGKILL)", st.ExitCode)
	}
}

func TestOOMKill(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	events, _ := r.Events(c)
	s := spec(t, r, "hungry", "alloc", "256", "sleep")
	s.MemoryLimitBytes = 64 << 20
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "hungry"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "hungry", EventOOM, 0)
	waitEvent(t, events, "hungry", EventExit, 137)
	st, _ := statusOf(t, r, "hungry")
	if st.State != StateExited || st.ExitCode != 137 || !st.OOMKilled {
		t.Errorf("after OOM: %+v", st)
	}
}

func TestExec(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	s := spec(t, r, "execd", "sleep")
	s.Env = []string{"FROM_SPEC=yes"}
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "execd"); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code, err := r.Exec(c, "execd", []string{"/app", "print-env", "echo", "out", "echo-err", "err", "exit", "3"}, &stdout, &stderr)
	if err != nil || code != 3 {
		t.Fatalf("exec: code %d, err %v", code, err)
	}
	if !strings.Contains(stdout.String(), "out\n") || !strings.Contains(stdout.String(), "ENV FROM_SPEC=yes") || stderr.String() != "err\n" {
		t.Errorf("exec output: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	code, err = r.Exec(c, "execd", []string{"/nonexistent"}, nil, nil)
	if err == nil && code == 0 {
		t.Error("exec of a missing binary succeeded")
	}
	t.Logf("exec of a missing binary: code %d, err %v", code, err)
	if _, err := r.Exec(c, "nosuch", []string{"/app"}, nil, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("exec in absent container: %v", err)
	}
}

func TestStartFailureLeavesOnlyTheRecord(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	s := spec(t, r, "broken")
	s.Command = []string{"/nonexistent"}
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	err := r.Start(c, "broken")
	if !errors.Is(err, ErrStart) {
		t.Fatalf("start of a missing executable: %v, want ErrStart", err)
	}
	t.Logf("start failure: %v", err)
	if st, _ := statusOf(t, r, "broken"); st.State != StateCreated {
		t.Errorf("after failed start: %+v", st)
	}
	if out, _ := env.ctrd.Ctr("tasks", "ls"); strings.Contains(out, "broken") {
		t.Errorf("task left behind:\n%s", out)
	}
	if err := r.Remove(c, "broken"); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := env.ctrd.Ctr("snapshots", "ls"); strings.Contains(snaps, "broken") {
		t.Errorf("snapshot left:\n%s", snaps)
	}
}

func TestAdoptionAfterAgentRestart(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	s := spec(t, r, "adopted", "serve")
	s.Labels[LabelPodName] = "web-1"
	s.Labels[LabelPodNamespace] = "default"
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "adopted"); err != nil {
		t.Fatal(err)
	}
	before := waitState(t, r, "adopted", StateRunning)
	r.Close() // the agent goes away

	r2 := newRuntime(t)
	after, ok := statusOf(t, r2, "adopted")
	if !ok || after.State != StateRunning || after.PID != before.PID {
		t.Fatalf("new runtime sees %+v, before %+v", after, before)
	}
	for k, v := range map[string]string{LabelPodUID: "uid-adopted", LabelPodName: "web-1", LabelPodNamespace: "default", LabelContainerName: "c", LabelAttempt: "0", LabelLogPath: s.LogPath} {
		if after.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, after.Labels[k], v)
		}
	}
	// The node loop replays its steps; nothing restarts.
	if err := r2.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(c, "adopted"); err != nil {
		t.Fatal(err)
	}
	if again, _ := statusOf(t, r2, "adopted"); again.PID != before.PID || !again.StartedAt.Equal(before.StartedAt) {
		t.Errorf("container restarted: %+v, before %+v", again, before)
	}
}

func TestContainerdRestart(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	events, _ := r.Events(c)
	s := spec(t, r, "survivor", "sleep")
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "survivor"); err != nil {
		t.Fatal(err)
	}
	before := waitState(t, r, "survivor", StateRunning)
	start := time.Now()
	if err := env.ctrd.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd restart took %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	after, ok := statusOf(t, r, "survivor") // one retry after a reconnect
	if !ok || after.PID != before.PID || after.State != StateRunning {
		t.Fatalf("after containerd restart: %+v", after)
	}
	t.Logf("first List after the restart took %v (reconnects so far: %d)", time.Since(start).Round(time.Millisecond), r.Reconnects())
	waitFor(t, 30*time.Second, func() bool {
		for {
			select {
			case e := <-events:
				if e.Type == EventResync {
					return true
				}
			default:
				return false
			}
		}
	})
	// Events flow again after the resubscription.
	if err := r.Stop(c, "survivor", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, "survivor", EventExit, 2)
}
