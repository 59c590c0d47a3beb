package placement

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// testNode builds a Ready node with the given allocatable cpu, memory, pods.
func schedNode(name, cpu, mem, pods string, labels map[string]string) *api.Node {
	return &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: labels},
		Status: api.NodeStatus{
			Allocatable: api.ResourceList{api.ResourceCPU: api.Quantity(cpu), api.ResourceMemory: api.Quantity(mem), api.ResourcePods: api.Quantity(pods)},
			Conditions:  []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue}},
		},
	}
}

// testPod builds a pod with one container requesting cpu and memory ("" for none).
func schedPod(ns, name, cpu, mem string) *api.Pod {
	req := api.ResourceList{}
	if cpu != "" {
		req[api.ResourceCPU] = api.Quantity(cpu)
	}
	if mem != "" {
		req[api.ResourceMemory] = api.Quantity(mem)
	}
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: ns},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "c", Image: "i", Resources: api.ResourceRequirements{Requests: req}}}},
	}
}

func schedInfo(pod *api.Pod, node *api.Node, used Resources) (*podInfo, *nodeInfo) {
	req := PodRequests(pod)
	return &podInfo{pod: pod, req: req, scoreReq: scoringRequests(req), prof: &podProfile{}},
		&nodeInfo{node: node, alloc: NodeAllocatable(node), used: used}
}

func TestNodeReadyFilter(t *testing.T) {
	cases := []struct {
		name  string
		conds []api.Condition
		tols  []api.Toleration
		want  string
	}{
		{"ready", []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue}}, nil, ""},
		{"not ready", []api.Condition{{Type: api.NodeReady, Status: api.ConditionFalse}}, nil, RejectNotReady},
		{"unknown", []api.Condition{{Type: api.NodeReady, Status: api.ConditionUnknown}}, nil, RejectNotReady},
		{"no condition", nil, nil, RejectNotReady},
		{"other condition only", []api.Condition{{Type: "DiskPressure", Status: api.ConditionTrue}}, nil, RejectNotReady},
		{"tolerates not-ready", []api.Condition{{Type: api.NodeReady, Status: api.ConditionFalse}},
			[]api.Toleration{{Key: TaintNodeNotReady, Operator: "Exists"}}, ""},
		{"tolerates everything", nil, []api.Toleration{{Operator: "Exists"}}, ""},
		{"toleration of another key", nil, []api.Toleration{{Key: "x", Operator: "Exists"}}, RejectNotReady},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := schedNode("n", "1", "1Gi", "10", nil)
			n.Status.Conditions = c.conds
			pod := schedPod("default", "p", "", "")
			pod.Spec.Tolerations = c.tols
			p, ni := schedInfo(pod, n, Resources{})
			if got := (nodeReady{}).Reject(p, ni); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestNodeSchedulableFilter(t *testing.T) {
	cases := []struct {
		name     string
		cordoned bool
		tols     []api.Toleration
		want     string
	}{
		{"schedulable", false, nil, ""},
		{"cordoned", true, nil, RejectCordoned},
		{"cordoned, tolerated", true, []api.Toleration{{Key: TaintNodeUnschedulable, Operator: "Exists", Effect: api.TaintNoSchedule}}, ""},
		{"cordoned, NoExecute toleration only", true, []api.Toleration{{Key: TaintNodeUnschedulable, Operator: "Exists", Effect: api.TaintNoExecute}}, RejectCordoned},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := schedNode("n", "1", "1Gi", "10", nil)
			n.Spec.Unschedulable = c.cordoned
			pod := schedPod("default", "p", "", "")
			pod.Spec.Tolerations = c.tols
			p, ni := schedInfo(pod, n, Resources{})
			if got := (nodeSchedulable{}).Reject(p, ni); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestTaintTolerationFilter(t *testing.T) {
	gpu := api.Taint{Key: "gpu", Value: "yes", Effect: api.TaintNoSchedule}
	cases := []struct {
		name   string
		taints []api.Taint
		tols   []api.Toleration
		want   string
	}{
		{"no taints", nil, nil, ""},
		{"untolerated NoSchedule", []api.Taint{gpu}, nil, RejectTaint + "gpu=yes:NoSchedule"},
		{"untolerated NoExecute", []api.Taint{{Key: "k", Effect: api.TaintNoExecute}}, nil, RejectTaint + "k:NoExecute"},
		{"PreferNoSchedule does not filter", []api.Taint{{Key: "k", Effect: api.TaintPreferNoSchedule}}, nil, ""},
		{"Equal with value", []api.Taint{gpu}, []api.Toleration{{Key: "gpu", Operator: "Equal", Value: "yes", Effect: api.TaintNoSchedule}}, ""},
		{"default operator is Equal", []api.Taint{gpu}, []api.Toleration{{Key: "gpu", Value: "yes"}}, ""},
		{"Equal, other value", []api.Taint{gpu}, []api.Toleration{{Key: "gpu", Operator: "Equal", Value: "no"}}, RejectTaint + "gpu=yes:NoSchedule"},
		{"Exists ignores value", []api.Taint{gpu}, []api.Toleration{{Key: "gpu", Operator: "Exists"}}, ""},
		{"Exists, other key", []api.Taint{gpu}, []api.Toleration{{Key: "tpu", Operator: "Exists"}}, RejectTaint + "gpu=yes:NoSchedule"},
		{"empty key with Exists tolerates all", []api.Taint{gpu, {Key: "x", Effect: api.TaintNoExecute}}, []api.Toleration{{Operator: "Exists"}}, ""},
		{"empty effect matches all effects", []api.Taint{{Key: "k", Effect: api.TaintNoExecute}}, []api.Toleration{{Key: "k", Operator: "Exists"}}, ""},
		{"effect mismatch", []api.Taint{{Key: "k", Effect: api.TaintNoExecute}}, []api.Toleration{{Key: "k", Operator: "Exists", Effect: api.TaintNoSchedule}}, RejectTaint + "k:NoExecute"},
		{"unknown operator", []api.Taint{gpu}, []api.Toleration{{Key: "gpu", Operator: "Gt", Value: "yes"}}, RejectTaint + "gpu=yes:NoSchedule"},
		{"second taint untolerated", []api.Taint{gpu, {Key: "b", Value: "1", Effect: api.TaintNoSchedule}}, []api.Toleration{{Key: "gpu", Operator: "Exists"}}, RejectTaint + "b=1:NoSchedule"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := schedNode("n", "1", "1Gi", "10", nil)
			n.Spec.Taints = c.taints
			pod := schedPod("default", "p", "", "")
			pod.Spec.Tolerations = c.tols
			p, ni := schedInfo(pod, n, Resources{})
			if got := (taintToleration{}).Reject(p, ni); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestNodeSelectorFilter(t *testing.T) {
	labels := map[string]string{"disk": "ssd", "arch": "amd64"}
	cases := []struct {
		name string
		sel  map[string]string
		want string
	}{
		{"no selector", nil, ""},
		{"one match", map[string]string{"disk": "ssd"}, ""},
		{"all match", map[string]string{"disk": "ssd", "arch": "amd64"}, ""},
		{"value differs", map[string]string{"disk": "hdd"}, RejectNodeSelector},
		{"label missing", map[string]string{"gpu": "yes"}, RejectNodeSelector},
		{"one of two differs", map[string]string{"disk": "ssd", "arch": "arm64"}, RejectNodeSelector},
		{"empty value does not match a missing label", map[string]string{"gpu": ""}, RejectNodeSelector},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := schedPod("default", "p", "", "")
			pod.Spec.NodeSelector = c.sel
			p, ni := schedInfo(pod, schedNode("n", "1", "1Gi", "10", labels), Resources{})
			if got := (nodeSelectorMatch{}).Reject(p, ni); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func nsReq(key, op string, values ...string) api.NodeSelectorRequirement {
	return api.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func nsTerm(rs ...api.NodeSelectorRequirement) api.NodeSelectorTerm {
	return api.NodeSelectorTerm{MatchExpressions: rs}
}

func TestRequiredNodeAffinityFilter(t *testing.T) {
	labels := map[string]string{"zone": "a", "disk": "ssd"}
	cases := []struct {
		name  string
		terms []api.NodeSelectorTerm
		want  string
	}{
		{"In matches", []api.NodeSelectorTerm{nsTerm(nsReq("zone", "In", "a", "b"))}, ""},
		{"In misses", []api.NodeSelectorTerm{nsTerm(nsReq("zone", "In", "b"))}, RejectNodeAffinity},
		{"In on missing label", []api.NodeSelectorTerm{nsTerm(nsReq("gpu", "In", "a"))}, RejectNodeAffinity},
		{"NotIn holds", []api.NodeSelectorTerm{nsTerm(nsReq("zone", "NotIn", "b"))}, ""},
		{"NotIn fails", []api.NodeSelectorTerm{nsTerm(nsReq("zone", "NotIn", "a"))}, RejectNodeAffinity},
		{"NotIn on missing label holds", []api.NodeSelectorTerm{nsTerm(nsReq("gpu", "NotIn", "a"))}, ""},
		{"Exists", []api.NodeSelectorTerm{nsTerm(nsReq("disk", "Exists"))}, ""},
		{"Exists fails", []api.NodeSelectorTerm{nsTerm(nsReq("gpu", "Exists"))}, RejectNodeAffinity},
		{"DoesNotExist", []api.NodeSelectorTerm{nsTerm(nsReq("gpu", "DoesNotExist"))}, ""},
		{"DoesNotExist fails", []api.NodeSelectorTerm{nsTerm(nsReq("disk", "DoesNotExist"))}, RejectNodeAffinity},
		{"expressions ANDed", []api.NodeSelectorTerm{nsTerm(nsReq("zone", "In", "a"), nsReq("disk", "In", "hdd"))}, RejectNodeAffinity},
		{"terms ORed", []api.NodeSelectorTerm{nsTerm(nsReq("zone", "In", "b")), nsTerm(nsReq("disk", "In", "ssd"))}, ""},
		{"empty term matches nothing", []api.NodeSelectorTerm{nsTerm()}, RejectNodeAffinity},
		{"no terms matches nothing", nil, RejectNodeAffinity},
		{"unknown operator", []api.NodeSelectorTerm{nsTerm(nsReq("zone", "Gt", "1"))}, RejectNodeAffinity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := schedPod("default", "p", "", "")
			pod.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &api.NodeSelector{NodeSelectorTerms: c.terms}}}
			p, ni := schedInfo(pod, schedNode("n", "1", "1Gi", "10", labels), Resources{})
			if got := (requiredNodeAffinity{}).Reject(p, ni); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	t.Run("no affinity", func(t *testing.T) {
		p, ni := schedInfo(schedPod("default", "p", "", ""), schedNode("n", "1", "1Gi", "10", labels), Resources{})
		if got := (requiredNodeAffinity{}).Reject(p, ni); got != "" {
			t.Errorf("got %q", got)
		}
	})
}

func TestResourceFilters(t *testing.T) {
	cases := []struct {
		name     string
		cpu, mem string // pod requests
		used     Resources
		want     string // first failing of pods, cpu, memory
	}{
		{"empty node", "1", "1Gi", Resources{}, ""},
		{"exact fit", "500m", "1Gi", Resources{MilliCPU: 1500, Memory: 1 << 30, Pods: 9}, ""},
		{"pods full", "", "", Resources{Pods: 10}, RejectTooManyPods},
		{"cpu one milli over", "501m", "1Gi", Resources{MilliCPU: 1500}, RejectCPU},
		{"memory one byte over", "1", "1073741825", Resources{Memory: 1 << 30}, RejectMemory},
		{"both over: cpu first", "3", "3Gi", Resources{}, RejectCPU},
		{"no request fits an overcommitted node", "", "", Resources{MilliCPU: 5000, Memory: 5 << 30, Pods: 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ni := schedInfo(schedPod("default", "p", c.cpu, c.mem), schedNode("n", "2", "2Gi", "10", nil), c.used)
			got := ""
			for _, f := range dynamicFilters {
				if got = f.Reject(p, ni); got != "" {
					break
				}
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
