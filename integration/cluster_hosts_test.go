package integration

// The three-host harness of the cluster tests: three real `shoal agent`
// processes, each with its own private containerd and its own "host"
// network namespace for pods. The host namespaces are joined by veths to a
// bridge in a fourth "switch" namespace (10.250.0.1-3/24), so pods on
// different hosts reach each other over routes the agents program via each
// Node's InternalIP (--node-ip). The agents talk to each other over
// loopback ports in the root namespace, which is never programmed: the
// harness compares its links and routes before and after.
//
// The cluster is secure, as a user's is (issue 10): one bootstrap token
// from `shoal token generate` is given to the three agents, the one that
// bootstraps writes the CA and the first admin token into its data dir,
// and every client (api.Client, the CLI) talks HTTPS with that CA and
// token.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// clusterHost is one simulated machine.
type clusterHost struct {
	name     string
	zone     string
	ip       string // in its host namespace, on the link to the switch
	ns       *testenv.NetNS
	ctrd     *testenv.Containerd
	dataDir  string
	logPath  string
	httpAddr string
	raftAddr string
	gossip   string
	cmd      *exec.Cmd
	exited   chan struct{}
	client   *api.Client
	creds    *testenv.Credentials // the cluster's CA and admin token
}

// threeHosts is a running cluster of three hosts.
type threeHosts struct {
	hosts []*clusterHost
	bin   string // the shoal binary
	image string // the test image, in the registry every host reaches
	cidrs map[string]netip.Prefix
	start time.Time
	creds *testenv.Credentials
}

// startThreeHosts builds shoal, makes the hosts and starts their agents
// (with extra flags, if any), and returns once the three agents form one
// cluster of three Ready nodes with pod CIDRs. Everything is cleaned up
// when the test ends.
func startThreeHosts(t *testing.T, extra ...string) *threeHosts {
	testenv.RequireRoot(t)
	for _, p := range []string{"/usr/lib/cni/bridge", testenv.ContainerdBinary} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipped: %s not installed (Debian: containernetworking-plugins, containerd)", p)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 not installed")
	}
	start := time.Now()
	rootBefore := rootNetState(t)
	t.Cleanup(func() {
		if after := rootNetState(t); after != rootBefore {
			t.Errorf("the root network namespace changed:\nbefore:\n%s\nafter:\n%s", rootBefore, after)
		}
	})

	bin := filepath.Join(t.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shoal-dev/shoal/cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("go build shoal: %v\n%s", err, out)
	}
	token := testenv.BootstrapToken(t, bin)

	// The links: a switch namespace with a bridge, a veth from each host
	// namespace into it. Every link is made inside test namespaces (ip -n),
	// and goes away with them.
	sw := testenv.NewSwitch(t)
	hosts := make([]*clusterHost, 3)
	for i := range hosts {
		h := &clusterHost{name: fmt.Sprintf("host%d", i+1), zone: string(rune('a' + i)), ip: fmt.Sprintf("10.250.0.%d", i+1)}
		h.ns = testenv.NewNetNS(t)
		sw.Attach(t, h.ns, fmt.Sprintf("p%d", i+1), h.ip)
		h.dataDir = t.TempDir()
		h.logPath = filepath.Join(h.dataDir, "agent.log")
		hosts[i] = h
	}

	reg := testenv.StartRegistry(t)
	image := testenv.TestImage(t, reg)
	for _, h := range hosts {
		h.ctrd = testenv.StartContainerd(t)
		h.httpAddr, h.raftAddr, h.gossip = freeLoopbackAddr(t), freeLoopbackAddr(t), freeLoopbackAddr(t)
	}

	// The agents, all at once. Registered after the containerds, so that
	// they stop first (cleanups run in reverse), then the pod namespace
	// bind mounts under their data dirs are unmounted, then the
	// containerds kill what is left, then the namespaces go.
	for _, h := range hosts {
		var join, joinAPI []string
		for _, o := range hosts {
			if o != h {
				join = append(join, o.gossip)
				joinAPI = append(joinAPI, o.httpAddr)
			}
		}
		args := []string{"agent", "--node-name", h.name, "--data-dir", h.dataDir,
			"--http-addr", h.httpAddr, "--raft-addr", h.raftAddr, "--bind", h.gossip,
			"--join", strings.Join(join, ","), "--bootstrap-expect", "3", "--token", token,
			// Each agent's API port differs: say where the others' are.
			"--join-api", strings.Join(joinAPI, ","), "--zone", h.zone,
			"--node-ip", h.ip,
			"--containerd-socket", h.ctrd.Socket, "--containerd-namespace", h.ctrd.Namespace,
			"--runc-root", h.ctrd.RuncRoot, "--cgroup-parent", h.ctrd.CgroupParent,
			"--pod-netns", h.ns.Path, "--insecure-registry", reg.Addr()}
		args = append(args, extra...)
		logFile, err := os.Create(h.logPath)
		if err != nil {
			t.Fatal(err)
		}
		h.cmd = exec.Command(bin, args...)
		h.cmd.Stdout, h.cmd.Stderr = logFile, logFile
		h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := h.cmd.Start(); err != nil {
			logFile.Close()
			t.Fatal(err)
		}
		logFile.Close()
		h.exited = make(chan struct{})
		go func() { h.cmd.Wait(); close(h.exited) }()
	}
	t.Cleanup(func() { stopAgents(t, hosts) })
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range hosts {
				t.Logf("%s agent log tail:\n%s", h.name, testenv.Tail(h.logPath, 40))
			}
		}
	})

	// The credentials, from the data dir of whichever agent bootstrapped.
	var dirs []string
	for _, h := range hosts {
		dirs = append(dirs, h.dataDir)
	}
	creds := testenv.WaitCredentials(t, 90*time.Second, dirs...)
	for _, h := range hosts {
		h.creds = creds
		h.client = creds.Client([]string{h.httpAddr}, api.WithRequestTimeout(5*time.Second))
	}

	// One cluster: every agent sees three alive members of one cluster id,
	// and three Ready nodes with pod CIDRs and the --node-ip addresses.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, h := range hosts {
		testenv.WaitFor(t, 60*time.Second, h.name+" sees one cluster of 3", func() bool {
			ms, err := h.client.Members(ctx)
			if err != nil || len(ms) != 3 {
				return false
			}
			for _, m := range ms {
				if m.Status != "alive" || m.ClusterID == "" || m.ClusterID != ms[0].ClusterID {
					return false
				}
			}
			return true
		})
	}
	cidrs := map[string]netip.Prefix{}
	testenv.WaitFor(t, 60*time.Second, "3 Ready nodes with pod CIDRs", func() bool {
		objs, _, err := hosts[0].client.List(ctx, "Node", "", api.ListOptions{})
		if err != nil || len(objs) != 3 {
			return false
		}
		for _, o := range objs {
			n := o.(*api.Node)
			c := api.FindCondition(n.Status.Conditions, api.NodeReady)
			p, err := netip.ParsePrefix(n.Spec.PodCIDR)
			if c == nil || c.Status != api.ConditionTrue || err != nil {
				return false
			}
			cidrs[n.Name] = p
		}
		return true
	})
	for _, h := range hosts {
		n, err := hosts[0].client.Get(ctx, "Node", "", h.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := internalIP(n.(*api.Node)); got != h.ip {
			t.Fatalf("node %s InternalIP %q, want the --node-ip %s", h.name, got, h.ip)
		}
	}
	if out, err := runShoal(bin, hosts[0], "status"); err != nil {
		t.Fatalf("shoal status: %v\n%s", err, out)
	}
	t.Logf("cluster of 3 formed after %v", time.Since(start).Round(time.Millisecond))
	return &threeHosts{hosts: hosts, bin: bin, image: image, cidrs: cidrs, start: start, creds: creds}
}

// waitCond polls cond every 100 ms until it holds or timeout passes.
func waitCond(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond) // poll interval, not synchronisation
	}
}

// rootNetState is the root namespace's links and routes (all tables), to
// compare before and after.
func rootNetState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{{"-o", "link", "show"}, {"route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if args[0] == "-o" { // link name and kind only: counters and states move
				if f := strings.Fields(line); len(f) >= 2 {
					line = f[1]
				}
			}
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// freeLoopbackAddr is a 127.0.0.1 port free for both TCP and UDP (gossip
// uses both) at the time of the call, chosen below the kernel's ephemeral
// range and never twice: the Raft port is bound only once the agent is a
// voter, and meanwhile an ephemeral port could be taken by an outgoing
// connection, or a random one handed to another agent.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 21000 {
				low = v
			}
		}
	}
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 200 {
		port := 20000 + rand.IntN(low-20000)
		if handed[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			handed[port] = true
			return addr
		}
	}
	t.Fatal("no free loopback port for TCP and UDP")
	return ""
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

func runShoal(bin string, h *clusterHost, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), h.creds.Env(h.httpAddr)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func internalIP(n *api.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			return a.Address
		}
	}
	return ""
}

func podSummary(pods []*api.Pod) string {
	var s []string
	for _, p := range pods {
		s = append(s, p.Name+"@"+p.Spec.NodeName+"="+p.Status.PodIP)
	}
	return strings.Join(s, " ")
}

// h2kill SIGKILLs an agent and waits (bounded) until it has exited.
func h2kill(h *clusterHost) error {
	_ = syscall.Kill(h.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-h.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("agent %s did not exit after SIGKILL", h.name)
	}
}

// stopAgents stops the agents together (SIGTERM; SIGKILL to those still
// running 15 s later: an agent whose cluster has lost a voter may wait out
// its leave timeout) and unmounts what they left mounted under their data
// dirs (pod network namespaces).
func stopAgents(t *testing.T, hosts []*clusterHost) {
	for _, h := range hosts {
		if h.cmd != nil && h.cmd.Process != nil {
			_ = syscall.Kill(h.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(15 * time.Second)
	for _, h := range hosts {
		if h.exited == nil {
			continue
		}
		select {
		case <-h.exited:
		case <-deadline:
			t.Logf("agent %s: still running 15 s after SIGTERM; killing it", h.name)
			if err := h2kill(h); err != nil {
				t.Error(err)
			}
		}
	}
	for _, h := range hosts {
		if err := testenv.UnmountBelow(h.dataDir); err != nil {
			t.Errorf("%s: %v", h.name, err)
		}
	}
}
