package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

// The properties check the scheduler against an oracle written apart from
// the filters: the numbers come from the generator, not from parsing, and
// toleration and selector matching are written again here in the plainest
// way.

type genNode struct {
	node  *api.Node
	alloc Resources
}

type genPod struct {
	pod *api.Pod
	req Resources
}

var (
	genZones   = []string{"a", "b", "c"}
	genTaints  = []*api.Taint{nil, {Key: "dedicated", Value: "db", Effect: api.TaintNoSchedule}, {Key: "gpu", Effect: api.TaintNoExecute}, {Key: "soft", Effect: api.TaintPreferNoSchedule}}
	genDisks   = []string{"", "ssd", "hdd"}
	genCPU     = []int64{0, 1000, 2000, 4000}
	genMem     = []int64{0, 1 << 30, 2 << 30, 4 << 30}
	genMaxPods = []int64{1, 2, 3, 110}
	genReqCPU  = []int64{0, 100, 500, 1000, 3000}
	genReqMem  = []int64{0, 128 << 20, 512 << 20, 1 << 30, 3 << 30}
	genTols    = [][]api.Toleration{nil, {{Key: "dedicated", Operator: "Exists"}}, {{Operator: "Exists"}}, {{Key: "gpu", Operator: "Equal", Value: "", Effect: api.TaintNoExecute}}}
	genAff     = []string{"", "NotIn hdd", "Exists"}
)

func drawNodes(t *rapid.T) []genNode {
	n := rapid.IntRange(0, 10).Draw(t, "nodes")
	out := make([]genNode, n)
	for i := range out {
		a := Resources{
			MilliCPU: rapid.SampledFrom(genCPU).Draw(t, "cpu"),
			Memory:   rapid.SampledFrom(genMem).Draw(t, "mem"),
			Pods:     rapid.SampledFrom(genMaxPods).Draw(t, "maxPods"),
		}
		node := &api.Node{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("n%02d", i), Labels: map[string]string{
			DefaultZoneLabel: rapid.SampledFrom(genZones).Draw(t, "zone")}}}
		if d := rapid.SampledFrom(genDisks).Draw(t, "disk"); d != "" {
			node.Labels["disk"] = d
		}
		node.Status.Allocatable = api.ResourceList{
			api.ResourceCPU:    api.Quantity(fmt.Sprintf("%dm", a.MilliCPU)),
			api.ResourceMemory: api.Quantity(fmt.Sprint(a.Memory)),
			api.ResourcePods:   api.Quantity(fmt.Sprint(a.Pods)),
		}
		ready := api.ConditionTrue
		if rapid.IntRange(0, 9).Draw(t, "notReady") == 0 {
			ready = api.ConditionFalse
		}
		node.Status.Conditions = []api.Condition{{Type: api.NodeReady, Status: ready}}
		node.Spec.Unschedulable = rapid.IntRange(0, 9).Draw(t, "cordon") == 0
		if taint := rapid.SampledFrom(genTaints).Draw(t, "taint"); taint != nil {
			node.Spec.Taints = []api.Taint{*taint}
		}
		out[i] = genNode{node, a}
	}
	return out
}

func drawPod(t *rapid.T, name string) genPod {
	r := Resources{MilliCPU: rapid.SampledFrom(genReqCPU).Draw(t, "reqCPU"), Memory: rapid.SampledFrom(genReqMem).Draw(t, "reqMem"), Pods: 1}
	rl := api.ResourceList{}
	if r.MilliCPU > 0 {
		rl[api.ResourceCPU] = api.Quantity(fmt.Sprintf("%dm", r.MilliCPU))
	}
	if r.Memory > 0 {
		rl[api.ResourceMemory] = api.Quantity(fmt.Sprint(r.Memory))
	}
	c := api.Container{Name: "c", Image: "i"}
	if rapid.Bool().Draw(t, "limitsOnly") {
		c.Resources.Limits = rl
	} else {
		c.Resources.Requests = rl
	}
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.PodSpec{Containers: []api.Container{c}}}
	if owner := rapid.SampledFrom([]string{"", "web", "db"}).Draw(t, "owner"); owner != "" {
		ctrl := true
		pod.OwnerReferences = []api.OwnerReference{{Kind: "ReplicaSet", Name: owner, UID: "uid-" + owner, Controller: &ctrl}}
	}
	if rapid.IntRange(0, 3).Draw(t, "selector") == 0 {
		pod.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	}
	pod.Spec.Tolerations = rapid.SampledFrom(genTols).Draw(t, "tolerations")
	switch rapid.SampledFrom(genAff).Draw(t, "affinity") {
	case "NotIn hdd":
		pod.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &api.NodeSelector{
			NodeSelectorTerms: []api.NodeSelectorTerm{nsTerm(nsReq("disk", "NotIn", "hdd"))}}}}
	case "Exists":
		pod.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &api.NodeSelector{
			NodeSelectorTerms: []api.NodeSelectorTerm{nsTerm(nsReq("disk", "Exists"))}}}}
	}
	return genPod{pod, r}
}

func drawConfig(t *rapid.T) SchedulerConfig {
	return SchedulerConfig{
		Strategy:      rapid.SampledFrom([]string{StrategyLeastAllocated, StrategyBinPack}).Draw(t, "strategy"),
		DisableSpread: rapid.IntRange(0, 3).Draw(t, "spreadOff") == 0,
		SampleMin:     rapid.IntRange(1, 4).Draw(t, "sampleMin"),
		SamplePercent: rapid.IntRange(1, 100).Draw(t, "samplePercent"),
	}
}

// oracleTolerates: some toleration has a matching (or empty) effect, a
// matching (or empty) key, and Exists or an equal value.
func oracleTolerates(tols []api.Toleration, key, value, effect string) bool {
	for _, tl := range tols {
		effectOK := tl.Effect == "" || tl.Effect == effect
		keyOK := tl.Key == "" || tl.Key == key
		valueOK := tl.Operator == "Exists" || ((tl.Operator == "" || tl.Operator == "Equal") && tl.Value == value)
		if effectOK && keyOK && valueOK {
			return true
		}
	}
	return false
}

// oracleFits decides from first principles whether the pod may go on the
// node given what the node's pods already request.
func oracleFits(p genPod, n genNode, used Resources) bool {
	spec, node := &p.pod.Spec, n.node
	if node.Status.Conditions[0].Status != api.ConditionTrue && !oracleTolerates(spec.Tolerations, TaintNodeNotReady, "", api.TaintNoSchedule) {
		return false
	}
	if node.Spec.Unschedulable && !oracleTolerates(spec.Tolerations, TaintNodeUnschedulable, "", api.TaintNoSchedule) {
		return false
	}
	for _, tn := range node.Spec.Taints {
		if tn.Effect != api.TaintPreferNoSchedule && !oracleTolerates(spec.Tolerations, tn.Key, tn.Value, tn.Effect) {
			return false
		}
	}
	disk, hasDisk := node.Labels["disk"]
	if spec.NodeSelector != nil && disk != "ssd" {
		return false
	}
	if a := spec.Affinity; a != nil {
		switch a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Operator {
		case "NotIn":
			if disk == "hdd" {
				return false
			}
		case "Exists":
			if !hasDisk {
				return false
			}
		}
	}
	if used.Pods+1 > n.alloc.Pods {
		return false
	}
	if p.req.MilliCPU > 0 && used.MilliCPU+p.req.MilliCPU > n.alloc.MilliCPU {
		return false
	}
	return p.req.Memory == 0 || used.Memory+p.req.Memory <= n.alloc.Memory
}

// Placements respect every filter and never overcommit a node; a pod is
// left unplaced only when the oracle agrees no node fits, and then the
// explanation accounts for every node.
func TestSchedulerRespectsFiltersProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nodes := drawNodes(t)
		apiNodes := make([]*api.Node, len(nodes))
		used := make([]Resources, len(nodes))
		for i, n := range nodes {
			apiNodes[i] = n.node
		}
		var bound []*api.Pod
		if len(nodes) > 0 {
			for i := range rapid.IntRange(0, 6).Draw(t, "bound") {
				p := drawPod(t, fmt.Sprintf("bound-%d", i))
				k := rapid.IntRange(0, len(nodes)-1).Draw(t, "boundNode")
				p.pod.Spec.NodeName = nodes[k].node.Name
				bound = append(bound, p.pod)
				used[k] = used[k].Add(p.req)
			}
		}
		s := NewScheduler(drawConfig(t), apiNodes, bound)
		landed := make([]bool, len(nodes))
		for i := range rapid.IntRange(1, 25).Draw(t, "pending") {
			p := drawPod(t, fmt.Sprintf("p-%d", i))
			name, ex := s.Schedule(p.pod)
			if name == "" {
				for k, n := range nodes {
					if oracleFits(p, n, used[k]) {
						t.Fatalf("%s left unplaced but fits %s (%s)", p.pod.Name, n.node.Name, ex)
					}
				}
				sum := ex.Feasible
				for _, c := range ex.Reasons {
					sum += c
				}
				if ex.Feasible != 0 || ex.Total != len(nodes) || sum != len(nodes) {
					t.Fatalf("explanation %+v does not account for %d nodes", ex, len(nodes))
				}
				continue
			}
			k := slices.IndexFunc(nodes, func(n genNode) bool { return n.node.Name == name })
			if k < 0 || !oracleFits(p, nodes[k], used[k]) {
				t.Fatalf("%s placed on %s, which does not fit it (used %+v)", p.pod.Name, name, used[max(k, 0)])
			}
			if ex.Feasible < 1 || ex.Total != len(nodes) {
				t.Fatalf("explanation of a placement: %+v", ex)
			}
			used[k] = used[k].Add(p.req)
			landed[k] = true
		}
		for k, n := range nodes {
			if landed[k] && used[k].Pods > n.alloc.Pods {
				t.Fatalf("%s holds %d pods, allocatable %d", n.node.Name, used[k].Pods, n.alloc.Pods)
			}
		}
	})
}

// With equal zones that all have room, the pods of each owner stay within
// one of each other across zones after every placement; when every
// feasible node is scored, also across nodes.
func TestSpreadBalancesZonesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		zones := rapid.IntRange(2, 5).Draw(t, "zones")
		perZone := rapid.IntRange(1, 4).Draw(t, "perZone")
		var nodes []*api.Node
		zoneOf := map[string]string{}
		for z := range zones {
			for k := range perZone {
				n := zoned(schedNode(fmt.Sprintf("n-%d-%d", z, k), "64", "64Gi", "110", nil), fmt.Sprintf("z%d", z))
				nodes = append(nodes, n)
				zoneOf[n.Name] = n.Labels[DefaultZoneLabel]
			}
		}
		cfg := SchedulerConfig{SampleMin: rapid.IntRange(1, 4).Draw(t, "sampleMin"), SamplePercent: rapid.IntRange(1, 100).Draw(t, "samplePercent"),
			Strategy: rapid.SampledFrom([]string{StrategyLeastAllocated, StrategyBinPack}).Draw(t, "strategy")}
		exact := cfg.SamplePercent == 100
		s := NewScheduler(cfg, nodes, nil)
		zoneCount := map[string]map[string]int{"a": {}, "b": {}}
		nodeCount := map[string]map[string]int{"a": {}, "b": {}}
		for i := range rapid.IntRange(1, 40).Draw(t, "pods") {
			owner := rapid.SampledFrom([]string{"a", "b"}).Draw(t, "owner")
			name, _ := s.Schedule(ownedPod(fmt.Sprint("p", i), owner, "100m", "64Mi"))
			if name == "" {
				t.Fatal("unplaced")
			}
			zoneCount[owner][zoneOf[name]]++
			nodeCount[owner][name]++
			spreadWithinOne(t, "zone", zoneCount[owner], zones)
			if exact {
				spreadWithinOne(t, "node", nodeCount[owner], len(nodes))
			}
		}
	})
}

func spreadWithinOne(t *rapid.T, what string, counts map[string]int, n int) {
	lo, hi := 0, 0
	if len(counts) == n {
		lo = counts[func() string {
			for k := range counts {
				return k
			}
			return ""
		}()]
	}
	for _, c := range counts {
		if len(counts) == n {
			lo = min(lo, c)
		}
		hi = max(hi, c)
	}
	if hi-lo > 1 {
		t.Fatalf("%s counts %v over %d: spread %d", what, counts, n, hi-lo)
	}
}

// The same cluster and pods, in any order, give the same plan.
func TestSchedulePendingDeterministicProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nodes := drawNodes(t)
		apiNodes := make([]*api.Node, len(nodes))
		for i, n := range nodes {
			apiNodes[i] = n.node
		}
		var pods []*api.Pod
		for i := range rapid.IntRange(0, 20).Draw(t, "pods") {
			p := drawPod(t, fmt.Sprintf("p-%02d", i))
			if len(nodes) > 0 && rapid.IntRange(0, 3).Draw(t, "isBound") == 0 {
				p.pod.Spec.NodeName = nodes[rapid.IntRange(0, len(nodes)-1).Draw(t, "node")].node.Name
			}
			pods = append(pods, p.pod)
		}
		cfg := drawConfig(t)
		render := func(pl Plan) string {
			out := pl.String()
			for _, o := range pl.Update {
				out += o.(*api.Pod).Name + "→" + o.(*api.Pod).Spec.NodeName + "\n"
			}
			for _, o := range pl.UpdateStatus {
				out += o.(*api.Pod).Name + ": " + api.FindCondition(o.(*api.Pod).Status.Conditions, api.PodScheduled).Message + "\n"
			}
			return out
		}
		want := render(SchedulePending(cfg, apiNodes, pods, schedNow))
		got := render(SchedulePending(cfg, rapid.Permutation(apiNodes).Draw(t, "nodeOrder"), rapid.Permutation(pods).Draw(t, "podOrder"), schedNow))
		if got != want {
			t.Fatalf("order changed the plan:\n%s\nvs\n%s", want, got)
		}
	})
}
