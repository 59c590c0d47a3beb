package placement

import (
	"slices"

	"github.com/shoal-dev/shoal/api"
)

// A filter rules out the nodes a pod cannot run on, and says why in a few
// words that read after a count: "3 insufficient memory". Each filter is a
// tiny type; the scheduler runs them in the order of the two lists below
// and counts a rejected node under the first reason it gets, so the counts
// of an Explanation add up to the nodes that were ruled out.
type filter interface {
	// Name identifies the filter (docs, tests).
	Name() string
	// Reject returns why node n cannot take pod p, or "" when it can.
	Reject(p *podInfo, n *nodeInfo) string
}

// Reasons the filters give (Explanation.Reasons keys). A taint's reason
// also names the taint: RejectTaint + "key=value:Effect".
const (
	RejectNotReady     = "not ready"
	RejectCordoned     = "unschedulable"
	RejectTaint        = "had untolerated taint "
	RejectNodeSelector = "did not match nodeSelector"
	RejectNodeAffinity = "did not match node affinity"
	RejectTooManyPods  = "too many pods"
	RejectCPU          = "insufficient cpu"
	RejectMemory       = "insufficient memory"
)

// Taints through which Kubernetes expresses the two node states below; a pod
// that tolerates one (a DaemonSet's, typically) is not held back by it.
const (
	TaintNodeNotReady      = "node.kubernetes.io/not-ready"
	TaintNodeUnschedulable = "node.kubernetes.io/unschedulable"
)

// staticFilters depend only on the pod's spec and the node object, never on
// what runs there, so the scheduler evaluates them once per distinct pod
// shape (nodeSelector, affinity, tolerations) and caches the nodes that
// pass. Their order decides which reason a node that fails several gets:
// node state first, then the pod's own constraints.
var staticFilters = []filter{
	nodeReady{},
	nodeSchedulable{},
	taintToleration{},
	nodeSelectorMatch{},
	requiredNodeAffinity{},
}

// dynamicFilters depend on the pods already placedPod and run on every node the
// scheduler considers, cheapest first.
var dynamicFilters = []filter{
	podCountFits{},
	cpuFits{},
	memoryFits{},
}

// nodeReady: the node's Ready condition is True.
type nodeReady struct{}

func (nodeReady) Name() string { return "NodeReady" }
func (nodeReady) Reject(p *podInfo, n *nodeInfo) string {
	if c := api.FindCondition(n.node.Status.Conditions, api.NodeReady); c != nil && c.Status == api.ConditionTrue {
		return ""
	}
	if Tolerates(p.pod.Spec.Tolerations, &api.Taint{Key: TaintNodeNotReady, Effect: api.TaintNoSchedule}) {
		return ""
	}
	return RejectNotReady
}

// nodeSchedulable: the node is not cordoned (spec.unschedulable).
type nodeSchedulable struct{}

func (nodeSchedulable) Name() string { return "NodeSchedulable" }
func (nodeSchedulable) Reject(p *podInfo, n *nodeInfo) string {
	if !n.node.Spec.Unschedulable ||
		Tolerates(p.pod.Spec.Tolerations, &api.Taint{Key: TaintNodeUnschedulable, Effect: api.TaintNoSchedule}) {
		return ""
	}
	return RejectCordoned
}

// taintToleration: every NoSchedule and NoExecute taint of the node is
// tolerated by the pod. PreferNoSchedule taints do not filter.
type taintToleration struct{}

func (taintToleration) Name() string { return "TaintToleration" }
func (taintToleration) Reject(p *podInfo, n *nodeInfo) string {
	for i := range n.node.Spec.Taints {
		t := &n.node.Spec.Taints[i]
		if t.Effect != api.TaintNoSchedule && t.Effect != api.TaintNoExecute {
			continue
		}
		if !Tolerates(p.pod.Spec.Tolerations, t) {
			return RejectTaint + taintString(t)
		}
	}
	return ""
}

// taintString writes a taint as kubectl does: key=value:Effect.
func taintString(t *api.Taint) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + t.Effect
}

// Tolerates reports whether any of the tolerations matches the taint
// (Kubernetes' matching, see tolerationMatches). Exported for the
// controllers (DaemonSet eligibility follows the same rules).
func Tolerates(tols []api.Toleration, t *api.Taint) bool {
	for i := range tols {
		if tolerationMatches(&tols[i], t) {
			return true
		}
	}
	return false
}

// tolerationMatches is Kubernetes' matching: an empty effect matches every
// effect, an empty key matches every key, Exists ignores the value and Equal
// (the default operator) compares it.
func tolerationMatches(tol *api.Toleration, t *api.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case "", "Equal":
		return tol.Value == t.Value
	case "Exists":
		return true
	}
	return false
}

// nodeSelectorMatch: the node carries every label of spec.nodeSelector.
type nodeSelectorMatch struct{}

func (nodeSelectorMatch) Name() string { return "NodeSelector" }
func (nodeSelectorMatch) Reject(p *podInfo, n *nodeInfo) string {
	for k, v := range p.pod.Spec.NodeSelector {
		if have, ok := n.node.Labels[k]; !ok || have != v {
			return RejectNodeSelector
		}
	}
	return ""
}

// requiredNodeAffinity: the node matches at least one term of
// requiredDuringSchedulingIgnoredDuringExecution (terms are ORed, the
// expressions of a term ANDed; a term without expressions matches nothing).
type requiredNodeAffinity struct{}

func (requiredNodeAffinity) Name() string { return "NodeAffinity" }
func (requiredNodeAffinity) Reject(p *podInfo, n *nodeInfo) string {
	a := p.pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for i := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(&a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i], n.node.Labels) {
			return ""
		}
	}
	return RejectNodeAffinity
}

// termMatches reports whether labels satisfy every expression of the term.
func termMatches(t *api.NodeSelectorTerm, labels map[string]string) bool {
	if len(t.MatchExpressions) == 0 {
		return false
	}
	for i := range t.MatchExpressions {
		if !requirementMatches(&t.MatchExpressions[i], labels) {
			return false
		}
	}
	return true
}

// requirementMatches implements In, NotIn, Exists and DoesNotExist; NotIn
// holds on a node without the label, as in Kubernetes. Other operators
// match nothing.
func requirementMatches(r *api.NodeSelectorRequirement, labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case "In":
		return ok && slices.Contains(r.Values, v)
	case "NotIn":
		return !ok || !slices.Contains(r.Values, v)
	case "Exists":
		return ok
	case "DoesNotExist":
		return !ok
	}
	return false
}

// podCountFits: the node runs fewer pods than its allocatable pod count.
type podCountFits struct{}

func (podCountFits) Name() string { return "PodCount" }
func (podCountFits) Reject(p *podInfo, n *nodeInfo) string {
	if n.used.Pods+1 > n.alloc.Pods {
		return RejectTooManyPods
	}
	return ""
}

// cpuFits: the pod's cpu request fits in allocatable minus requested.
type cpuFits struct{}

func (cpuFits) Name() string { return "CPU" }
func (cpuFits) Reject(p *podInfo, n *nodeInfo) string {
	if p.req.MilliCPU > 0 && p.req.MilliCPU > n.alloc.MilliCPU-n.used.MilliCPU {
		return RejectCPU
	}
	return ""
}

// memoryFits: the pod's memory request fits in allocatable minus requested.
type memoryFits struct{}

func (memoryFits) Name() string { return "Memory" }
func (memoryFits) Reject(p *podInfo, n *nodeInfo) string {
	if p.req.Memory > 0 && p.req.Memory > n.alloc.Memory-n.used.Memory {
		return RejectMemory
	}
	return ""
}
