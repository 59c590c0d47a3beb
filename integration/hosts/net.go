package hosts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// ip runs `ip args...`, its output in the error.
func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nft runs nft inside the namespace name with the script on stdin, or
// with args if script is "".
func nft(name, script string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", name, "nft"}, args...)
	if script != "" {
		full = append(full, "-f", "-")
	}
	cmd := exec.Command("ip", full...)
	if script != "" {
		cmd.Stdin = strings.NewReader(script)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nft %s in %s: %w: %s", strings.Join(args, " "), name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// makeSwitch creates the switch namespace and its bridge br0.
func makeSwitch(name string) (string, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("ip netns add %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	for _, args := range [][]string{
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "link", "add", "br0", "type", "bridge"},
		{"-n", name, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			return "", err
		}
	}
	return filepath.Join("/run/netns", name), nil
}

// attach plugs host namespace hostNS into the switch through port (in
// the switch) and eth0 (in the host), with addr/24 on eth0.
func attach(switchNS, hostNS, port, addr string) error {
	for _, args := range [][]string{
		{"-n", switchNS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", hostNS},
		{"-n", switchNS, "link", "set", port, "master", "br0", "up"},
		{"-n", hostNS, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", hostNS, "link", "set", "eth0", "up"},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// cutTable is the switch's filter table that isolates one port.
func cutTable(port string) string { return "shoal_cut_" + port }

// cut drops, at the switch, every frame from or to port; the host's own
// links stay up, as when a cable is cut further along.
func cut(switchNS, port string) error {
	_ = heal(switchNS, port)
	script := fmt.Sprintf(`table bridge %s {
	chain forward { type filter hook forward priority -10; policy accept; iifname %q drop; oifname %q drop; }
}
`, cutTable(port), port, port)
	_, err := nft(switchNS, script)
	return err
}

// heal removes port's cut, if any.
func heal(switchNS, port string) error {
	out, err := nft(switchNS, "", "delete", "table", "bridge", cutTable(port))
	if err != nil && !strings.Contains(out, "No such file") {
		return err
	}
	return nil
}

// inNetNS runs fn on a locked OS thread inside the namespace at path, on
// a goroutine of its own. If the thread cannot go back to its namespace
// it stays locked and dies with the goroutine.
func inNetNS(path string, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		fn()
		if netns.Set(orig) == nil {
			goruntime.UnlockOSThread()
		}
		errc <- nil
	}()
	return <-errc
}

// DialIn is a DialContext whose connections start inside the network
// namespace at path.
func DialIn(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		var derr error
		if err := inNetNS(path, func() {
			var d net.Dialer
			c, derr = d.DialContext(ctx, network, addr)
		}); err != nil {
			return nil, err
		}
		return c, derr
	}
}

// listenIn opens a TCP listener on addr inside the namespace at path.
func listenIn(path, addr string) (net.Listener, error) {
	var l net.Listener
	var lerr error
	if err := inNetNS(path, func() { l, lerr = net.Listen("tcp", addr) }); err != nil {
		return nil, err
	}
	return l, lerr
}

// rootSysctls are the sysctls an agent sets in the namespace it programs
// (and their neighbours): they must not move in the root namespace.
var rootSysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/forwarding",
	"net/ipv4/conf/default/forwarding",
	"net/ipv4/conf/all/route_localnet",
	"net/ipv4/conf/all/rp_filter",
	"net/ipv6/conf/all/forwarding",
	"net/bridge/bridge-nf-call-iptables",
}

// RootState describes the machine's root network namespace: its links
// (name and kind), routes of every table (IPv4 and IPv6), nftables tables
// and the forwarding sysctls. Compare two to find a change.
func RootState() (string, error) {
	var b strings.Builder
	for _, args := range [][]string{{"-o", "link", "show"}, {"route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if args[0] == "-o" { // link name only: counters and states move
				if f := strings.Fields(line); len(f) >= 2 {
					line = f[1]
				}
			}
			b.WriteString(line + "\n")
		}
	}
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nft list tables: %w: %s", err, out)
	}
	b.WriteString("nft tables:\n" + string(out))
	for _, s := range rootSysctls {
		v, err := os.ReadFile("/proc/sys/" + s)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s = %s\n", strings.ReplaceAll(s, "/", "."), strings.TrimSpace(string(v)))
	}
	return b.String(), nil
}

// nsExists reports whether the named namespace exists.
func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// deleteNS kills what still runs in the named namespace (only processes
// this harness started live there), then deletes it.
func deleteNS(name string) error {
	if !nsExists(name) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
	}
	return ip("netns", "delete", name)
}
