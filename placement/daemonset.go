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
	ds := in.DaemonSet
	if ds == nil || ds.DeletionTimestamp != nil {
		return Plan{}
	}
	r := &daemonSetReconcile{
		in:            in,
		ds:            ds,
		revision:      TemplateHash(&ds.Spec.Template, 0),
		byNode:        map[string][]*api.Pod{},
		terminatingOn: map[string]bool{},
	}
	r.gatherPods()
	r.placeOnNodes()
	r.countKept()
	if ds.Spec.UpdateStrategy.Type != api.OnDeleteStrategy {
		r.rollingUpdate()
	}

	st := r.st
	st.ObservedGeneration = ds.Generation
	st.Conditions = ds.Status.Conditions
	if !reflect.DeepEqual(st, ds.Status) {
		c := ds.DeepCopyObject().(*api.DaemonSet)
		c.Status = st
		r.plan.UpdateStatus = append(r.plan.UpdateStatus, c)
	}
	return r.plan
}

// daemonSetReconcile is the working state of one ReconcileDaemonSet: each
// step below reads what the steps before it found and adds to the plan.
type daemonSetReconcile struct {
	in       DaemonSetInput
	ds       *api.DaemonSet
	revision string // the template's controller-revision-hash

	byNode        map[string][]*api.Pod // the set's live pods by node
	terminatingOn map[string]bool       // nodes where a pod of the set is going away
	kept          []*api.Pod            // the one pod of each eligible node

	st   api.DaemonSetStatus // the counts, as the steps find them
	plan Plan
}

func (r *daemonSetReconcile) say(format string, a ...any) {
	r.plan.Events = append(r.plan.Events, fmt.Sprintf("DaemonSet %s/%s: ", r.ds.Namespace, r.ds.Name)+fmt.Sprintf(format, a...))
}

// gatherPods groups the set's live pods by node, deletes finished ones,
// and notes the nodes where a pod is terminating (no new pod goes there
// until it is gone).
func (r *daemonSetReconcile) gatherPods() {
	for _, p := range r.in.Pods {
		if p.Namespace != r.ds.Namespace || controllerUID(&p.ObjectMeta) != r.ds.UID {
			continue
		}
		switch {
		case p.DeletionTimestamp != nil:
			r.terminatingOn[p.Spec.NodeName] = true
		case p.Status.Phase == api.PodFailed || p.Status.Phase == api.PodSucceeded:
			r.say("deleting %s pod %s on %s", p.Status.Phase, p.Name, p.Spec.NodeName)
			r.plan.Delete = append(r.plan.Delete, RefOf(p))
			r.terminatingOn[p.Spec.NodeName] = true
		default:
			r.byNode[p.Spec.NodeName] = append(r.byNode[p.Spec.NodeName], p)
		}
	}
}

// placeOnNodes goes over the nodes in name order, then over the nodes that
// pods name but that do not exist: ineligible ones lose their pods,
// eligible ones get a pod if they have none and keep only their best.
func (r *daemonSetReconcile) placeOnNodes() {
	nodes := append([]*api.Node(nil), r.in.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	known := map[string]bool{}
	namer := newPodNamer(r.ds.Name, r.ds.UID+"/"+r.ds.ResourceVersion, r.in.NameSuffix, r.in.Pods)
	for _, n := range nodes {
		known[n.Name] = true
		r.placeOnNode(n, namer)
	}
	for _, node := range sortedKeys(r.byNode) {
		if known[node] {
			continue
		}
		r.st.NumberMisscheduled++
		for _, p := range r.byNode[node] {
			r.say("deleting pod %s: node %q does not exist", p.Name, node)
			r.plan.Delete = append(r.plan.Delete, RefOf(p))
		}
	}
}

// placeOnNode brings one node to the set's wish: no pod when it is not
// eligible, else exactly one, the best of those there (current revision,
// ready, older).
func (r *daemonSetReconcile) placeOnNode(n *api.Node, namer *podNamer) {
	pods := r.byNode[n.Name]
	ok, why := DaemonSetFits(&r.ds.Spec.Template.Spec, n)
	if !ok {
		if len(pods) > 0 {
			r.st.NumberMisscheduled++
		}
		for _, p := range pods {
			r.say("deleting pod %s: node %s %s", p.Name, n.Name, why)
			r.plan.Delete = append(r.plan.Delete, RefOf(p))
		}
		return
	}
	r.st.DesiredNumberScheduled++
	if len(pods) == 0 {
		if !r.terminatingOn[n.Name] {
			p := podFromTemplate(&r.ds.Spec.Template, r.ds, namer.name(), map[string]string{LabelControllerRevision: r.revision})
			p.Spec.NodeName = n.Name
			r.plan.Create = append(r.plan.Create, p)
			r.say("creating pod %s on node %s", p.Name, n.Name)
		}
		return
	}
	r.st.CurrentNumberScheduled++
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if x, y := a.Labels[LabelControllerRevision] == r.revision, b.Labels[LabelControllerRevision] == r.revision; x != y {
			return x
		}
		if x, y := podIsReady(a), podIsReady(b); x != y {
			return x
		}
		return olderFirst(&a.ObjectMeta, &b.ObjectMeta)
	})
	for _, p := range pods[1:] {
		r.say("deleting extra pod %s on node %s", p.Name, n.Name)
		r.plan.Delete = append(r.plan.Delete, RefOf(p))
	}
	r.kept = append(r.kept, pods[0])
}

// countKept counts the kept pods that are ready, available and updated.
func (r *daemonSetReconcile) countKept() {
	for _, p := range r.kept {
		if podIsReady(p) {
			r.st.NumberReady++
		}
		if podIsAvailable(p, r.ds.Spec.MinReadySeconds, r.in.Now) {
			r.st.NumberAvailable++
		}
		if p.Labels[LabelControllerRevision] == r.revision {
			r.st.UpdatedNumberScheduled++
		}
	}
	r.st.NumberUnavailable = r.st.DesiredNumberScheduled - r.st.NumberAvailable
}

// rollingUpdate deletes kept pods of an old revision: the unavailable ones
// at once, available ones as far as maxUnavailable allows.
func (r *daemonSetReconcile) rollingUpdate() {
	ds := r.ds
	maxUnavailable := 1
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		v, err := ru.MaxUnavailable.ScaledValue(int(r.st.DesiredNumberScheduled), true)
		if err != nil {
			r.say("spec.updateStrategy.rollingUpdate.maxUnavailable: %v", err)
		} else {
			maxUnavailable = max(v, 1)
		}
	}
	budget := maxUnavailable - int(r.st.NumberUnavailable)
	for _, p := range r.kept {
		if p.Labels[LabelControllerRevision] == r.revision {
			continue
		}
		if !podIsAvailable(p, ds.Spec.MinReadySeconds, r.in.Now) {
			r.say("updating pod %s on %s (not available)", p.Name, p.Spec.NodeName)
			r.plan.Delete = append(r.plan.Delete, RefOf(p))
			continue
		}
		if budget > 0 {
			budget--
			r.say("updating pod %s on %s", p.Name, p.Spec.NodeName)
			r.plan.Delete = append(r.plan.Delete, RefOf(p))
		}
	}
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
