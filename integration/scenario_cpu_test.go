package integration

// Where the CPU goes during a scenario: the agents, their containerds and
// shims (with the CNI plugins and runc processes they ran and reaped), this
// test process, and the machine as a whole (the other helpers' work
// included), read from /proc before and after.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/integration/hosts"
)

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuUse is CPU time by part.
type cpuUse struct {
	agents, agentKids, containerd, containerdKids, shims, test, machine time.Duration
}

// procCPU is pid's CPU time and that of the children it reaped.
func procCPU(pid int) time.Duration {
	self, kids := procCPU2(pid)
	return self + kids
}

// procCPU2 is pid's CPU time, and that of the children it reaped.
func procCPU2(pid int) (self, kids time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 15 {
		return 0, 0
	}
	var t [4]int64
	for j, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		t[j], _ = strconv.ParseInt(f[k], 10, 64)
	}
	return time.Duration(t[0]+t[1]) * clockTick, time.Duration(t[2]+t[3]) * clockTick
}

// machineCPU is the busy time of all CPUs since boot.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}

// cpuNow reads the CPU time of the cluster's parts so far.
func (sc *scCluster) cpuNow() cpuUse {
	var u cpuUse
	namespaces := map[string]bool{}
	for _, h := range sc.Running() {
		if b, err := os.ReadFile(filepath.Join(h.Dir, "agent.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				self, kids := procCPU2(pid)
				u.agents += self
				u.agentKids += kids
			}
		}
		if h.Ctrd != nil {
			self, kids := procCPU2(h.Ctrd.PID)
			u.containerd += self
			u.containerdKids += kids
			namespaces[h.Ctrd.Namespace] = true
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmd), "containerd-shim") {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		for i, a := range args {
			if a == "-namespace" && i+1 < len(args) && namespaces[args[i+1]] {
				u.shims += procCPU(pid)
			}
		}
	}
	u.test = procCPU(os.Getpid())
	u.machine = machineCPU()
	return u
}

// since is the CPU used from before to u; shims count whole (the shims of
// before are gone or idle).
func (u cpuUse) since(before cpuUse) cpuUse {
	return cpuUse{agents: u.agents - before.agents, agentKids: u.agentKids - before.agentKids,
		containerd: u.containerd - before.containerd, containerdKids: u.containerdKids - before.containerdKids,
		shims: u.shims, test: u.test - before.test, machine: u.machine - before.machine}
}

func (u cpuUse) String() string {
	return fmt.Sprintf("agents %.2fs (+ %.2fs in the CNI plugins they ran), containerds %.2fs (+ %.2fs in shim launches), shims with runc %.2fs, this test %.2fs, the whole machine %.2fs",
		u.agents.Seconds(), u.agentKids.Seconds(), u.containerd.Seconds(), u.containerdKids.Seconds(), u.shims.Seconds(), u.test.Seconds(), u.machine.Seconds())
}

// profileAgents fetches a CPU profile of every running agent's next secs
// seconds into dir (SHOAL_SCENARIO_PPROF; the agents need --pprof, see
// SHOAL_SCENARIO_AGENT_ARGS); wait waits for them.
func (sc *scCluster) profileAgents(dir string, secs int) (wait func()) {
	var wg sync.WaitGroup
	for _, h := range sc.Running() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DialContext: hosts.DialIn(h.NetNSPath), DisableKeepAlives: true}
			c := &http.Client{Transport: sc.Creds.Transport(tr), Timeout: time.Duration(secs+30) * time.Second}
			resp, err := c.Get(fmt.Sprintf("https://%s/debug/pprof/profile?seconds=%d", h.API(), secs))
			if err != nil {
				fmt.Fprintf(os.Stderr, "profile %s: %v\n", h.Name, err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			_ = os.WriteFile(filepath.Join(dir, h.Name+".pprof"), b, 0o644)
		}()
	}
	return wg.Wait
}
