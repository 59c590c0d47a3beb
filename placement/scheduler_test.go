package placement

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

var schedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func ownedPod(name, owner, cpu, mem string) *api.Pod {
	p := schedPod("default", name, cpu, mem)
	ctrl := true
	p.OwnerReferences = []api.OwnerReference{{Kind: "ReplicaSet", Name: owner, UID: "uid-" + owner, Controller: &ctrl}}
	return p
}

func zoned(n *api.Node, zone string) *api.Node {
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[DefaultZoneLabel] = zone
	return n
}

func TestExplanationText(t *testing.T) {
	notReady := schedNode("nr", "4", "4Gi", "10", nil)
	notReady.Status.Conditions[0].Status = api.ConditionFalse
	cordoned := schedNode("cordoned", "4", "4Gi", "10", map[string]string{"disk": "ssd"})
	cordoned.Spec.Unschedulable = true
	tainted := schedNode("tainted", "4", "4Gi", "10", map[string]string{"disk": "ssd"})
	tainted.Spec.Taints = []api.Taint{{Key: "dedicated", Value: "db", Effect: api.TaintNoSchedule}}
	full := schedNode("full", "4", "4Gi", "1", map[string]string{"disk": "ssd"})
	cases := []struct {
		name  string
		nodes []*api.Node
		bound []*api.Pod
		pod   *api.Pod
		want  string
	}{
		{"the issue's example",
			[]*api.Node{
				schedNode("a", "4", "1Gi", "10", map[string]string{"disk": "ssd"}),
				schedNode("b", "4", "1Gi", "10", map[string]string{"disk": "ssd"}),
				schedNode("c", "4", "1Gi", "10", map[string]string{"disk": "ssd"}),
				schedNode("d", "4", "8Gi", "10", nil),
				schedNode("e", "4", "8Gi", "10", map[string]string{"disk": "hdd"}),
			}, nil,
			func() *api.Pod {
				p := schedPod("default", "p", "1", "2Gi")
				p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
				return p
			}(),
			"0/5 nodes available: 3 insufficient memory, 2 did not match nodeSelector"},
		{"ties by text; first failing filter counts",
			[]*api.Node{notReady, cordoned, tainted, full, schedNode("small", "1", "4Gi", "10", map[string]string{"disk": "ssd"})},
			[]*api.Pod{func() *api.Pod { p := schedPod("default", "x", "", ""); p.Spec.NodeName = "full"; return p }()},
			func() *api.Pod {
				p := schedPod("default", "p", "2", "1Gi")
				p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
				return p
			}(),
			"0/5 nodes available: 1 had untolerated taint dedicated=db:NoSchedule, 1 insufficient cpu, 1 not ready, 1 too many pods, 1 unschedulable"},
		{"affinity", []*api.Node{schedNode("a", "4", "4Gi", "10", nil), schedNode("b", "4", "4Gi", "10", nil)}, nil,
			func() *api.Pod {
				p := schedPod("default", "p", "", "")
				p.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &api.NodeSelector{
					NodeSelectorTerms: []api.NodeSelectorTerm{nsTerm(nsReq("gpu", "Exists"))}}}}
				return p
			}(),
			"0/2 nodes available: 2 did not match node affinity"},
		{"no nodes", nil, nil, schedPod("default", "p", "", ""), "0/0 nodes available"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewScheduler(SchedulerConfig{}, c.nodes, c.bound)
			node, ex := s.Schedule(c.pod)
			if node != "" {
				t.Fatalf("scheduled to %s", node)
			}
			if got := ex.String(); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
			sum := ex.Feasible
			for _, n := range ex.Reasons {
				sum += n
			}
			if sum != ex.Total || ex.Total != len(c.nodes) {
				t.Errorf("counts add to %d, total %d, nodes %d", sum, ex.Total, len(c.nodes))
			}
		})
	}
}

func TestStrategies(t *testing.T) {
	nodes := []*api.Node{schedNode("a", "4", "4Gi", "10", nil), schedNode("b", "4", "4Gi", "10", nil)}
	bound := schedPod("default", "existing", "2", "2Gi")
	bound.Spec.NodeName = "b"
	for _, c := range []struct{ strategy, want string }{{"", "a"}, {StrategyLeastAllocated, "a"}, {StrategyBinPack, "b"}} {
		s := NewScheduler(SchedulerConfig{Strategy: c.strategy}, nodes, []*api.Pod{bound})
		if got, _ := s.Schedule(schedPod("default", "new", "1", "1Gi")); got != c.want {
			t.Errorf("strategy %q: got %s, want %s", c.strategy, got, c.want)
		}
	}
}

func TestTieBreakByName(t *testing.T) {
	nodes := []*api.Node{schedNode("c", "4", "4Gi", "10", nil), schedNode("a", "4", "4Gi", "10", nil), schedNode("b", "4", "4Gi", "10", nil)}
	s := NewScheduler(SchedulerConfig{}, nodes, nil)
	if got, _ := s.Schedule(schedPod("default", "p", "1", "1Gi")); got != "a" {
		t.Errorf("got %s, want a", got)
	}
}

func TestZoneSpreadBeforeResources(t *testing.T) {
	// Zone x has the roomier node, but already one pod of the owner: the
	// next pod goes to zone y; a pod of another owner goes to the roomy node.
	nodes := []*api.Node{zoned(schedNode("x1", "16", "16Gi", "10", nil), "x"), zoned(schedNode("y1", "2", "2Gi", "10", nil), "y")}
	first := ownedPod("web-0", "web", "100m", "100Mi")
	first.Spec.NodeName = "x1"
	s := NewScheduler(SchedulerConfig{}, nodes, []*api.Pod{first})
	if got, _ := s.Schedule(ownedPod("web-1", "web", "100m", "100Mi")); got != "y1" {
		t.Errorf("same owner: got %s, want y1", got)
	}
	if got, _ := s.Schedule(ownedPod("db-0", "db", "100m", "100Mi")); got != "x1" {
		t.Errorf("other owner: got %s, want x1", got)
	}
	// Zone y is now full for a big pod: spread gives way to fit.
	if got, _ := s.Schedule(ownedPod("web-2", "web", "3", "1Gi")); got != "x1" {
		t.Errorf("no room in the emptier zone: got %s, want x1", got)
	}
	// With spread off, resources decide.
	s = NewScheduler(SchedulerConfig{DisableSpread: true}, nodes, []*api.Pod{first})
	if got, _ := s.Schedule(ownedPod("web-1", "web", "100m", "100Mi")); got != "x1" {
		t.Errorf("spread off: got %s, want x1", got)
	}
}

func TestSpreadByLabelsWithoutController(t *testing.T) {
	nodes := []*api.Node{zoned(schedNode("x1", "16", "16Gi", "10", nil), "x"), zoned(schedNode("y1", "2", "2Gi", "10", nil), "y")}
	labeled := func(name string, labels map[string]string) *api.Pod {
		p := schedPod("default", name, "100m", "100Mi")
		p.Labels = labels
		return p
	}
	s := NewScheduler(SchedulerConfig{}, nodes, nil)
	got := []string{}
	for i, l := range []map[string]string{{"app": "a"}, {"app": "a"}, {"app": "b"}, {"app": "b"}} {
		n, _ := s.Schedule(labeled(fmt.Sprint("p", i), l))
		got = append(got, n)
	}
	if strings.Join(got, ",") != "x1,y1,x1,y1" {
		t.Errorf("got %v", got)
	}
}

func TestAddRemove(t *testing.T) {
	nodes := []*api.Node{schedNode("a", "2", "2Gi", "10", nil)}
	s := NewScheduler(SchedulerConfig{}, nodes, nil)
	big := schedPod("default", "big", "2", "1Gi")
	if n, _ := s.Schedule(big); n != "a" {
		t.Fatalf("first: %s", n)
	}
	if n, ex := s.Schedule(schedPod("default", "other", "1", "")); n != "" || ex.String() != "0/1 nodes available: 1 insufficient cpu" {
		t.Fatalf("node full: got %q, %s", n, ex)
	}
	s.Remove(big)
	s.Remove(big) // twice: no effect
	other := schedPod("default", "other", "1", "")
	if n, _ := s.Schedule(other); n != "a" {
		t.Fatalf("after remove: %q", n)
	}
	// Add is an upsert: a pod that finished stops counting.
	done := other.DeepCopyObject().(*api.Pod)
	done.Spec.NodeName = "a"
	done.Status.Phase = api.PodSucceeded
	s.Add(done)
	if n, _ := s.Schedule(schedPod("default", "big2", "2", "")); n != "a" {
		t.Fatalf("after the pod finished: %q", n)
	}
	// A pod on an unknown node is not counted.
	ghost := schedPod("default", "ghost", "1", "")
	ghost.Spec.NodeName = "nowhere"
	s.Add(ghost)
	s.Remove(schedPod("default", "big2", "", ""))
	if n, _ := s.Schedule(schedPod("default", "big3", "2", "")); n != "a" {
		t.Fatalf("ghost counted: %q", n)
	}
}

func TestPreferredAffinityChoosesNode(t *testing.T) {
	nodes := []*api.Node{schedNode("a", "4", "4Gi", "10", nil), schedNode("b", "4", "4Gi", "10", map[string]string{"disk": "ssd"})}
	p := schedPod("default", "p", "1", "1Gi")
	p.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []api.PreferredSchedulingTerm{
		{Weight: 1, Preference: nsTerm(nsReq("disk", "In", "ssd"))}}}}
	if got, _ := NewScheduler(SchedulerConfig{}, nodes, nil).Schedule(p); got != "b" {
		t.Errorf("got %s, want b", got)
	}
}

func TestSchedulerConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  SchedulerConfig
		want string
	}{
		{SchedulerConfig{}, ""},
		{DefaultSchedulerConfig(), ""},
		{SchedulerConfig{Strategy: StrategyBinPack, SamplePercent: 100}, ""},
		{SchedulerConfig{Strategy: "MostRequested"}, "strategy"},
		{SchedulerConfig{SampleMin: -1}, "minimum"},
		{SchedulerConfig{SamplePercent: 101}, "percent"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestSchedulePending(t *testing.T) {
	nodes := []*api.Node{schedNode("a", "2", "2Gi", "10", nil)}
	running := schedPod("default", "running", "1", "1Gi")
	running.Spec.NodeName = "a"
	low := schedPod("default", "low", "1", "1Gi")
	high := schedPod("default", "high", "1", "1Gi")
	prio := int32(10)
	high.Spec.Priority = &prio
	high.CreationTimestamp = api.NewTime(schedNow) // younger, but higher priority
	gone := schedPod("default", "gone", "", "")
	gone.DeletionTimestamp = &api.Time{Time: schedNow}

	plan := SchedulePending(SchedulerConfig{}, nodes, []*api.Pod{low, running, gone, high}, schedNow)
	if len(plan.Update) != 1 || plan.Update[0].(*api.Pod).Name != "high" || plan.Update[0].(*api.Pod).Spec.NodeName != "a" {
		t.Fatalf("updates:\n%s", plan)
	}
	if high.Spec.NodeName != "" {
		t.Fatal("input pod changed")
	}
	if len(plan.UpdateStatus) != 1 {
		t.Fatalf("status updates:\n%s", plan)
	}
	st := plan.UpdateStatus[0].(*api.Pod)
	c := api.FindCondition(st.Status.Conditions, api.PodScheduled)
	want := api.Condition{Type: api.PodScheduled, Status: api.ConditionFalse, Reason: ReasonUnschedulable,
		Message: "0/1 nodes available: 1 insufficient cpu", LastProbeTime: api.NewTime(schedNow), LastTransitionTime: api.NewTime(schedNow)}
	if st.Name != "low" || c == nil || *c != want || st.Status.Phase != api.PodPending {
		t.Fatalf("status update: %s %+v", st.Name, c)
	}

	// Same state again (high now bound): nothing changes, nothing written.
	bound := plan.Update[0].(*api.Pod)
	again := SchedulePending(SchedulerConfig{}, nodes, []*api.Pod{st, running, bound}, schedNow.Add(time.Minute))
	if !again.Empty() {
		t.Fatalf("second run should be empty:\n%s", again)
	}
	// The message changes: the condition is rewritten, its transition time kept.
	nodes = append(nodes, schedNode("b", "500m", "4Gi", "10", nil))
	third := SchedulePending(SchedulerConfig{}, nodes, []*api.Pod{st, running, bound}, schedNow.Add(time.Minute))
	if len(third.UpdateStatus) != 1 {
		t.Fatalf("third run:\n%s", third)
	}
	c = api.FindCondition(third.UpdateStatus[0].(*api.Pod).Status.Conditions, api.PodScheduled)
	if c.Message != "0/2 nodes available: 2 insufficient cpu" || !c.LastTransitionTime.Equal(schedNow) || !c.LastProbeTime.Equal(schedNow.Add(time.Minute)) {
		t.Fatalf("rewritten condition: %+v", c)
	}
}

// Pods a plan creates are bound in it: the bound pods given count against
// their nodes, each created pod counts before the next is decided, and one
// that fits nowhere is left unbound for the scheduler's next pass.
func TestBindCreated(t *testing.T) {
	nodes := []*api.Node{schedNode("a", "2", "4Gi", "10", nil), schedNode("b", "1", "4Gi", "10", nil)}
	running := schedPod("default", "running", "1", "1Gi")
	running.Spec.NodeName = "a"
	var created []*api.Pod
	for i := range 3 {
		created = append(created, schedPod("default", fmt.Sprintf("new-%d", i), "1", "1Gi"))
	}
	unnamed := schedPod("default", "", "1", "1Gi") // planOps has not named it: left alone
	events := BindCreated(SchedulerConfig{}, nodes, []*api.Pod{running}, append(created, unnamed))
	perNode := map[string]int{"a": 1}
	var unbound []string
	for _, p := range created {
		if p.Spec.NodeName == "" {
			unbound = append(unbound, p.Name)
			continue
		}
		perNode[p.Spec.NodeName]++
	}
	// One CPU free on a (two, one used by the running pod), one on b: two
	// of the three fit.
	if perNode["a"] != 2 || perNode["b"] != 1 || len(unbound) != 1 || len(events) != 2 {
		t.Fatalf("per node %v, unbound %v, events %q", perNode, unbound, events)
	}
	if unnamed.Spec.NodeName != "" {
		t.Fatal("a pod without a name was bound")
	}
	if BindCreated(SchedulerConfig{}, nodes, nil, nil) != nil {
		t.Fatal("events for nothing created")
	}
}
