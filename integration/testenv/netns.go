package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// NetNS is a named network namespace (ip netns add) with loopback up.
type NetNS struct {
	Name string
	Path string // /run/netns/<Name>; give it to containers and setns
}

// NewNetNS creates a network namespace and deletes it at test cleanup. Needs
// root and iproute2.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	RequireRoot(t)
	ns, err := CreateNetNS("shoal-t-" + randomSuffix(8))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("delete netns %s: %v", ns.Name, err)
		}
	})
	return ns
}

// CreateNetNS is NewNetNS without a testing.TB: the caller must Delete it.
func CreateNetNS(name string) (*NetNS, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	ns := &NetNS{Name: name, Path: filepath.Join("/run/netns", name)}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		ns.Delete()
		return nil, fmt.Errorf("loopback up in %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return ns, nil
}

// Delete removes the namespace; deleting an absent one is not an error.
func (n *NetNS) Delete() error {
	if _, err := os.Stat(n.Path); os.IsNotExist(err) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "delete", n.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns delete %s: %w: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Exec runs a command inside the namespace (ip netns exec) and returns its
// combined output.
func (n *NetNS) Exec(args ...string) (string, error) {
	full := append([]string{"netns", "exec", n.Name}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// IP runs `ip args...` and fails the test with its output if it fails.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Switch is a namespace holding a bridge (br0) that test hosts plug into,
// each through a veth whose host end is its eth0: a private link with no
// route out, gone with the namespaces.
type Switch struct{ NS *NetNS }

// NewSwitch makes the switch namespace and its bridge.
func NewSwitch(t testing.TB) *Switch {
	t.Helper()
	sw := &Switch{NS: NewNetNS(t)}
	IP(t, "-n", sw.NS.Name, "link", "add", "br0", "type", "bridge")
	IP(t, "-n", sw.NS.Name, "link", "set", "br0", "up")
	return sw
}

// Attach plugs ns into the switch through port, giving its eth0 the
// address ip/24.
func (sw *Switch) Attach(t testing.TB, ns *NetNS, port, ip string) {
	t.Helper()
	IP(t, "-n", sw.NS.Name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	IP(t, "-n", sw.NS.Name, "link", "set", port, "master", "br0", "up")
	IP(t, "-n", ns.Name, "addr", "add", ip+"/24", "dev", "eth0")
	IP(t, "-n", ns.Name, "link", "set", "eth0", "up")
}
