package integration

// Root test of a 3-host cluster on one machine: three real `shoal agent`
// processes, each with its own private containerd and its own "host"
// network namespace for pods. The host namespaces are joined by veths to a
// bridge in a fourth "switch" namespace (10.250.0.1-3/24), so pods on
// different hosts reach each other over routes the agents program via each
// Node's InternalIP (--node-ip). The agents talk to each other over
// loopback ports in the root namespace, which is never programmed: the test
// compares its links and routes before and after.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
}

func TestClusterOfThreeHosts(t *testing.T) {
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

	// The links: a switch namespace with a bridge, a veth from each host
	// namespace into it. Every link is made inside test namespaces (ip -n),
	// and goes away with them.
	sw := testenv.NewNetNS(t)
	mustIP(t, "-n", sw.Name, "link", "add", "br0", "type", "bridge")
	mustIP(t, "-n", sw.Name, "link", "set", "br0", "up")
	hosts := make([]*clusterHost, 3)
	for i := range hosts {
		h := &clusterHost{name: fmt.Sprintf("host%d", i+1), zone: string(rune('a' + i)), ip: fmt.Sprintf("10.250.0.%d", i+1)}
		h.ns = testenv.NewNetNS(t)
		port := fmt.Sprintf("p%d", i+1)
		mustIP(t, "-n", sw.Name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns.Name)
		mustIP(t, "-n", sw.Name, "link", "set", port, "master", "br0", "up")
		mustIP(t, "-n", h.ns.Name, "addr", "add", h.ip+"/24", "dev", "eth0")
		mustIP(t, "-n", h.ns.Name, "link", "set", "eth0", "up")
		h.dataDir = t.TempDir()
		h.logPath = filepath.Join(h.dataDir, "agent.log")
		hosts[i] = h
	}

	reg := testenv.StartRegistry(t)
	image := testenv.TestImage(t, reg)
	for _, h := range hosts {
		h.ctrd = testenv.StartContainerd(t)
		h.httpAddr, h.raftAddr, h.gossip = freeLoopbackAddr(t), freeLoopbackAddr(t), freeLoopbackAddr(t)
		h.client = api.NewClient("http://"+h.httpAddr, api.WithRequestTimeout(5*time.Second))
	}

	// The agents, all at once. Registered after the containerds, so that
	// they stop first (cleanups run in reverse), then the pod namespace
	// bind mounts under their data dirs are unmounted, then the
	// containerds kill what is left, then the namespaces go.
	for _, h := range hosts {
		var join []string
		for _, o := range hosts {
			if o != h {
				join = append(join, o.gossip)
			}
		}
		args := []string{"agent", "--node-name", h.name, "--data-dir", h.dataDir,
			"--http-addr", h.httpAddr, "--raft-addr", h.raftAddr, "--bind", h.gossip,
			"--join", strings.Join(join, ","), "--bootstrap-expect", "3", "--zone", h.zone,
			"--node-ip", h.ip,
			"--containerd-socket", h.ctrd.Socket, "--containerd-namespace", h.ctrd.Namespace,
			"--runc-root", h.ctrd.RuncRoot, "--cgroup-parent", h.ctrd.CgroupParent,
			"--pod-netns", h.ns.Path, "--insecure-registry", reg.Addr()}
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
				t.Logf("%s agent log tail:\n%s", h.name, tail(h.logPath, 40))
			}
		}
	})

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

	manifest := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(clusterManifest, "IMAGE", image)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runShoal(bin, hosts[0], "apply", "-f", manifest); err != nil {
		t.Fatalf("shoal apply: %v\n%s", err, out)
	}

	// Three pods, Running and Ready, one per host (zones a, b, c), with IPs
	// from the three hosts' pod CIDRs.
	var pods []*api.Pod
	testenv.WaitFor(t, 180*time.Second, "3 web pods Running and Ready on 3 hosts", func() bool {
		objs, _, err := hosts[0].client.List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(objs) != 3 {
			return false
		}
		pods = pods[:0]
		nodes := map[string]bool{}
		for _, o := range objs {
			p := o.(*api.Pod)
			c := api.FindCondition(p.Status.Conditions, api.PodReady)
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if p.Status.Phase != "Running" || c == nil || c.Status != api.ConditionTrue || err != nil ||
				!cidrs[p.Spec.NodeName].Contains(ip) || p.DeletionTimestamp != nil {
				return false
			}
			nodes[p.Spec.NodeName] = true
			pods = append(pods, p)
		}
		return len(nodes) == 3
	})
	sort.Slice(pods, func(i, j int) bool { return pods[i].Spec.NodeName < pods[j].Spec.NodeName })
	t.Logf("3 pods Ready after %v: %s", time.Since(start).Round(time.Millisecond), podSummary(pods))
	if len(map[netip.Prefix]bool{cidrs["host1"]: true, cidrs["host2"]: true, cidrs["host3"]: true}) != 3 {
		t.Fatalf("pod CIDRs not distinct: %v", cidrs)
	}
	onHost3 := pods[2]
	if onHost3.Spec.NodeName != "host3" {
		t.Fatalf("no pod on host3: %s", podSummary(pods))
	}

	// From inside host 1's namespace, a pod on host 3 answers HTTP: over
	// host 1's route to host 3's pod CIDR via 10.250.0.3.
	hc := &http.Client{Transport: &http.Transport{DialContext: dialIn(hosts[0].ns.Path), DisableKeepAlives: true}, Timeout: 3 * time.Second}
	var body string
	testenv.WaitFor(t, 30*time.Second, "HTTP from host1's namespace to the pod on host3", func() bool {
		resp, err := hc.Get("http://" + net.JoinHostPort(onHost3.Status.PodIP, "8080") + "/hostname")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = strings.TrimSpace(string(b))
		return err == nil && resp.StatusCode == http.StatusOK
	})
	if body == "" {
		t.Fatal("the pod on host3 answered /hostname with nothing")
	}
	if out, err := hosts[0].ns.Exec("ip", "route", "get", onHost3.Status.PodIP); err != nil || !strings.Contains(out, "via 10.250.0.3") {
		t.Fatalf("host1's route to %s does not go via host3: %v\n%s", onHost3.Status.PodIP, err, out)
	}

	// The Service's Endpoints list all three pods.
	want := []string{pods[0].Status.PodIP, pods[1].Status.PodIP, pods[2].Status.PodIP}
	sort.Strings(want)
	var got []string
	testenv.WaitFor(t, 30*time.Second, "Endpoints web lists the 3 pods", func() bool {
		o, err := hosts[0].client.Get(ctx, "Endpoints", "default", "web")
		if err != nil {
			return false
		}
		got = got[:0]
		for _, s := range o.(*api.Endpoints).Subsets {
			for _, a := range s.Addresses {
				got = append(got, a.IP)
			}
		}
		sort.Strings(got)
		return slices.Equal(got, want)
	})

	// The Service answers on its ClusterIP from host 1's pod network (the
	// load balancer spreads over the pods of all hosts) and by name from
	// inside a pod on host 1 (cluster DNS, search domains).
	svcObj, err := hosts[0].client.Get(ctx, "Service", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	vip := svcObj.(*api.Service).Spec.ClusterIP
	seen := map[string]bool{}
	testenv.WaitFor(t, 30*time.Second, "the ClusterIP "+vip+" answering from two pods at least", func() bool {
		resp, err := hc.Get("http://" + net.JoinHostPort(vip, "80") + "/hostname")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			seen[strings.TrimSpace(string(b))] = true
		}
		return len(seen) >= 2
	})
	onHost1 := pods[0]
	for _, url := range []string{"http://web/hostname", "http://web.default.svc.cluster.local/hostname"} {
		var out string
		testenv.WaitFor(t, 30*time.Second, "GET "+url+" from a pod on host1", func() bool {
			out, err = runShoal(bin, hosts[0], "exec", onHost1.Name, "--", "/app", "get", url)
			return err == nil && strings.TrimSpace(out) != ""
		})
	}

	// logs and exec of the pod on host 3, asked of host 1's API.
	if out, err := runShoal(bin, hosts[0], "logs", onHost3.Name); err != nil || !strings.Contains(out, "listening on :8080") {
		t.Fatalf("shoal logs %s via host1: %v\n%s", onHost3.Name, err, out)
	}
	if out, err := runShoal(bin, hosts[0], "exec", onHost3.Name, "--", "/app", "echo", "exec-on-host3"); err != nil || !strings.Contains(out, "exec-on-host3") {
		t.Fatalf("shoal exec %s via host1: %v\n%s", onHost3.Name, err, out)
	}

	// Through the Service, not one request fails while the Deployment
	// scales down and up, rolls out a new template and is rolled back:
	// pods leave every agent's rules before they stop.
	var total, failures atomic.Int64
	var firstErr atomic.Value
	loadCtx, stopLoad := context.WithCancel(ctx)
	var loadWG sync.WaitGroup
	loadWG.Go(func() {
		for loadCtx.Err() == nil {
			total.Add(1)
			resp, err := hc.Get("http://" + net.JoinHostPort(vip, "80") + "/hostname")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			select {
			case <-loadCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	webPods := func(want int) func() bool {
		return func() bool {
			objs, _, err := hosts[0].client.List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(objs) != want {
				return false
			}
			for _, o := range objs {
				if c := api.FindCondition(o.(*api.Pod).Status.Conditions, api.PodReady); c == nil || c.Status != api.ConditionTrue {
					return false
				}
			}
			return true
		}
	}
	mustRunShoal := func(args ...string) {
		t.Helper()
		if out, err := runShoal(bin, hosts[0], args...); err != nil {
			t.Fatalf("shoal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	mustRunShoal("scale", "deployment", "web", "--replicas", "2")
	testenv.WaitFor(t, 60*time.Second, "2 web pods (the third terminated)", webPods(2))
	mustRunShoal("scale", "deployment", "web", "--replicas", "3")
	testenv.WaitFor(t, 60*time.Second, "3 web pods again", webPods(3))
	v2 := strings.Replace(strings.ReplaceAll(clusterManifest, "IMAGE", image), `value: "1"`, `value: "2"`, 1)
	if err := os.WriteFile(manifest, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRunShoal("apply", "-f", manifest)
	mustRunShoal("rollout", "status", "deployment/web", "--timeout", "120s")
	testenv.WaitFor(t, 60*time.Second, "3 web pods after the rollout", webPods(3))
	mustRunShoal("rollout", "undo", "deployment/web")
	mustRunShoal("rollout", "status", "deployment/web", "--timeout", "120s")
	testenv.WaitFor(t, 60*time.Second, "3 web pods after the undo", webPods(3))
	stopLoad()
	loadWG.Wait()
	t.Logf("%d requests through the Service during scale-down, rollout and undo, %d failed", total.Load(), failures.Load())
	if failures.Load() > 0 || total.Load() < 50 {
		t.Fatalf("%d of %d requests through the Service failed (first: %v)", failures.Load(), total.Load(), firstErr.Load())
	}

	// Kill the leader (SIGKILL): another agent's API accepts a write within
	// a few seconds, and the killed host's Node goes NotReady.
	// First wait until all three are voters and followers of one leader:
	// the voter manager promotes agents one at a time after they are
	// stable, and a cluster of fewer voters cannot lose its leader.
	var leader *clusterHost
	testenv.WaitFor(t, 60*time.Second, "3 voters following one leader", func() bool {
		leader = nil
		leaders := map[string]bool{}
		for _, h := range hosts {
			raw, err := h.client.ClusterRaft(ctx)
			var st struct {
				State, LeaderID string
				Voters          []struct{ ID, Suffrage string }
			}
			if err != nil || json.Unmarshal(raw, &st) != nil || st.LeaderID == "" {
				return false
			}
			voters := 0
			for _, v := range st.Voters {
				if v.Suffrage == "Voter" {
					voters++
				}
			}
			if voters != 3 {
				return false
			}
			leaders[st.LeaderID] = true
			if st.State == "Leader" {
				leader = h
			}
		}
		return leader != nil && len(leaders) == 1 && leaders[leader.name]
	})
	var other *clusterHost
	for _, h := range hosts {
		if h != leader {
			other = h
			break
		}
	}
	if err := h2kill(leader); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var writeErr error
	ok := waitCond(30*time.Second, func() bool {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, writeErr = other.client.Create(wctx, &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "after-failover", Namespace: "default"}, Data: map[string]string{"k": "v"}})
		return writeErr == nil || api.IsAlreadyExists(writeErr)
	})
	if !ok {
		t.Fatalf("no write accepted through %s within 30 s of killing the leader %s: %v", other.name, leader.name, writeErr)
	}
	t.Logf("leader %s killed; write accepted by %s after %v", leader.name, other.name, time.Since(killed).Round(time.Millisecond))
	testenv.WaitFor(t, 60*time.Second, "node "+leader.name+" NotReady", func() bool {
		o, err := other.client.Get(ctx, "Node", "", leader.name)
		if err != nil {
			return false
		}
		c := api.FindCondition(o.(*api.Node).Status.Conditions, api.NodeReady)
		return c != nil && c.Status != api.ConditionTrue
	})
	t.Logf("node %s NotReady after %v", leader.name, time.Since(killed).Round(time.Millisecond))

	// The survivors' proxies follow the new control plane: a Service made
	// after the failover answers from a surviving host's pod network.
	web2 := &api.Service{ObjectMeta: api.ObjectMeta{Name: "web2", Namespace: "default"},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Name: "http", Port: 81, TargetPort: api.FromInt(8080)}}}}
	if _, err := other.client.Create(ctx, web2); err != nil {
		t.Fatal(err)
	}
	hcOther := &http.Client{Transport: &http.Transport{DialContext: dialIn(other.ns.Path), DisableKeepAlives: true}, Timeout: 3 * time.Second}
	testenv.WaitFor(t, 60*time.Second, "Service web2 (made after the failover) answering on "+other.name, func() bool {
		o, err := other.client.Get(ctx, "Service", "default", "web2")
		if err != nil || o.(*api.Service).Spec.ClusterIP == "" {
			return false
		}
		resp, err := hcOther.Get("http://" + net.JoinHostPort(o.(*api.Service).Spec.ClusterIP, "81") + "/hostname")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}

const clusterManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: web
          image: IMAGE
          args: ["serve", "--port", "8080"]
          env:
            - name: VERSION
              value: "1"
          ports:
            - containerPort: 8080
          lifecycle:
            preStop:
              # Keep serving while every agent drops the pod from its
              # rules, as one does for Kubernetes.
              sleep:
                seconds: 2
          resources:
            requests:
              cpu: 50m
              memory: 16Mi
          readinessProbe:
            httpGet:
              path: /healthz
              port: 8080
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: 8080
`

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

func mustIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
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
	cmd.Env = append(os.Environ(), "SHOAL_ADDR=http://"+h.httpAddr)
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

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
