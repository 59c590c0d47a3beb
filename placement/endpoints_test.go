package placement

import (
	"slices"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

func testSvc(name string, sel map[string]string, ports ...api.ServicePort) *api.Service {
	s := &api.Service{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name, ResourceVersion: "2"},
		Spec: api.ServiceSpec{Selector: sel, Ports: ports}}
	api.SetTypeMeta(s)
	return s
}

func withPort(name string, port int32) podOpt {
	return func(p *api.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, api.ContainerPort{Name: name, ContainerPort: port})
	}
}

func ips(as []api.EndpointAddress) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.IP)
	}
	return out
}

func TestEndpointsFor(t *testing.T) {
	svc := testSvc("web", appX,
		api.ServicePort{Name: "http", Port: 80, TargetPort: api.FromString("http"), Protocol: "TCP"},
		api.ServicePort{Name: "metrics", Port: 9090, TargetPort: api.FromInt(9100), Protocol: "TCP"})
	pods := []*api.Pod{
		testPod("b", appX, withIP("10.244.0.3"), onNode("n1"), ready(), withPort("http", 8080)),
		testPod("a", appX, withIP("10.244.0.2"), onNode("n2"), ready(), withPort("http", 8080)),
		testPod("c", appX, withIP("10.244.0.4"), onNode("n1"), phase(api.PodRunning), withPort("http", 8080)),
		testPod("noport", appX, withIP("10.244.0.5"), ready()),
		testPod("noip", appX, ready(), withPort("http", 8080)),
		testPod("gone", appX, withIP("10.244.0.6"), ready(), terminating(), withPort("http", 8080)),
		testPod("failed", appX, withIP("10.244.0.7"), phase(api.PodFailed), withPort("http", 8080)),
		testPod("other", map[string]string{"app": "y"}, withIP("10.244.0.8"), ready(), withPort("http", 8080)),
	}
	ep := EndpointsFor(svc, pods, nil)
	if len(ep.Subsets) != 2 {
		t.Fatalf("subsets %+v", ep.Subsets)
	}
	// "noport" lacks the named port: it serves only metrics, in its own subset.
	var full, metricsOnly api.EndpointSubset
	for _, s := range ep.Subsets {
		if len(s.Ports) == 2 {
			full = s
		} else {
			metricsOnly = s
		}
	}
	if got := ips(full.Addresses); !slices.Equal(got, []string{"10.244.0.2", "10.244.0.3"}) {
		t.Errorf("addresses %v", got)
	}
	if got := ips(full.NotReadyAddresses); !slices.Equal(got, []string{"10.244.0.4"}) {
		t.Errorf("notReady %v", got)
	}
	if full.Ports[0] != (api.EndpointPort{Name: "http", Port: 8080, Protocol: "TCP"}) || full.Ports[1].Port != 9100 {
		t.Errorf("ports %+v", full.Ports)
	}
	a := full.Addresses[0]
	if a.TargetRef.Name != "a" || a.TargetRef.Kind != "Pod" || a.TargetRef.UID != "uid-a" || *a.NodeName != "n2" {
		t.Errorf("address %+v", a)
	}
	if got := ips(metricsOnly.Addresses); !slices.Equal(got, []string{"10.244.0.5"}) || len(metricsOnly.Ports) != 1 {
		t.Errorf("metrics-only subset %+v", metricsOnly)
	}
}

func TestReconcileEndpoints(t *testing.T) {
	svc := testSvc("web", appX, api.ServicePort{Port: 80, TargetPort: api.FromInt(8080)})
	manual := testSvc("manual", nil, api.ServicePort{Port: 80})
	pods := []*api.Pod{testPod("a", appX, withIP("10.244.0.2"), ready())}

	p := ReconcileEndpoints(EndpointsInput{Services: []*api.Service{svc, manual}, Pods: pods})
	if len(p.Create) != 1 || p.Create[0].GetObjectMeta().Name != "web" {
		t.Fatalf("create:\n%s", p)
	}
	cur := p.Create[0].(*api.Endpoints)
	cur.ResourceVersion = "9"
	manualEP := &api.Endpoints{ObjectMeta: api.ObjectMeta{Name: "manual", Namespace: "default", ResourceVersion: "4"},
		Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{{IP: "192.0.2.1"}}}}}
	stale := &api.Endpoints{ObjectMeta: api.ObjectMeta{Name: "deleted-svc", Namespace: "default", ResourceVersion: "5"}}

	// Same pods, listed in another order: nothing to write; the Endpoints of
	// a deleted Service goes; the selector-less Service's Endpoints stay.
	p = ReconcileEndpoints(EndpointsInput{Services: []*api.Service{svc, manual},
		Endpoints: []*api.Endpoints{cur, manualEP, stale}, Pods: pods})
	if len(p.Create)+len(p.Update) != 0 || len(p.Delete) != 1 || p.Delete[0].Name != "deleted-svc" || p.Delete[0].ResourceVersion != "5" {
		t.Fatalf("steady:\n%s", p)
	}

	// The pod turns not ready: one update, from the current version.
	pods[0] = testPod("a", appX, withIP("10.244.0.2"), phase(api.PodRunning))
	p = ReconcileEndpoints(EndpointsInput{Services: []*api.Service{svc}, Endpoints: []*api.Endpoints{cur}, Pods: pods})
	if len(p.Update) != 1 {
		t.Fatalf("update:\n%s", p)
	}
	u := p.Update[0].(*api.Endpoints)
	if u.ResourceVersion != "9" || len(u.Subsets[0].Addresses) != 0 || len(u.Subsets[0].NotReadyAddresses) != 1 {
		t.Errorf("updated %+v", u)
	}
	if len(cur.Subsets[0].Addresses) != 1 {
		t.Error("input Endpoints changed")
	}
}

// Property: an Endpoints object never lists a pod twice, every address is a
// matching live pod with an IP, and recomputing from a shuffled pod list
// gives the same result.
func TestEndpointsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		svc := testSvc("web", appX, api.ServicePort{Name: "p", Port: 80, TargetPort: api.FromString("p")})
		n := rapid.IntRange(0, 20).Draw(t, "n")
		var pods []*api.Pod
		for i := range n {
			var opts []podOpt
			if rapid.Bool().Draw(t, "ip") {
				opts = append(opts, withIP("10.0.0."+string(rune('a'+i))))
			}
			if rapid.Bool().Draw(t, "ready") {
				opts = append(opts, ready())
			}
			if rapid.Bool().Draw(t, "port") {
				opts = append(opts, withPort("p", 8000+int32(i)))
			}
			lbl := appX
			if rapid.IntRange(0, 3).Draw(t, "lbl") == 0 {
				lbl = map[string]string{"app": "y"}
			}
			pods = append(pods, testPod("p"+string(rune('a'+i)), lbl, opts...))
		}
		ep := EndpointsFor(svc, pods, nil)
		seen := map[string]bool{}
		for _, s := range ep.Subsets {
			for _, a := range append(append([]api.EndpointAddress(nil), s.Addresses...), s.NotReadyAddresses...) {
				if seen[a.TargetRef.Name] {
					t.Fatalf("pod %s twice", a.TargetRef.Name)
				}
				seen[a.TargetRef.Name] = true
			}
		}
		for _, p := range pods {
			eligible := p.Status.PodIP != "" && p.Labels["app"] == "x" && len(p.Spec.Containers[0].Ports) > 0
			if eligible != seen[p.Name] {
				t.Fatalf("pod %s eligible %v listed %v", p.Name, eligible, seen[p.Name])
			}
		}
		shuffled := rapid.Permutation(pods).Draw(t, "perm")
		ep2 := EndpointsFor(svc, shuffled, nil)
		cur := ep.DeepCopyObject().(*api.Endpoints)
		if p := ReconcileEndpoints(EndpointsInput{Services: []*api.Service{svc}, Endpoints: []*api.Endpoints{cur}, Pods: shuffled}); !p.Empty() {
			t.Fatalf("order-dependent: %+v vs %+v", ep.Subsets, ep2.Subsets)
		}
	})
}

// Pods on a node that is NotReady (dead in gossip, left, unknown) leave
// the ready addresses at once, whatever their own Ready condition says;
// they come back when the node does.
func TestEndpointsLeaveNotReadyNodes(t *testing.T) {
	svc := testSvc("web", appX, api.ServicePort{Port: 80, TargetPort: api.FromInt(8080)})
	pods := []*api.Pod{
		testPod("a", appX, withIP("10.244.1.2"), onNode("up"), ready()),
		testPod("b", appX, withIP("10.244.2.2"), onNode("dead"), ready()),
		testPod("c", appX, withIP("10.244.3.2"), onNode("left"), ready()),
		testPod("d", appX, withIP("10.244.4.2"), onNode("unknown"), ready()),
		testPod("e", appX, withIP("10.244.5.2"), onNode("unjudged"), ready()),
	}
	unjudged := readyNode("unjudged")
	unjudged.Status.Conditions = nil
	nodes := []*api.Node{
		readyNode("up"),
		nodeWithReason("dead", api.ConditionFalse, ReasonNodeStatusUnknown, t0),
		nodeWithReason("left", api.ConditionFalse, ReasonNodeLeft, t0),
		nodeWithReason("unknown", api.ConditionUnknown, ReasonNotInGossip, t0),
		unjudged,
	}
	p := ReconcileEndpoints(EndpointsInput{Services: []*api.Service{svc}, Pods: pods, Nodes: nodes})
	if len(p.Create) != 1 {
		t.Fatalf("plan:\n%s", p)
	}
	ep := p.Create[0].(*api.Endpoints)
	if got := ips(ep.Subsets[0].Addresses); !slices.Equal(got, []string{"10.244.1.2", "10.244.5.2"}) {
		t.Errorf("ready addresses %v, want the pods on up and on the node not judged yet", got)
	}
	if got := ips(ep.Subsets[0].NotReadyAddresses); !slices.Equal(got, []string{"10.244.2.2", "10.244.3.2", "10.244.4.2"}) {
		t.Errorf("not-ready addresses %v", got)
	}
	// The dead node returns: its pod is ready again.
	ep.ResourceVersion = "7"
	nodes[1] = readyNode("dead")
	p = ReconcileEndpoints(EndpointsInput{Services: []*api.Service{svc}, Endpoints: []*api.Endpoints{ep}, Pods: pods, Nodes: nodes})
	if len(p.Update) != 1 {
		t.Fatalf("plan:\n%s", p)
	}
	if got := ips(p.Update[0].(*api.Endpoints).Subsets[0].Addresses); !slices.Equal(got, []string{"10.244.1.2", "10.244.2.2", "10.244.5.2"}) {
		t.Errorf("ready addresses after the node returned %v", got)
	}
}
