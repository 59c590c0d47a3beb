package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/testenv"
)

// TestStartThirtyCPU measures what starting a burst of pods costs on a node,
// per OCI runtime: N=30 containers of the test image created and started
// 16 at a time (as the node loop does), until all run, then removed 16 at a
// time. It reports the wall time of each phase and the CPU time of
// containerd, its shims and the OCI runtime (runc or crun and their init),
// and of the containers' cgroups (the runtime's init once in the container's
// cgroup, and the container's own process). Rounds alternate runc and crun
// (ABBA order) on one private containerd, after a warm-up round of each.
//
// It takes about a minute, so it runs only when SHOAL_BENCH_START_ROUNDS
// sets the number of measured rounds per runtime (e.g. 3):
//
//	SHOAL_BENCH_START_ROUNDS=3 go test -count=1 -v -run TestStartThirtyCPU ./dataplane/runtime/
func TestStartThirtyCPU(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("SHOAL_BENCH_START_ROUNDS"))
	if rounds <= 0 {
		t.Skip("set SHOAL_BENCH_START_ROUNDS=3 to run this measurement")
	}
	if env.err != nil {
		t.Skip(env.err.Error())
	}
	for _, bin := range []string{OCIRuntimeRunc, OCIRuntimeCrun} {
		if _, err := lookPath(bin); err != nil {
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
	const n, parallel = 30, 16

	acct := newCPUAcct(t)
	ctrd := testenv.StartContainerd(t) // stopped before acct's cgroup is removed
	acct.move(t, ctrd.PID)
	runtimes := map[string]*Runtime{}
	for _, bin := range []string{OCIRuntimeRunc, OCIRuntimeCrun} {
		cfg := DefaultConfig()
		cfg.Socket, cfg.Namespace = ctrd.Socket, ctrd.Namespace
		cfg.RuncRoot, cfg.CgroupParent = ctrd.RuncRoot, ctrd.CgroupParent
		cfg.LogDir = t.TempDir()
		cfg.OCIRuntime = bin
		r, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		runtimes[bin] = r
	}
	if _, err := runtimes[OCIRuntimeRunc].EnsureImage(ctx(t), env.image, PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	netns := make([]string, n)
	for i := range netns {
		netns[i] = testenv.NewNetNS(t).Path
	}

	type result struct {
		startWall, removeWall                      time.Duration
		startShim, startCtr, removeShim, removeCtr time.Duration // shim: containerd's cgroup
		startDaemon, removeDaemon                  time.Duration // containerd's process alone
	}
	round := func(bin string, k int) result {
		r := runtimes[bin]
		c := ctx(t) // 60 s for the round
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("b%s%d-%d", bin[:1], k, i)
		}
		each := func(fn func(i int) error) {
			var wg sync.WaitGroup
			sem := make(chan struct{}, parallel)
			errs := make(chan error, n)
			for i := range ids {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					if err := fn(i); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		}
		var res result
		shim0, ctr0 := acct.usage(t, ctrd.CgroupParent)
		d0 := procCPU(t, ctrd.PID)
		t0 := time.Now()
		each(func(i int) error {
			s := ContainerSpec{
				ID: ids[i], Image: env.image, Args: []string{"sleep"}, NetNSPath: netns[i],
				LogPath: ContainerLogPath(r.cfg.LogDir, "default", "p", "uid-"+ids[i], "c", 0),
				Labels:  map[string]string{LabelPodUID: "uid-" + ids[i], LabelContainerName: "c", LabelAttempt: "0"},
			}
			if err := r.Create(c, s); err != nil {
				return err
			}
			return r.Start(c, ids[i])
		})
		waitFor(t, 60*time.Second, func() bool {
			all, err := r.List(c)
			if err != nil {
				t.Fatal(err)
			}
			running := 0
			for _, s := range all {
				if s.State == StateRunning {
					running++
				}
			}
			return running == n
		})
		res.startWall = time.Since(t0)
		shim1, ctr1 := acct.usage(t, ctrd.CgroupParent)
		d1 := procCPU(t, ctrd.PID)
		t1 := time.Now()
		each(func(i int) error { return r.Remove(c, ids[i]) })
		res.removeWall = time.Since(t1)
		shim2, ctr2 := acct.usage(t, ctrd.CgroupParent)
		d2 := procCPU(t, ctrd.PID)
		res.startDaemon, res.removeDaemon = d1-d0, d2-d1
		res.startShim, res.startCtr = shim1-shim0, ctr1-ctr0
		res.removeShim, res.removeCtr = shim2-shim1, ctr2-ctr1
		return res
	}

	round(OCIRuntimeRunc, 0) // warm-up: page in binaries, image layers
	round(OCIRuntimeCrun, 0)
	order := []string{OCIRuntimeRunc, OCIRuntimeCrun, OCIRuntimeCrun, OCIRuntimeRunc}
	sums := map[string]*result{OCIRuntimeRunc: {}, OCIRuntimeCrun: {}}
	perCtr := func(d time.Duration) string {
		return fmt.Sprintf("%5.1f ms", float64(d.Microseconds())/1000/n)
	}
	for k := 1; k <= 2*rounds; k++ {
		bin := order[(k-1)%len(order)]
		load := loadavg()
		res := round(bin, k)
		t.Logf("round %d %-4s: start %d: wall %v, CPU/ctr containerd %s + shims&runtime %s + ctr cgroup %s; remove: wall %v, CPU/ctr %s + %s + %s (load %s)",
			k, bin, n, res.startWall.Round(time.Millisecond), perCtr(res.startDaemon), perCtr(res.startShim-res.startDaemon), perCtr(res.startCtr),
			res.removeWall.Round(time.Millisecond), perCtr(res.removeDaemon), perCtr(res.removeShim-res.removeDaemon), perCtr(res.removeCtr), load)
		s := sums[bin]
		s.startWall += res.startWall
		s.removeWall += res.removeWall
		s.startDaemon += res.startDaemon
		s.removeDaemon += res.removeDaemon
		s.startShim += res.startShim
		s.startCtr += res.startCtr
		s.removeShim += res.removeShim
		s.removeCtr += res.removeCtr
	}
	total := func(s *result) time.Duration {
		return s.startShim + s.startCtr + s.removeShim + s.removeCtr
	}
	for _, bin := range []string{OCIRuntimeRunc, OCIRuntimeCrun} {
		s := sums[bin]
		rd := time.Duration(rounds)
		t.Logf("%s, mean of %d rounds of %d containers: start wall %v, remove wall %v; CPU per container (containerd + shims&runtime + ctr cgroup): start %s + %s + %s, remove %s + %s + %s, total %s",
			bin, rounds, n, (s.startWall / rd).Round(time.Millisecond), (s.removeWall / rd).Round(time.Millisecond),
			perCtr(s.startDaemon/rd), perCtr((s.startShim-s.startDaemon)/rd), perCtr(s.startCtr/rd),
			perCtr(s.removeDaemon/rd), perCtr((s.removeShim-s.removeDaemon)/rd), perCtr(s.removeCtr/rd), perCtr(total(s)/rd))
	}
	startCPU := func(s *result) float64 { return float64(s.startShim + s.startCtr) }
	t.Logf("crun/runc: CPU per container start %.2f, start+remove %.2f, start wall %.2f (load at end %s)",
		startCPU(sums[OCIRuntimeCrun])/startCPU(sums[OCIRuntimeRunc]),
		float64(total(sums[OCIRuntimeCrun]))/float64(total(sums[OCIRuntimeRunc])),
		float64(sums[OCIRuntimeCrun].startWall)/float64(sums[OCIRuntimeRunc].startWall), loadavg())
}

// cpuAcct is a CPU accounting cgroup (cgroup v1 cpuacct, or cgroup v2) the
// test moves containerd into: its shims and their runc or crun inherit it.
type cpuAcct struct {
	v2   bool
	root string // the hierarchy's mount point
	dir  string // our cgroup
}

func newCPUAcct(t *testing.T) *cpuAcct {
	t.Helper()
	a := &cpuAcct{root: "/sys/fs/cgroup/cpuacct"}
	if _, err := os.Stat(filepath.Join(a.root, "cpuacct.usage")); err != nil {
		a.v2, a.root = true, "/sys/fs/cgroup"
		if _, err := os.Stat(filepath.Join(a.root, "cgroup.controllers")); err != nil {
			t.Skip("no cgroup v1 cpuacct hierarchy nor cgroup v2 at /sys/fs/cgroup")
		}
	}
	a.dir = filepath.Join(a.root, fmt.Sprintf("shoal-bench-%d", os.Getpid()))
	if err := os.Mkdir(a.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// containerd and its shims are gone by now (their cleanup ran first).
		if err := os.Remove(a.dir); err != nil {
			t.Errorf("remove cgroup %s: %v", a.dir, err)
		}
	})
	return a
}

func (a *cpuAcct) move(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(a.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("move containerd (%d) into %s: %v", pid, a.dir, err)
	}
}

// usage returns the CPU time used so far in our cgroup (containerd, shims,
// OCI runtime) and below the containers' cgroup parent. Both counters
// include the CPU time of child cgroups that have been removed since.
func (a *cpuAcct) usage(t *testing.T, parent string) (shim, ctr time.Duration) {
	t.Helper()
	return a.read(t, a.dir, true), a.read(t, filepath.Join(a.root, parent), false)
}

func (a *cpuAcct) read(t *testing.T, dir string, must bool) time.Duration {
	t.Helper()
	file := "cpuacct.usage"
	if a.v2 {
		file = "cpu.stat"
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		if !must && os.IsNotExist(err) {
			return 0 // no container created there yet
		}
		t.Fatal(err)
	}
	if !a.v2 {
		ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			t.Fatalf("%s/%s: %v", dir, file, err)
		}
		return time.Duration(ns)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "usage_usec" {
			us, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("%s/%s: %v", dir, file, err)
			}
			return time.Duration(us) * time.Microsecond
		}
	}
	t.Fatalf("%s/%s: no usage_usec", dir, file)
	return 0
}

// procCPU is the user+system CPU time process pid has used (not its
// children's).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name's closing parenthesis: state is the
	// first, utime and stime the 12th and 13th.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

// loadavg is the 1-minute load average.
func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// TestStartLatency measures the warm create→start latency (image present)
// and, as the baseline, `ctr run --rm` of the same image.
func TestStartLatency(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	const n = 10
	base := spec(t, r, "lat-warmup", "sleep")
	if err := r.Create(c, base); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "lat-warmup"); err != nil {
		t.Fatal(err)
	}
	var createStart, cycle []time.Duration
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("lat-%d", i)
		s := base
		s.ID = id
		s.LogPath = ContainerLogPath(r.cfg.LogDir, "default", "p", "uid-"+id, "c", 0)
		s.Args = []string{"exit", "0"}
		events, cancel := subscribe(r)
		t0 := time.Now()
		if err := r.Create(c, s); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(c, id); err != nil {
			t.Fatal(err)
		}
		createStart = append(createStart, time.Since(t0))
		waitEvent(t, events, id, EventExit, 0)
		if err := r.Remove(c, id); err != nil {
			t.Fatal(err)
		}
		cycle = append(cycle, time.Since(t0))
		cancel()
	}
	if err := env.ctrd.CtrPull(env.image); err != nil {
		t.Fatal(err)
	}
	var ctrRun []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := env.ctrd.CtrRun(env.image, fmt.Sprintf("ctr-lat-%d", i), "exit", "0"); err != nil {
			t.Fatal(err)
		}
		ctrRun = append(ctrRun, time.Since(t0))
	}
	t.Logf("warm Create+Start (task started), %d runs: p50 %v, max %v", n, pct(createStart, 50), pct(createStart, 100))
	t.Logf("warm Create+Start+exit+Remove, %d runs: p50 %v, max %v", n, pct(cycle, 50), pct(cycle, 100))
	t.Logf("baseline ctr run --rm (same image, exit 0), %d runs: p50 %v, max %v", n, pct(ctrRun, 50), pct(ctrRun, 100))
}

func subscribe(r *Runtime) (<-chan Event, context.CancelFunc) {
	c, cancel := context.WithCancel(context.Background())
	ch, _ := r.Events(c)
	return ch, cancel
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1].Round(100 * time.Microsecond)
}
