package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

func testDS() *api.DaemonSet {
	d := &api.DaemonSet{
		ObjectMeta: api.ObjectMeta{Name: "agent", Namespace: "default", UID: "uid-ds", ResourceVersion: "3", Generation: 1},
		Spec: api.DaemonSetSpec{Selector: &api.LabelSelector{MatchLabels: appX}, Template: testTemplate("agent:1", appX),
			UpdateStrategy: api.DaemonSetUpdateStrategy{Type: api.RollingUpdateStrategy}},
	}
	api.SetTypeMeta(d)
	return d
}

type nodeOpt func(*api.Node)

func readyNode(name string, opts ...nodeOpt) *api.Node {
	n := testNode(name, 0, "")
	n.Labels = map[string]string{}
	n.Status.Conditions = []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func nodeLabel(k, v string) nodeOpt { return func(n *api.Node) { n.Labels[k] = v } }
func tainted(k, effect string) nodeOpt {
	return func(n *api.Node) { n.Spec.Taints = append(n.Spec.Taints, api.Taint{Key: k, Effect: effect}) }
}
func notReady(n *api.Node) { n.Status.Conditions[0].Status = api.ConditionFalse }
func cordoned(n *api.Node) { n.Spec.Unschedulable = true }

func dsPod(ds *api.DaemonSet, name, node string, opts ...podOpt) *api.Pod {
	p := testPod(name, appX, append([]podOpt{ownedBy(ds), onNode(node)}, opts...)...)
	p.Labels[LabelControllerRevision] = TemplateHash(&ds.Spec.Template, 0)
	return p
}

func TestDaemonSetFits(t *testing.T) {
	spec := &api.PodSpec{NodeSelector: map[string]string{"disk": "ssd"},
		Tolerations: []api.Toleration{{Key: "dedicated", Operator: "Exists", Effect: api.TaintNoSchedule}},
		Affinity: &api.Affinity{NodeAffinity: &api.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &api.NodeSelector{
			NodeSelectorTerms: []api.NodeSelectorTerm{{MatchExpressions: []api.NodeSelectorRequirement{{Key: "zone", Operator: "In", Values: []string{"a", "b"}}}}}}}}}
	ok := []nodeOpt{nodeLabel("disk", "ssd"), nodeLabel("zone", "a")}
	tests := []struct {
		name string
		opts []nodeOpt
		why  string
	}{
		{"fits", ok, ""},
		{"not ready", append(ok, notReady), "not Ready"},
		{"cordoned", append(ok, cordoned), "unschedulable"},
		{"selector", []nodeOpt{nodeLabel("zone", "a")}, "nodeSelector"},
		{"affinity", []nodeOpt{nodeLabel("disk", "ssd"), nodeLabel("zone", "c")}, "affinity"},
		{"tolerated taint", append(ok, tainted("dedicated", api.TaintNoSchedule)), ""},
		{"untolerated taint", append(ok, tainted("gpu", api.TaintNoExecute)), "taint gpu"},
		{"prefer-no-schedule ignored", append(ok, tainted("gpu", api.TaintPreferNoSchedule)), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fits, why := DaemonSetFits(spec, readyNode("n", tc.opts...))
			if fits != (tc.why == "") || !strings.Contains(why, tc.why) {
				t.Errorf("fits %v why %q, want %q", fits, why, tc.why)
			}
		})
	}
}

func TestReconcileDaemonSet(t *testing.T) {
	ds := testDS()
	nodes := []*api.Node{readyNode("n1"), readyNode("n2"), readyNode("n3", notReady)}
	p := ReconcileDaemonSet(DaemonSetInput{DaemonSet: ds, Nodes: nodes, Now: t0})
	var on []string
	for _, o := range p.Create {
		pod := o.(*api.Pod)
		on = append(on, pod.Spec.NodeName)
		if pod.Labels[LabelControllerRevision] == "" || api.ControllerOf(&pod.ObjectMeta).UID != ds.UID || !strings.HasPrefix(pod.Name, "agent-") {
			t.Errorf("pod %+v", pod.ObjectMeta)
		}
	}
	if !slices.Equal(on, []string{"n1", "n2"}) {
		t.Errorf("created on %v", on)
	}
	st := p.UpdateStatus[0].(*api.DaemonSet).Status
	if st.DesiredNumberScheduled != 2 || st.CurrentNumberScheduled != 0 || st.NumberUnavailable != 2 {
		t.Errorf("status %+v", st)
	}

	pods := []*api.Pod{
		dsPod(ds, "a1", "n1", ready()),
		dsPod(ds, "a1bis", "n1", phase(api.PodRunning), created(t0)), // extra on n1
		dsPod(ds, "a3", "n3", ready()),                               // n3 not ready
		dsPod(ds, "a9", "gone", ready()),                             // node deleted
		dsPod(ds, "a2", "n2", phase(api.PodFailed)),                  // failed
	}
	p = ReconcileDaemonSet(DaemonSetInput{DaemonSet: ds, Nodes: nodes, Pods: pods, Now: t0})
	d := deleted(p)
	if len(d) != 4 || !d["a1bis"] || !d["a3"] || !d["a9"] || !d["a2"] {
		t.Errorf("deleted %v", d)
	}
	if len(p.Create) != 0 {
		t.Errorf("created while the failed pod on n2 is still there: %s", p)
	}
	st = p.UpdateStatus[0].(*api.DaemonSet).Status
	if st.NumberMisscheduled != 2 || st.CurrentNumberScheduled != 1 || st.NumberReady != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestDaemonSetRollingUpdate(t *testing.T) {
	ds := testDS()
	old := ds.DeepCopyObject().(*api.DaemonSet)
	old.Spec.Template.Spec.Containers[0].Image = "agent:0"
	var nodes []*api.Node
	var pods []*api.Pod
	for i := range 4 {
		n := fmt.Sprint("n", i)
		nodes = append(nodes, readyNode(n))
		pods = append(pods, dsPod(old, "p"+n, n, ready()))
	}
	pods[3] = dsPod(old, "pn3", "n3", phase(api.PodRunning)) // not available: replaced for free
	p := ReconcileDaemonSet(DaemonSetInput{DaemonSet: ds, Nodes: nodes, Pods: pods, Now: t0})
	if d := deleted(p); len(d) != 1 || !d["pn3"] {
		t.Errorf("maxUnavailable 1 with one unavailable: deleted %v", d)
	}
	pods[3] = dsPod(old, "pn3", "n3", ready())
	ds.Spec.UpdateStrategy.RollingUpdate = &api.RollingUpdateDaemonSet{MaxUnavailable: ptrIOS(api.FromString("50%"))}
	p = ReconcileDaemonSet(DaemonSetInput{DaemonSet: ds, Nodes: nodes, Pods: pods, Now: t0})
	if d := deleted(p); len(d) != 2 || !d["pn0"] || !d["pn1"] {
		t.Errorf("50%% of 4: deleted %v", d)
	}
	ds.Spec.UpdateStrategy = api.DaemonSetUpdateStrategy{Type: api.OnDeleteStrategy}
	if d := deleted(ReconcileDaemonSet(DaemonSetInput{DaemonSet: ds, Nodes: nodes, Pods: pods, Now: t0})); len(d) != 0 {
		t.Errorf("OnDelete deleted %v", d)
	}
}

func ptrIOS(v api.IntOrString) *api.IntOrString { return &v }

// Property: whatever the nodes and pods, after applying the plan (and once
// more for pods held back by terminating ones) every eligible node has
// exactly one pod and no other node has any.
func TestDaemonSetOnePodPerEligibleNodeProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ds := testDS()
		w := newWorld(rt)
		w.put(ds)
		nn := rapid.IntRange(0, 8).Draw(rt, "nodes")
		var nodes []*api.Node
		for i := range nn {
			var opts []nodeOpt
			switch rapid.IntRange(0, 4).Draw(rt, "node") {
			case 0:
				opts = append(opts, notReady)
			case 1:
				opts = append(opts, cordoned)
			case 2:
				opts = append(opts, tainted("x", api.TaintNoSchedule))
			}
			nodes = append(nodes, readyNode(fmt.Sprint("n", i), opts...))
		}
		np := rapid.IntRange(0, 12).Draw(rt, "pods")
		for i := range np {
			node := fmt.Sprint("n", rapid.IntRange(0, nn).Draw(rt, "on"))
			p := dsPod(ds, fmt.Sprint("p", i), node)
			if rapid.Bool().Draw(rt, "failed") {
				p.Status.Phase = api.PodFailed
			}
			p.UID = ""
			w.put(p)
		}
		for range 3 {
			for _, p := range w.pods() { // the node agent starts pods
				if p.Status.Phase == "" {
					c := p.DeepCopyObject().(*api.Pod)
					readySince(w.now)(c)
					w.put(c)
				}
			}
			w.apply(ReconcileDaemonSet(DaemonSetInput{DaemonSet: w.objs["DaemonSet/agent"].(*api.DaemonSet), Nodes: nodes, Pods: w.pods(), Now: w.now}))
		}
		count := map[string]int{}
		for _, p := range w.pods() {
			count[p.Spec.NodeName]++
		}
		var bad []string
		for _, n := range nodes {
			fits, _ := DaemonSetFits(&ds.Spec.Template.Spec, n)
			if want := map[bool]int{true: 1, false: 0}[fits]; count[n.Name] != want {
				bad = append(bad, fmt.Sprintf("%s has %d (fits %v)", n.Name, count[n.Name], fits))
			}
			delete(count, n.Name)
		}
		for n, c := range count {
			bad = append(bad, fmt.Sprintf("unknown node %s has %d", n, c))
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			rt.Fatalf("%v", bad)
		}
	})
}
