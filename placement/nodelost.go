package placement

import (
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Graces before the pods of a NotReady node are given up on.
const (
	// DefaultNodeLossGrace follows gossip's dead verdict (Ready=False,
	// reason NodeStatusUnknown). That verdict already waited out direct
	// probes, indirect probes through other members and a suspicion
	// timeout the member could refute; the grace adds a few seconds
	// against a node that flaps. `shoal agent --node-loss-grace`.
	DefaultNodeLossGrace = 3 * time.Second
	// DefaultNodeUnknownGrace applies to weaker evidence: a node that left
	// gossip on purpose (most often a restart: its pods still run) or that
	// gossip does not know. `shoal agent --node-unknown-grace`.
	DefaultNodeUnknownGrace = 40 * time.Second
)

// NodeLossInput is everything ReconcileNodeLoss reads.
type NodeLossInput struct {
	// Nodes: every node. A pod bound to a node missing here counts as lost
	// at once (the node was deleted).
	Nodes []*api.Node
	// Pods bound to nodes (others are ignored).
	Pods []*api.Pod
	// StatefulSets that own pods in Pods (for shoal.dev/allow-move).
	StatefulSets []*api.StatefulSet
	Now          time.Time
	// Grace: a node gossip declared dead (NodeDead) is lost once its Ready
	// condition has been False for this long (from lastTransitionTime,
	// which has second precision: the grace may end up to a second
	// early). 0 means DefaultNodeLossGrace.
	Grace time.Duration
	// UnknownGrace: a node NotReady for any other reason (it left, gossip
	// does not know it) is lost after this long. 0 means
	// DefaultNodeUnknownGrace.
	UnknownGrace time.Duration
}

// ReconcileNodeLoss gives up on the pods of lost nodes:
//
//   - pods of ReplicaSets are deleted, so that their ReplicaSet creates
//     replacements that the scheduler places elsewhere;
//   - pods of DaemonSets are deleted (the DaemonSet no longer wants the node);
//   - pods of StatefulSets stay, bound to the node that holds their local
//     volumes, unless the StatefulSet is annotated shoal.dev/allow-move:
//     "true", in which case they are deleted too;
//   - pods with no controller, or a controller of another kind, stay: no one
//     would re-create them;
//   - pods already terminating (deletionTimestamp set) are removed at once
//     (grace 0): the agent that would stop them and remove their object is
//     gone, and they would hang, Terminating, for ever. A terminating
//     StatefulSet pod on a node that still exists stays unless the
//     StatefulSet allows moves: two pods of one identity must never run, and
//     its node may only be cut off.
//
// Deletes carry the pod's resourceVersion. When the node returns, its agent
// stops the pods the store no longer assigns to it. Events say what was
// done and why. While a NotReady node's grace runs, the plan's
// RequeueAfter says when it runs out.
func ReconcileNodeLoss(in NodeLossInput) Plan {
	var plan Plan
	grace, unknownGrace := in.Grace, in.UnknownGrace
	if grace <= 0 {
		grace = DefaultNodeLossGrace
	}
	if unknownGrace <= 0 {
		unknownGrace = DefaultNodeUnknownGrace
	}
	lost := map[string]string{} // node → why
	exists := map[string]bool{}
	for _, n := range in.Nodes {
		exists[n.Name] = true
		c := api.FindCondition(n.Status.Conditions, api.NodeReady)
		if c == nil || c.Status == api.ConditionTrue {
			continue
		}
		g, what := unknownGrace, "Ready="+c.Status
		if NodeDead(n) {
			g, what = grace, "dead in gossip (Ready=False)"
		} else if c.Reason != "" {
			what += " (" + c.Reason + ")"
		}
		since := c.LastTransitionTime.Time
		if left := since.Add(g).Sub(in.Now); left > 0 {
			plan.RequeueAfter = sooner(plan.RequeueAfter, left)
			continue
		}
		lost[n.Name] = fmt.Sprintf("node %s has been %s for %s (grace %s)", n.Name, what,
			in.Now.Sub(since).Truncate(100*time.Millisecond), g)
	}
	allowMove := map[string]bool{}
	for _, s := range in.StatefulSets {
		allowMove[s.UID] = s.Annotations[AnnotationAllowMove] == "true"
	}
	for _, p := range in.Pods {
		node := p.Spec.NodeName
		if node == "" {
			continue
		}
		why, ok := lost[node]
		if !ok {
			if exists[node] {
				continue
			}
			why = fmt.Sprintf("node %s no longer exists", node)
		}
		id := p.Namespace + "/" + p.Name
		ref := api.ControllerOf(&p.ObjectMeta)
		if p.DeletionTimestamp != nil {
			if ref != nil && ref.Kind == "StatefulSet" && !allowMove[ref.UID] && exists[node] {
				plan.Events = append(plan.Events, fmt.Sprintf("Pod %s kept terminating: %s, but it may still run there (delete it with gracePeriodSeconds=0 to give it up)", id, why))
				continue
			}
			plan.Delete = append(plan.Delete, forced(p))
			plan.Events = append(plan.Events, fmt.Sprintf("Pod %s removed: it was terminating and %s, so its agent cannot finish", id, why))
			continue
		}
		switch {
		case ref == nil:
			plan.Events = append(plan.Events, fmt.Sprintf("Pod %s kept: %s, but it has no controller to replace it", id, why))
		case ref.Kind == "ReplicaSet":
			plan.Delete = append(plan.Delete, forced(p))
			plan.Events = append(plan.Events, fmt.Sprintf("Pod %s deleted: %s; ReplicaSet %s will replace it elsewhere", id, why, ref.Name))
		case ref.Kind == "DaemonSet":
			plan.Delete = append(plan.Delete, forced(p))
			plan.Events = append(plan.Events, fmt.Sprintf("Pod %s deleted: %s; DaemonSet %s no longer runs there", id, why, ref.Name))
		case ref.Kind == "StatefulSet" && allowMove[ref.UID]:
			plan.Delete = append(plan.Delete, forced(p))
			plan.Events = append(plan.Events, fmt.Sprintf("Pod %s deleted: %s; StatefulSet %s allows moves, its volumes start afresh elsewhere", id, why, ref.Name))
		case ref.Kind == "StatefulSet":
			plan.Events = append(plan.Events, fmt.Sprintf("Pod %s kept: %s, but its volumes are there (annotate StatefulSet %s %s=true to move it)", id, why, ref.Name, AnnotationAllowMove))
		default:
			plan.Events = append(plan.Events, fmt.Sprintf("Pod %s kept: %s; its controller %s %s is not one node loss replaces", id, why, ref.Kind, ref.Name))
		}
	}
	return plan
}

// forced is the reference of a pod of a lost node: removed at once.
func forced(p *api.Pod) Ref {
	r := RefOf(p)
	r.Force = true
	return r
}
