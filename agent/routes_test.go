package agent

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func TestNodeRoutes(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	node := func(name, cidr string, age int, addrs ...string) *api.Node {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name, CreationTimestamp: api.NewTime(t0.Add(time.Duration(age) * time.Minute))}}
		n.Spec.PodCIDR = cidr
		for _, a := range addrs {
			typ, addr, _ := strings.Cut(a, "=")
			n.Status.Addresses = append(n.Status.Addresses, api.NodeAddress{Type: typ, Address: addr})
		}
		return n
	}
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	own := netip.MustParsePrefix("10.244.1.0/24")
	cases := []struct {
		name    string
		nodes   []*api.Node
		cluster netip.Prefix
		want    string // routes, as printed
		ignored []string
	}{
		{"good nodes", []*api.Node{
			node("self", "10.244.1.0/24", 0, "InternalIP=10.0.0.1"),
			node("b", "10.244.3.0/24", 2, "InternalIP=10.0.0.3"),
			node("a", "10.244.2.0/24", 1, "Hostname=a", "InternalIP=127.0.0.1", "InternalIP=fd00::2", "InternalIP=10.0.0.2", "InternalIP=10.0.0.22"),
			node("new", "", 3, "InternalIP=10.0.0.4"),
			node("noaddr", "10.244.4.0/24", 4),
		}, cluster, "[10.244.2.0/24 via 10.0.0.2 10.244.3.0/24 via 10.0.0.3]", nil},
		{"bad nodes are left out, good ones kept", []*api.Node{
			node("a", "10.244.2.0/24", 1, "InternalIP=10.0.0.2"),
			node("default", "0.0.0.0/0", 2, "InternalIP=10.0.0.9"),
			node("half", "0.0.0.0/1", 2, "InternalIP=10.0.0.9"),
			node("outside", "192.168.0.0/24", 2, "InternalIP=10.0.0.9"),
			node("wider", "10.0.0.0/8", 2, "InternalIP=10.0.0.9"),
			node("garbled", "10.244.9.0", 2, "InternalIP=10.0.0.9"),
			node("hostbits", "10.244.9.1/24", 2, "InternalIP=10.0.0.9"),
			node("mine", "10.244.1.128/25", 2, "InternalIP=10.0.0.9"),
			node("thief", "10.244.2.0/24", 3, "InternalIP=10.0.0.9"),
			node("c", "10.244.5.0/24", 4, "InternalIP=10.0.0.5"),
		}, cluster, "[10.244.2.0/24 via 10.0.0.2 10.244.5.0/24 via 10.0.0.5]", []string{
			"node default:", "node garbled:", "node half:", "node hostbits:",
			"node mine: podCIDR 10.244.1.128/25 overlaps this node's", "node outside:", "node wider:",
			"node thief: podCIDR 10.244.2.0/24 overlaps node a's",
		}},
		{"the older node keeps a contested range, even without an address yet", []*api.Node{
			node("late", "10.244.6.0/24", 9, "InternalIP=10.0.0.8"),
			node("early", "10.244.6.0/23", 1),
		}, cluster, "[]", []string{"node late: podCIDR 10.244.6.0/24 overlaps node early's"}},
		{"same age: by name", []*api.Node{
			node("y", "10.244.7.0/24", 1, "InternalIP=10.0.0.7"),
			node("x", "10.244.7.0/24", 1, "InternalIP=10.0.0.6"),
		}, cluster, "[10.244.7.0/24 via 10.0.0.6]", []string{"node y:"}},
		{"no cluster CIDR known: default routes still refused", []*api.Node{
			node("a", "172.16.0.0/24", 1, "InternalIP=10.0.0.2"),
			node("default", "0.0.0.0/0", 2, "InternalIP=10.0.0.9"),
			node("six", "fd00:1::/64", 2, "InternalIP=10.0.0.9"),
		}, netip.Prefix{}, "[172.16.0.0/24 via 10.0.0.2]", []string{"node default:", "node six: podCIDR fd00:1::/64 is not IPv4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			routes, ignored := nodeRoutes(tc.nodes, "self", tc.cluster, own)
			if got := fmt.Sprint(routes); got != tc.want {
				t.Errorf("routes %s, want %s", got, tc.want)
			}
			if len(ignored) != len(tc.ignored) {
				t.Fatalf("ignored %q, want %d like %q", ignored, len(tc.ignored), tc.ignored)
			}
			for i, want := range tc.ignored {
				if !strings.HasPrefix(ignored[i], want) {
					t.Errorf("ignored[%d] = %q, want it to start with %q", i, ignored[i], want)
				}
			}
		})
	}
}
