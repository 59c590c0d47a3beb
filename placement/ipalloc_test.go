package placement

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

func svcAt(name, ip, typ string, age int, ports ...api.ServicePort) *api.Service {
	s := testSvc(name, appX, ports...)
	s.Spec.ClusterIP, s.Spec.Type = ip, typ
	s.CreationTimestamp = api.NewTime(t0.Add(time.Duration(age) * time.Second))
	return s
}

func allocated(p Plan) map[string]string {
	m := map[string]string{}
	for _, o := range p.Update {
		s := o.(*api.Service)
		m[s.Name] = s.Spec.ClusterIP
		for _, pt := range s.Spec.Ports {
			m[s.Name] += fmt.Sprintf(":%d", pt.NodePort)
		}
	}
	return m
}

func TestAllocateClusterIPs(t *testing.T) {
	tests := []struct {
		name      string
		cidr      string
		svcs      []*api.Service
		want      map[string]string
		wantEvent string
	}{
		{"lowest free skips network and .1", "10.96.0.0/16", []*api.Service{
			svcAt("a", "", "ClusterIP", 1), svcAt("b", "", "ClusterIP", 2),
		}, map[string]string{"a": "10.96.0.2", "b": "10.96.0.3"}, ""},
		{"keeps taken, fills holes", "10.96.0.0/16", []*api.Service{
			svcAt("dns", "10.96.0.1", "ClusterIP", 0), svcAt("x", "10.96.0.2", "ClusterIP", 0),
			svcAt("y", "10.96.0.4", "ClusterIP", 0), svcAt("new1", "", "ClusterIP", 1), svcAt("new2", "", "ClusterIP", 2),
		}, map[string]string{"new1": "10.96.0.3", "new2": "10.96.0.5"}, ""},
		{"older first regardless of order", "10.96.0.0/16", []*api.Service{
			svcAt("young", "", "ClusterIP", 9), svcAt("old", "", "ClusterIP", 1),
		}, map[string]string{"old": "10.96.0.2", "young": "10.96.0.3"}, ""},
		{"headless untouched", "10.96.0.0/16", []*api.Service{svcAt("h", "None", "ClusterIP", 1)}, map[string]string{}, ""},
		{"requested clash", "10.96.0.0/16", []*api.Service{
			svcAt("first", "10.96.0.9", "ClusterIP", 1), svcAt("second", "10.96.0.9", "ClusterIP", 2),
		}, map[string]string{}, "default/second: clusterIP 10.96.0.9 is already allocated to default/first"},
		{"outside CIDR", "10.96.0.0/16", []*api.Service{svcAt("o", "10.97.0.9", "ClusterIP", 1)}, map[string]string{}, "outside the service CIDR"},
		{"exhausted /30, no broadcast", "10.96.0.0/30", []*api.Service{
			svcAt("a", "", "ClusterIP", 1), svcAt("b", "", "ClusterIP", 2),
		}, map[string]string{"a": "10.96.0.2"}, "no free clusterIP left"},
		{"node ports", "10.96.0.0/16", []*api.Service{
			svcAt("np", "10.96.0.10", "NodePort", 1, api.ServicePort{Port: 80}, api.ServicePort{Port: 443, NodePort: 30000}),
			svcAt("np2", "10.96.0.11", "NodePort", 2, api.ServicePort{Port: 80}),
			svcAt("cip", "10.96.0.12", "ClusterIP", 3, api.ServicePort{Port: 80}),
		}, map[string]string{"np": "10.96.0.10:30001:30000", "np2": "10.96.0.11:30002"}, ""},
		{"node port clash", "10.96.0.0/16", []*api.Service{
			svcAt("a", "10.96.0.10", "NodePort", 1, api.ServicePort{Port: 80, NodePort: 30080}),
			svcAt("b", "10.96.0.11", "NodePort", 2, api.ServicePort{Port: 80, NodePort: 30080}),
		}, map[string]string{}, "nodePort 30080 is already allocated"},
		{"bad cidr", "nope", []*api.Service{svcAt("a", "", "ClusterIP", 1)}, map[string]string{}, "service CIDR"},
		{"ipv6", "fd00::/120", []*api.Service{svcAt("a", "", "ClusterIP", 1)}, map[string]string{"a": "fd00::2"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := AllocateClusterIPs(tc.cidr, tc.svcs)
			if got := allocated(p); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("allocated %v, want %v", got, tc.want)
			}
			if tc.wantEvent != "" && !strings.Contains(strings.Join(p.Events, "\n"), tc.wantEvent) {
				t.Errorf("events %q lack %q", p.Events, tc.wantEvent)
			}
		})
	}
}

// Property: after allocation every non-headless Service has a distinct
// address inside the CIDR other than network, .1 and broadcast, and a
// second run changes nothing.
func TestAllocateClusterIPsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 30).Draw(t, "n")
		var svcs []*api.Service
		for i := range n {
			ip := ""
			if rapid.IntRange(0, 2).Draw(t, "has") == 0 {
				ip = fmt.Sprintf("10.96.0.%d", rapid.IntRange(2, 62).Draw(t, "ip"))
			}
			svcs = append(svcs, svcAt(fmt.Sprint("s", i), ip, "ClusterIP", rapid.IntRange(0, 5).Draw(t, "age")))
		}
		p := AllocateClusterIPs("10.96.0.0/26", svcs)
		after := map[string]*api.Service{}
		for _, s := range svcs {
			after[s.Name] = s
		}
		for _, o := range p.Update {
			after[o.GetObjectMeta().Name] = o.(*api.Service)
		}
		seen := map[string]string{}
		var final []*api.Service
		for _, s := range svcs {
			a := after[s.Name]
			final = append(final, a)
			if s.Spec.ClusterIP != "" && a.Spec.ClusterIP != s.Spec.ClusterIP {
				t.Fatalf("%s renumbered", s.Name)
			}
			if s.Spec.ClusterIP != "" {
				continue // requested addresses may clash: reported, kept
			}
			if a.Spec.ClusterIP == "" {
				continue // exhausted
			}
			ip := netip.MustParseAddr(a.Spec.ClusterIP)
			if ip.As4()[3] < 2 || ip.As4()[3] > 62 {
				t.Fatalf("%s got %s", s.Name, ip)
			}
			if o, ok := seen[a.Spec.ClusterIP]; ok {
				t.Fatalf("%s and %s share %s", o, s.Name, ip)
			}
			seen[a.Spec.ClusterIP] = s.Name
		}
		for _, s := range svcs {
			if s.Spec.ClusterIP != "" {
				if o, ok := seen[s.Spec.ClusterIP]; ok {
					t.Fatalf("allocated %s's requested %s to %s", s.Name, s.Spec.ClusterIP, o)
				}
			}
		}
		if len(seen) < 61-len(svcs) && len(seen) < countEmpty(svcs) {
			t.Fatalf("left services without addresses while addresses were free")
		}
		if p2 := AllocateClusterIPs("10.96.0.0/26", final); len(p2.Update) != 0 {
			t.Fatalf("second run changed %v", allocated(p2))
		}
	})
}

func countEmpty(svcs []*api.Service) int {
	n := 0
	for _, s := range svcs {
		if s.Spec.ClusterIP == "" {
			n++
		}
	}
	return n
}

func testNode(name string, age int, cidr string) *api.Node {
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name, UID: "uid-" + name, ResourceVersion: "1",
		CreationTimestamp: api.NewTime(t0.Add(time.Duration(age) * time.Second))}, Spec: api.NodeSpec{PodCIDR: cidr}}
	api.SetTypeMeta(n)
	return n
}

func TestAllocatePodCIDRs(t *testing.T) {
	got := func(p Plan) string {
		var s []string
		for _, o := range p.Update {
			n := o.(*api.Node)
			s = append(s, n.Name+"="+n.Spec.PodCIDR)
			if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
				t.Errorf("podCIDRs %v", n.Spec.PodCIDRs)
			}
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		name, cidr string
		bits       int
		nodes      []*api.Node
		want       string
		event      string
	}{
		{"fresh", "10.244.0.0/16", 24, []*api.Node{testNode("b", 2, ""), testNode("a", 1, "")},
			"a=10.244.0.0/24 b=10.244.1.0/24", ""},
		{"stable and hole-filling", "10.244.0.0/16", 24, []*api.Node{
			testNode("x", 0, "10.244.0.0/24"), testNode("y", 0, "10.244.2.0/24"), testNode("n", 5, ""), testNode("m", 6, "")},
			"n=10.244.1.0/24 m=10.244.3.0/24", ""},
		{"bigger existing block", "10.244.0.0/16", 24, []*api.Node{testNode("x", 0, "10.244.0.0/23"), testNode("n", 1, "")},
			"n=10.244.2.0/24", ""},
		{"exhausted", "10.244.0.0/23", 24, []*api.Node{testNode("a", 1, ""), testNode("b", 2, ""), testNode("c", 3, "")},
			"a=10.244.0.0/24 b=10.244.1.0/24", "no free /24"},
		{"clash reported", "10.244.0.0/16", 24, []*api.Node{testNode("a", 1, "10.244.5.0/24"), testNode("b", 2, "10.244.5.0/24")},
			"", "overlaps node a"},
		{"bad mask", "10.244.0.0/16", 8, []*api.Node{testNode("a", 1, "")}, "", "does not fit"},
		{"ipv6", "fd00:10::/48", 64, []*api.Node{testNode("a", 1, ""), testNode("b", 2, "")},
			"a=fd00:10::/64 b=fd00:10:0:1::/64", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := AllocatePodCIDRs(tc.cidr, tc.bits, tc.nodes)
			if g := got(p); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
			if tc.event != "" && !strings.Contains(strings.Join(p.Events, "\n"), tc.event) {
				t.Errorf("events %q lack %q", p.Events, tc.event)
			}
		})
	}
}

func TestNthSubnet(t *testing.T) {
	p := netip.MustParsePrefix("10.244.0.0/16")
	for _, tc := range []struct {
		bits int
		i    uint64
		want string
	}{{24, 0, "10.244.0.0/24"}, {24, 255, "10.244.255.0/24"}, {26, 5, "10.244.1.64/26"}, {16, 0, "10.244.0.0/16"}} {
		s, ok := nthSubnet(p, tc.bits, tc.i)
		if !ok || s.String() != tc.want {
			t.Errorf("nthSubnet(/%d, %d) = %v %v, want %s", tc.bits, tc.i, s, ok, tc.want)
		}
	}
	if _, ok := nthSubnet(p, 24, 256); ok {
		t.Error("subnet 256 of a /16 in /24s exists")
	}
}
