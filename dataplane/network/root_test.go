package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Root tests. Every address, link, route and nftables table they make lives
// in network namespaces the test created (none has a route out of the
// machine); rootGuard fails a test that changed the process's own namespace.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (network namespaces, CNI plugins, nftables)")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("skipped: CNI plugins not installed in /usr/lib/cni (Debian: containernetworking-plugins)")
	}
}

// rootSnapshot is what must not change in the root namespace.
func rootSnapshot(t *testing.T) string {
	t.Helper()
	var lines []string
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		lines = append(lines, fmt.Sprintf("link %d %s %s", l.Attrs().Index, l.Attrs().Name, l.Type()))
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		lines = append(lines, fmt.Sprintf("route t%d %v gw %v dev %d proto %d", r.Table, r.Dst, r.Gw, r.LinkIndex, r.Protocol))
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		lines = append(lines, fmt.Sprintf("nft table %s %s", familyName(tb.Family), tb.Name))
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, "ip_forward "+strings.TrimSpace(string(fwd)))
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// rootGuard compares the root namespace before and after the test; call it
// first, so its check runs after every other cleanup.
func rootGuard(t *testing.T) {
	t.Helper()
	before := rootSnapshot(t)
	t.Cleanup(func() {
		after := rootSnapshot(t)
		if after != before {
			t.Errorf("root network namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if strings.Contains(after, natTable) {
			t.Errorf("root namespace has an nftables table %s", natTable)
		}
	})
}

// newHostNS makes a namespace standing in for a node, with lo up.
func newHostNS(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := createNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeNetNS(path); err != nil {
			t.Errorf("remove host netns: %v", err)
		}
	})
	h := nlAt(t, path)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return path
}

// nlAt returns a netlink handle in the namespace at path.
func nlAt(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// newTestNetwork opens a Network in hostNS with its state in stateDir;
// cleanup tears every pod down and unmounts the netns directory.
func newTestNetwork(t *testing.T, hostNS, stateDir, podCIDR string) *Network {
	t.Helper()
	cfg := DefaultConfig()
	cfg.HostNetNS = hostNS
	cfg.StateDir = stateDir
	cfg.PodCIDR = podCIDR
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pods, err := n.List()
		if err != nil {
			t.Error(err)
		}
		for _, p := range pods {
			if err := n.Teardown(context.Background(), p); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		n.Close()
		if err := unix.Unmount(n.netns, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", n.netns, err)
		}
	})
	return n
}

func pod(name string) PodRef {
	return PodRef{Namespace: "default", Name: name, UID: "uid-" + name}
}

// serveOnce listens on addr inside the namespace at nsPath and answers the
// first connection with its remote address.
func serveOnce(t *testing.T, nsPath, addr string) string {
	t.Helper()
	var l net.Listener
	if err := inNetNS(nsPath, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "hello %s", c.RemoteAddr().(*net.TCPAddr).IP)
	}()
	return l.Addr().String()
}

// dialFrom connects from the namespace at nsPath and returns what the
// server says.
func dialFrom(nsPath, addr string) (string, error) {
	var c net.Conn
	if err := inNetNS(nsPath, func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.Dial("tcp4", addr)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func ipamFiles(t *testing.T, stateDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(stateDir, "ipam", podNetName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestPodNetworkRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	host := newHostNS(t, dir, "host")
	state := filepath.Join(dir, "state")
	n := newTestNetwork(t, host, state, "10.244.3.0/24")
	ctx := context.Background()
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}

	a, err := n.Setup(ctx, pod("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Setup(ctx, pod("b"))
	if err != nil {
		t.Fatal(err)
	}
	_, podNet, _ := net.ParseCIDR("10.244.3.0/24")
	gw := net.ParseIP("10.244.3.1").To4()
	if a.IP.Equal(b.IP) || !podNet.Contains(a.IP) || !podNet.Contains(b.IP) {
		t.Fatalf("want distinct IPs in 10.244.3.0/24: %v %v", a.IP, b.IP)
	}
	for _, p := range []PodNetwork{a, b} {
		ip, dgw, err := readEth0(p.NetNSPath)
		if err != nil || !ip.Equal(p.IP) || !dgw.Equal(gw) || !p.Gateway.Equal(gw) {
			t.Fatalf("%s: eth0 %v default via %v (err %v), want %v via %v (Setup said gw %v)", p.NetNSPath, ip, dgw, err, p.IP, gw, p.Gateway)
		}
	}

	// Pod A reaches pod B over TCP, through the bridge.
	addr := serveOnce(t, b.NetNSPath, net.JoinHostPort(b.IP.String(), "0"))
	got, err := dialFrom(a.NetNSPath, addr)
	if err != nil || got != "hello "+a.IP.String() {
		t.Fatalf("a → b: %q, %v", got, err)
	}

	// The host (where the agent's probes run) reaches a pod too.
	addr = serveOnce(t, b.NetNSPath, net.JoinHostPort(b.IP.String(), "0"))
	if got, err := dialFrom(host, addr); err != nil || got != "hello "+gw.String() {
		t.Fatalf("host → b: %q, %v", got, err)
	}

	// Setup twice: the same network.
	again, err := n.Setup(ctx, pod("a"))
	if err != nil || !again.IP.Equal(a.IP) || again.NetNSPath != a.NetNSPath || !again.Gateway.Equal(gw) {
		t.Fatalf("second Setup: %+v, %v; first %+v", again, err, a)
	}

	// A restarted agent (new Network, same state) finds both pods.
	n2 := newTestNetwork(t, host, state, "10.244.3.0/24")
	pods, err := n2.List()
	if err != nil || len(pods) != 2 || pods[0] != pod("a") || pods[1] != pod("b") {
		t.Fatalf("List after restart: %+v, %v", pods, err)
	}
	if again, err := n2.Setup(ctx, pod("b")); err != nil || !again.IP.Equal(b.IP) {
		t.Fatalf("Setup after restart: %+v, %v; want %v", again, err, b.IP)
	}

	// Teardown frees the IP and removes the netns; twice is fine.
	if err := n.Teardown(ctx, pod("a")); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, pod("a")); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	if _, err := os.Stat(a.NetNSPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("netns %s still there: %v", a.NetNSPath, err)
	}
	if files := ipamFiles(t, state); len(files) != 1 || files[0] != b.IP.String() {
		t.Fatalf("host-local holds %v, want only %v", files, b.IP)
	}
	if pods, _ := n.List(); len(pods) != 1 || pods[0] != pod("b") {
		t.Fatalf("List after teardown: %+v", pods)
	}
	if err := n.Teardown(ctx, PodRef{Namespace: "default", Name: "never", UID: "x"}); err != nil {
		t.Fatalf("Teardown of an unknown pod: %v", err)
	}
}

// TestIPReuseRoot fills a /29 (five pod addresses), frees one and gets
// exactly that one back.
func TestIPReuseRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	host := newHostNS(t, dir, "host")
	state := filepath.Join(dir, "state")
	n := newTestNetwork(t, host, state, "10.244.3.0/29")
	ctx := context.Background()
	ips := map[string]net.IP{}
	for i := range 5 {
		p, err := n.Setup(ctx, pod(fmt.Sprint("p", i)))
		if err != nil {
			t.Fatal(err)
		}
		ips[fmt.Sprint("p", i)] = p.IP
	}
	if _, err := n.Setup(ctx, pod("extra")); err == nil {
		t.Fatal("Setup in a full range succeeded")
	}
	if _, err := os.Stat(filepath.Join(state, "netns", "default_extra_uid-extra")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed Setup left its netns: %v", err)
	}
	if err := n.Teardown(ctx, pod("p2")); err != nil {
		t.Fatal(err)
	}
	p, err := n.Setup(ctx, pod("extra"))
	if err != nil || !p.IP.Equal(ips["p2"]) {
		t.Fatalf("want the freed %v back, got %+v, %v", ips["p2"], p, err)
	}
}

func TestEnsureHostRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	host := newHostNS(t, dir, "host")
	n := newTestNetwork(t, host, filepath.Join(dir, "state"), "10.244.3.0/24")
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}

	ns, err := netns.GetFromPath(host)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	text, err := readNAT(conn)
	if err != nil || text != goldenNAT {
		t.Fatalf("table in the host namespace:\n%s\nwant:\n%s(err %v)", text, goldenNAT, err)
	}
	// nft itself agrees with our rendering.
	if _, err := exec.LookPath("nft"); err == nil {
		out, err := exec.Command("nsenter", "--net="+host, "nft", "list", "table", "ip", natTable).CombinedOutput()
		if err != nil || string(out) != goldenNAT {
			t.Fatalf("nft list table:\n%s\nwant:\n%s(err %v)", out, goldenNAT, err)
		}
	}
	handles := func() []uint64 {
		rules, err := conn.GetRules(&nftables.Table{Name: natTable, Family: nftables.TableFamilyIPv4},
			&nftables.Chain{Name: "postrouting"})
		if err != nil {
			t.Fatal(err)
		}
		var hs []uint64
		for _, r := range rules {
			hs = append(hs, r.Handle)
		}
		return hs
	}
	first := handles()
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}
	if second := handles(); fmt.Sprint(first) != fmt.Sprint(second) {
		t.Fatalf("second EnsureHost rewrote the rules: handles %v → %v", first, second)
	}

	// A foreign edit is repaired.
	tb := &nftables.Table{Name: natTable, Family: nftables.TableFamilyIPv4}
	conn.FlushChain(&nftables.Chain{Name: "postrouting", Table: tb})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}
	if text, _ := readNAT(conn); text != goldenNAT {
		t.Fatalf("not repaired:\n%s", text)
	}

	// Forwarding on, bridge up with the gateway, service CIDR via the bridge.
	var fwd []byte
	if err := inNetNS(host, func() (err error) {
		fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		return err
	}); err != nil || string(bytes.TrimSpace(fwd)) != "1" {
		t.Fatalf("ip_forward in host namespace: %q, %v", fwd, err)
	}
	h := nlAt(t, host)
	br, err := h.LinkByName("shoal0")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: serviceRouteProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil || len(routes) != 1 || routes[0].Dst.String() != "10.96.0.0/16" || routes[0].LinkIndex != br.Attrs().Index {
		t.Fatalf("service route: %+v, %v", routes, err)
	}
}

// TestTwoHostsRoot joins two "nodes" by a veth pair and routes their pod
// CIDRs to each other.
func TestTwoHostsRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	h1 := newHostNS(t, dir, "host1")
	h2 := newHostNS(t, dir, "host2")
	nl1, nl2 := nlAt(t, h1), nlAt(t, h2)
	ns2, err := netns.GetFromPath(h2)
	if err != nil {
		t.Fatal(err)
	}
	defer ns2.Close()
	if err := nl1.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink"}, PeerName: "uplink", PeerNamespace: netlink.NsFd(ns2)}); err != nil {
		t.Fatal(err)
	}
	for i, h := range []*netlink.Handle{nl1, nl2} {
		l, err := h.LinkByName("uplink")
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(fmt.Sprintf("10.250.0.%d/30", i+1))
		if err := h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}

	n1 := newTestNetwork(t, h1, filepath.Join(dir, "state1"), "10.244.1.0/24")
	n2 := newTestNetwork(t, h2, filepath.Join(dir, "state2"), "10.244.2.0/24")
	ctx := context.Background()
	for _, n := range []*Network{n1, n2} {
		if err := n.EnsureHost(); err != nil {
			t.Fatal(err)
		}
	}
	route := func(cidr, via string) Route {
		return Route{CIDR: netip.MustParsePrefix(cidr), Via: netip.MustParseAddr(via)}
	}
	if err := n1.SyncRoutes([]Route{route("10.244.2.0/24", "10.250.0.2")}); err != nil {
		t.Fatal(err)
	}
	if err := n2.SyncRoutes([]Route{route("10.244.1.0/24", "10.250.0.1")}); err != nil {
		t.Fatal(err)
	}
	p1, err := n1.Setup(ctx, pod("one"))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := n2.Setup(ctx, pod("two"))
	if err != nil {
		t.Fatal(err)
	}

	// Pod to pod across nodes: routed, not masqueraded.
	addr := serveOnce(t, p2.NetNSPath, net.JoinHostPort(p2.IP.String(), "0"))
	if got, err := dialFrom(p1.NetNSPath, addr); err != nil || got != "hello "+p1.IP.String() {
		t.Fatalf("pod one → pod two: %q, %v", got, err)
	}
	// Pod to a node address outside the cluster network: masqueraded to
	// host 1's address.
	addr = serveOnce(t, h2, "10.250.0.2:0")
	if got, err := dialFrom(p1.NetNSPath, addr); err != nil || got != "hello 10.250.0.1" {
		t.Fatalf("pod one → host two: %q, %v (want the masqueraded source 10.250.0.1)", got, err)
	}

	// SyncRoutes converges and never touches a foreign route.
	foreign := &netlink.Route{Dst: mustCIDR("10.99.0.0/16"), Gw: net.ParseIP("10.250.0.2"), Protocol: unix.RTPROT_STATIC}
	if err := nl1.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	ours := func() []string {
		rs, err := nl1.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: podRouteProto}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, r := range rs {
			s = append(s, r.Dst.String()+" via "+r.Gw.String())
		}
		return s
	}
	if got := fmt.Sprint(ours()); got != "[10.244.2.0/24 via 10.250.0.2]" {
		t.Fatalf("routes: %s", got)
	}
	want := []Route{route("10.244.2.0/24", "10.250.0.2"), route("10.244.7.0/24", "10.250.0.2")}
	for range 2 {
		if err := n1.SyncRoutes(want); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(ours()); got != "[10.244.2.0/24 via 10.250.0.2 10.244.7.0/24 via 10.250.0.2]" {
		t.Fatalf("routes: %s", got)
	}
	if err := n1.SyncRoutes([]Route{route("10.99.0.0/16", "10.250.0.2")}); err == nil {
		t.Fatal("SyncRoutes overwrote a foreign route")
	}
	if err := n1.SyncRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if got := ours(); len(got) != 0 {
		t.Fatalf("routes left: %v", got)
	}
	if rs, _ := nl1.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: unix.RTPROT_STATIC}, netlink.RT_FILTER_PROTOCOL); len(rs) != 1 {
		t.Fatalf("foreign route gone: %+v", rs)
	}
}

// TestLatencyRoot measures Setup and Teardown for the issue report.
func TestLatencyRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	host := newHostNS(t, dir, "host")
	n := newTestNetwork(t, host, filepath.Join(dir, "state"), "10.244.3.0/24")
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const pods = 10
	var setup, teardown []time.Duration
	for i := range pods {
		start := time.Now()
		if _, err := n.Setup(ctx, pod(fmt.Sprint("lat", i))); err != nil {
			t.Fatal(err)
		}
		setup = append(setup, time.Since(start))
	}
	for i := range pods {
		start := time.Now()
		if err := n.Teardown(ctx, pod(fmt.Sprint("lat", i))); err != nil {
			t.Fatal(err)
		}
		teardown = append(teardown, time.Since(start))
	}
	t.Logf("Setup over %d pods: %s", pods, quantiles(setup))
	t.Logf("Teardown over %d pods: %s", pods, quantiles(teardown))
}

func quantiles(d []time.Duration) string {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	r := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
	return fmt.Sprintf("min %v p50 %v max %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// TestConcurrentAndRecoveryRoot: pods set up and torn down concurrently get
// distinct addresses; a pod whose libcni cache is gone is read back from
// its eth0; an empty netns file left by a crash does not stop Setup; a pod
// whose netns vanished still gets its IP freed.
func TestConcurrentAndRecoveryRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	host := newHostNS(t, dir, "host")
	state := filepath.Join(dir, "state")
	n := newTestNetwork(t, host, state, "10.244.3.0/24")
	ctx := context.Background()

	const pods = 6
	type res struct {
		pn  PodNetwork
		err error
	}
	out := make(chan res, pods)
	for i := range pods {
		go func() {
			pn, err := n.Setup(ctx, pod(fmt.Sprint("c", i)))
			out <- res{pn, err}
		}()
	}
	seen := map[string]bool{}
	for range pods {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		if seen[r.pn.IP.String()] {
			t.Fatalf("IP %v handed out twice", r.pn.IP)
		}
		seen[r.pn.IP.String()] = true
	}

	// Loopback is up in the pod.
	c0, err := n.Setup(ctx, pod("c0"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dialFrom(c0.NetNSPath, serveOnce(t, c0.NetNSPath, "127.0.0.1:0")); err != nil || got != "hello 127.0.0.1" {
		t.Fatalf("loopback in pod: %q, %v", got, err)
	}

	// No libcni cache: the address comes from eth0.
	if err := os.RemoveAll(n.cfg.CacheDir); err != nil {
		t.Fatal(err)
	}
	if again, err := n.Setup(ctx, pod("c0")); err != nil || !again.IP.Equal(c0.IP) || !again.Gateway.Equal(c0.Gateway) {
		t.Fatalf("Setup without cache: %+v, %v; want %+v", again, err, c0)
	}

	// The netns of c1 disappears behind our back: Teardown still frees its IP.
	c1, err := n.Setup(ctx, pod("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := removeNetNS(c1.NetNSPath); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, pod("c1")); err != nil {
		t.Fatal(err)
	}
	for _, f := range ipamFiles(t, state) {
		if f == c1.IP.String() {
			t.Fatalf("IP %v still reserved", c1.IP)
		}
	}

	// An empty file where a netns should be mounted.
	stale := filepath.Join(state, "netns", "default_stale_uid-stale")
	if err := os.WriteFile(stale, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if pods, _ := n.List(); !containsPod(pods, pod("stale")) {
		t.Fatalf("List misses the half-made pod: %+v", pods)
	}
	if p, err := n.Setup(ctx, pod("stale")); err != nil || !isNetNS(p.NetNSPath) {
		t.Fatalf("Setup over a stale file: %+v, %v", p, err)
	}

	errs := make(chan error, pods+1)
	all, _ := n.List()
	for _, p := range all {
		go func() { errs <- n.Teardown(ctx, p) }()
	}
	for range all {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if files := ipamFiles(t, state); len(files) != 0 {
		t.Fatalf("IPs still reserved: %v", files)
	}
	if left, _ := n.List(); len(left) != 0 {
		t.Fatalf("pods left: %+v", left)
	}
}

func containsPod(pods []PodRef, p PodRef) bool {
	for _, q := range pods {
		if q == p {
			return true
		}
	}
	return false
}

// The bridge keeps its MAC while ports come and go: a port with a lower
// MAC than the bridge's would otherwise become the bridge's address (and
// the last port's departure zero it), leaving every pod's neighbour entry
// for the gateway pointing nowhere. Before the MAC was pinned, the first
// check failed.
func TestBridgeMACPinnedRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	host := newHostNS(t, dir, "host")
	n := newTestNetwork(t, host, filepath.Join(dir, "state"), "10.244.5.0/24")
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}
	h := nlAt(t, host)
	mac := func() string {
		br, err := h.LinkByName("shoal0")
		if err != nil {
			t.Fatal(err)
		}
		return br.Attrs().HardwareAddr.String()
	}
	first := mac()
	br, err := h.LinkByName("shoal0")
	if err != nil {
		t.Fatal(err)
	}
	low, _ := net.ParseMAC("00:00:00:00:00:01")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lowport", HardwareAddr: low, MasterIndex: br.Attrs().Index}, PeerName: "lowpeer"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	if got := mac(); got != first {
		t.Fatalf("a port with MAC %s changed the bridge's MAC %s → %s", low, first, got)
	}
	if err := h.LinkDel(veth); err != nil {
		t.Fatal(err)
	}
	if got := mac(); got != first {
		t.Fatalf("the last port leaving changed the bridge's MAC %s → %s", first, got)
	}
	// Again on a bridge that exists: still the same address.
	if err := n.EnsureHost(); err != nil {
		t.Fatal(err)
	}
	if got := mac(); got != first {
		t.Fatalf("a second EnsureHost changed the bridge's MAC %s → %s", first, got)
	}
}
