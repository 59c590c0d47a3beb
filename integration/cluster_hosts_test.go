package integration

// The three-host harness of the cluster tests, on package hosts: three
// simulated machines, each a network namespace on a switch namespace's
// bridge (10.250.0.1-3/24) with its own private containerd and a real
// `shoal agent` running inside it, so that every agent-to-agent packet
// crosses the switch and each agent wires its pods into its own host
// namespace. The root namespace is never programmed: the harness compares
// its links, routes, nftables tables and forwarding sysctls before and
// after.
//
// The cluster is secure, as a user's is (issue 10): one bootstrap token
// from `shoal token generate`, HTTPS with the CA and the admin token the
// bootstrapping agent writes into its data dir.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// clusterHost is one simulated machine, as the tests use it.
type clusterHost struct {
	*hosts.Host
	name   string
	ns     *testenv.NetNS
	client *api.Client
	c      *hosts.Cluster
}

// threeHosts is a running cluster of three hosts.
type threeHosts struct {
	*hosts.Cluster
	hosts []*clusterHost
	bin   string // the shoal binary
	image string // the test image, pulled from the registry on every host
	cidrs map[string]netip.Prefix
	start time.Time
}

// startThreeHosts builds shoal, makes the hosts and starts their agents
// (with extra flags, if any), and returns once the three agents form one
// cluster of three Ready nodes with pod CIDRs. Everything is cleaned up
// when the test ends, and the test fails if the root namespace changed.
func startThreeHosts(t *testing.T, extra ...string) *threeHosts {
	testenv.RequireRoot(t)
	for _, p := range []string{"/usr/lib/cni/bridge", testenv.ContainerdBinary} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipped: %s not installed (Debian: containernetworking-plugins, containerd)", p)
		}
	}
	for _, b := range []string{"ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("skipped: %s not installed (iproute2, util-linux, nftables)", b)
		}
	}
	bin := filepath.Join(t.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shoal-dev/shoal/cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("go build shoal: %v\n%s", err, out)
	}
	c, err := hosts.New(hosts.Config{Bin: bin, Hosts: 3, AgentArgs: extra, Logf: t.Logf})
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				for _, h := range c.Hosts() {
					t.Logf("%s agent log tail:\n%s", h.Name, testenv.Tail(h.LogPath, 40))
				}
			}
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	image, err := c.TestImage()
	if err != nil {
		t.Fatal(err)
	}
	th := &threeHosts{Cluster: c, bin: bin, image: image, start: c.Start, cidrs: map[string]netip.Prefix{}}
	for _, h := range c.Hosts() {
		th.hosts = append(th.hosts, &clusterHost{Host: h, name: h.Name, c: c, client: c.Client(h),
			ns: &testenv.NetNS{Name: h.NetNS, Path: h.NetNSPath}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, _, err := th.hosts[0].client.List(ctx, "Node", "", api.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		n := o.(*api.Node)
		p, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil {
			t.Fatalf("node %s pod CIDR %q: %v", n.Name, n.Spec.PodCIDR, err)
		}
		th.cidrs[n.Name] = p
		var ip string
		if h := c.Host(n.Name); h != nil {
			ip = h.IP
		}
		if got := internalIP(n); got != ip || ip == "" {
			t.Fatalf("node %s InternalIP %q, want its switch address %q", n.Name, got, ip)
		}
	}
	if out, err := runShoal(bin, th.hosts[0], "status"); err != nil {
		t.Fatalf("shoal status: %v\n%s", err, out)
	}
	return th
}

// waitCond polls cond every 100 ms until it holds or timeout passes.
func waitCond(timeout time.Duration, cond func() bool) bool { return hosts.WaitUntil(timeout, cond) }

// runShoal runs the CLI in h's namespace against h's agent.
func runShoal(_ string, h *clusterHost, args ...string) (string, error) {
	return h.c.CLI(h.Host, args...)
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
	if err := h.c.Kill(h.Host); err != nil {
		return fmt.Errorf("kill %s: %w", h.name, err)
	}
	return nil
}
