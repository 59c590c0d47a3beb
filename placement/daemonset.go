package placement

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// DaemonSetInput is everything ReconcileDaemonSet reads.
type DaemonSetInput struct {
	DaemonSet *api.DaemonSet
	// Nodes: every node of the cluster.
	Nodes []*api.Node
	// Pods of the set's namespace; those it controls are used.
	Pods []*api.Pod
	Now  time.Time
	// NameSuffix names the i-th pod created by this reconcile; nil means
	// HashSuffix(uid/resourceVersion, i).
	NameSuffix func(i int) string
}

// ReconcileDaemonSet keeps one pod of the template on every eligible node:
// Ready, schedulable, matching the template's nodeSelector and required
// node affinity, with every NoSchedule/NoExecute taint tolerated. Pods are
// created with spec.nodeName set (the scheduler is not involved). Pods on
// nodes no longer eligible, extra pods on one node and Failed pods are
// deleted. RollingUpdate replaces pods whose revision (controller-revision-
// hash) is not the template's: not-available ones at once, available ones
// only as far as maxUnavailable (percent of the eligible nodes, rounded up)
// allows. maxSurge is not supported (treated as 0). OnDelete never replaces.
// Status is written only when it changed.
func ReconcileDaemonSet(in DaemonSetInput) Plan {
	var plan Plan
	ds := in.DaemonSet
	if ds == nil || ds.DeletionTimestamp != nil {
		return plan
	}
	say := func(format string, a ...any) {
		plan.Events = append(plan.Events, fmt.Sprintf("DaemonSet %s/%s: ", ds.Namespace, ds.Name)+fmt.Sprintf(format, a...))
	}
	revision := TemplateHash(&ds.Spec.Template, 0)
	byNode := map[string][]*api.Pod{}
	terminatingOn := map[string]bool{}
	for _, p := range in.Pods {
		if p.Namespace != ds.Namespace || controllerUID(&p.ObjectMeta) != ds.UID {
			continue
		}
		switch {
		case p.DeletionTimestamp != nil:
			terminatingOn[p.Spec.NodeName] = true
		case p.Status.Phase == api.PodFailed || p.Status.Phase == api.PodSucceeded:
			say("deleting %s pod %s on %s", p.Status.Phase, p.Name, p.Spec.NodeName)
			plan.Delete = append(plan.Delete, RefOf(p))
			terminatingOn[p.Spec.NodeName] = true
		default:
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	nodes := append([]*api.Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	known := map[string]bool{}

	namer := newPodNamer(ds.Name, ds.UID+"/"+ds.ResourceVersion, in.NameSuffix, in.Pods)
	var st api.DaemonSetStatus
	var kept []*api.Pod // the one pod of each eligible node
	for _, n := range nodes {
		known[n.Name] = true
		pods := byNode[n.Name]
		ok, why := DaemonSetFits(&ds.Spec.Template.Spec, n)
		if !ok {
			if len(pods) > 0 {
				st.NumberMisscheduled++
			}
			for _, p := range pods {
				say("deleting pod %s: node %s %s", p.Name, n.Name, why)
				plan.Delete = append(plan.Delete, RefOf(p))
			}
			continue
		}
		st.DesiredNumberScheduled++
		if len(pods) == 0 {
			if !terminatingOn[n.Name] {
				p := podFromTemplate(&ds.Spec.Template, ds, namer.name(), map[string]string{LabelControllerRevision: revision})
				p.Spec.NodeName = n.Name
				plan.Create = append(plan.Create, p)
				say("creating pod %s on node %s", p.Name, n.Name)
			}
			continue
		}
		st.CurrentNumberScheduled++
		// Keep the best pod: current revision, ready, older.
		sort.SliceStable(pods, func(i, j int) bool {
			a, b := pods[i], pods[j]
			if x, y := a.Labels[LabelControllerRevision] == revision, b.Labels[LabelControllerRevision] == revision; x != y {
				return x
			}
			if x, y := podIsReady(a), podIsReady(b); x != y {
				return x
			}
			return olderFirst(&a.ObjectMeta, &b.ObjectMeta)
		})
		for _, p := range pods[1:] {
			say("deleting extra pod %s on node %s", p.Name, n.Name)
			plan.Delete = append(plan.Delete, RefOf(p))
		}
		kept = append(kept, pods[0])
	}
	for _, node := range sortedKeys(byNode) {
		if known[node] {
			continue
		}
		st.NumberMisscheduled++
		for _, p := range byNode[node] {
			say("deleting pod %s: node %q does not exist", p.Name, node)
			plan.Delete = append(plan.Delete, RefOf(p))
		}
	}

	for _, p := range kept {
		if podIsReady(p) {
			st.NumberReady++
		}
		if podIsAvailable(p, ds.Spec.MinReadySeconds, in.Now) {
			st.NumberAvailable++
		}
		if p.Labels[LabelControllerRevision] == revision {
			st.UpdatedNumberScheduled++
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable

	if ds.Spec.UpdateStrategy.Type != api.OnDeleteStrategy {
		maxUnavailable := 1
		if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
			v, err := ru.MaxUnavailable.ScaledValue(int(st.DesiredNumberScheduled), true)
			if err != nil {
				say("spec.updateStrategy.rollingUpdate.maxUnavailable: %v", err)
			} else {
				maxUnavailable = max(v, 1)
			}
		}
		budget := maxUnavailable - int(st.NumberUnavailable)
		for _, p := range kept {
			if p.Labels[LabelControllerRevision] == revision {
				continue
			}
			if !podIsAvailable(p, ds.Spec.MinReadySeconds, in.Now) {
				say("updating pod %s on %s (not available)", p.Name, p.Spec.NodeName)
				plan.Delete = append(plan.Delete, RefOf(p))
				continue
			}
			if budget > 0 {
				budget--
				say("updating pod %s on %s", p.Name, p.Spec.NodeName)
				plan.Delete = append(plan.Delete, RefOf(p))
			}
		}
	}

	st.ObservedGeneration = ds.Generation
	st.Conditions = ds.Status.Conditions
	if !reflect.DeepEqual(st, ds.Status) {
		c := ds.DeepCopyObject().(*api.DaemonSet)
		c.Status = st
		plan.UpdateStatus = append(plan.UpdateStatus, c)
	}
	return plan
}

// DaemonSetFits reports whether a pod of spec may run on n, and if not,
// why: Ready, schedulable, nodeSelector, required node affinity, taints.
func DaemonSetFits(spec *api.PodSpec, n *api.Node) (bool, string) {
	if c := api.FindCondition(n.Status.Conditions, api.NodeReady); c == nil || c.Status != api.ConditionTrue {
		return false, "is not Ready"
	}
	if n.Spec.Unschedulable {
		return false, "is unschedulable"
	}
	if !labelsContain(n.Labels, spec.NodeSelector) {
		return false, "does not match nodeSelector"
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if !slices.ContainsFunc(terms, func(t api.NodeSelectorTerm) bool { return dsTermMatches(t, n.Labels) }) {
			return false, "does not match required node affinity"
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Effect != api.TaintNoSchedule && t.Effect != api.TaintNoExecute {
			continue
		}
		if !slices.ContainsFunc(spec.Tolerations, func(tol api.Toleration) bool { return dsTolerates(tol, t) }) {
			return false, fmt.Sprintf("has taint %s=%s:%s", t.Key, t.Value, t.Effect)
		}
	}
	return true, ""
}

// dsTermMatches: every expression of the term holds on labels.
func dsTermMatches(t api.NodeSelectorTerm, labels map[string]string) bool {
	if len(t.MatchExpressions) == 0 {
		return false // an empty term matches nothing, as in Kubernetes
	}
	for _, e := range t.MatchExpressions {
		v, ok := labels[e.Key]
		switch e.Operator {
		case "In":
			if !ok || !slices.Contains(e.Values, v) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func dsTolerates(tol api.Toleration, t api.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Operator == "Exists" {
		return tol.Key == "" || tol.Key == t.Key
	}
	return tol.Key == t.Key && tol.Value == t.Value
}
