package placement

import (
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Liveness is what gossip says about one node.
type Liveness struct {
	Alive bool      // alive in gossip; false means dead or left
	Left  bool      // not alive because it announced its departure (not a failure)
	Since time.Time // when gossip saw it enter that state
	Known bool      // gossip knows the node at all
}

// Reasons of the Ready condition the leader derives from gossip.
const (
	ReasonGossipAlive = "GossipAlive"
	// ReasonNodeStatusUnknown: gossip declared the node dead (it failed
	// direct and indirect probes and did not refute the suspicion in
	// time), so nothing is known of its pods any more (Kubernetes'
	// wording). The strongest evidence of a failure Shoal has: node loss
	// acts on it after a short grace.
	ReasonNodeStatusUnknown = "NodeStatusUnknown"
	// ReasonNodeLeft: the agent announced that it leaves gossip (a graceful
	// stop, often a restart); its pods may well still run.
	ReasonNodeLeft = "NodeLeft"
	// ReasonNotInGossip: gossip does not know the node (never joined, or
	// forgotten long ago).
	ReasonNotInGossip = "NotInGossip"
)

// NodeReadiness decides the Ready condition of each node from gossip:
// True when the node is alive, False when it is dead (reason
// NodeStatusUnknown) or left (NodeLeft), Unknown when
// gossip does not know it (a name missing from live counts as unknown). It
// returns deep copies of only the nodes whose condition must change, in
// input order, with lastTransitionTime set to now when the status flips, so
// that the leader writes nothing while nothing changes.
func NodeReadiness(nodes []*api.Node, live map[string]Liveness, now time.Time) []*api.Node {
	var out []*api.Node
	for _, n := range nodes {
		if n == nil {
			continue
		}
		want := readyCondition(live[n.Name])
		cur, i := readyOf(n)
		if cur != nil && cur.Status == want.Status && cur.Reason == want.Reason {
			continue
		}
		c := n.DeepCopyObject().(*api.Node)
		want.LastTransitionTime = api.NewTime(now)
		if cur != nil && cur.Status == want.Status {
			want.LastTransitionTime = cur.LastTransitionTime // only the reason changed
		}
		want.LastUpdateTime = api.NewTime(now)
		if i < 0 {
			c.Status.Conditions = append(c.Status.Conditions, want)
		} else {
			c.Status.Conditions[i] = want
		}
		out = append(out, c)
	}
	return out
}

// readyCondition is the Ready condition l calls for, without times.
func readyCondition(l Liveness) api.Condition {
	since := func() string {
		if l.Since.IsZero() {
			return ""
		}
		return " since " + l.Since.UTC().Format(time.RFC3339)
	}
	switch {
	case !l.Known:
		return api.Condition{Type: api.NodeReady, Status: api.ConditionUnknown, Reason: ReasonNotInGossip,
			Message: "gossip does not know this node"}
	case l.Alive:
		return api.Condition{Type: api.NodeReady, Status: api.ConditionTrue, Reason: ReasonGossipAlive,
			Message: "gossip: alive" + since()}
	case l.Left:
		return api.Condition{Type: api.NodeReady, Status: api.ConditionFalse, Reason: ReasonNodeLeft,
			Message: "gossip: left" + since()}
	default:
		return api.Condition{Type: api.NodeReady, Status: api.ConditionFalse, Reason: ReasonNodeStatusUnknown,
			Message: "gossip: dead" + since()}
	}
}

// readyOf returns the node's Ready condition and its index, or nil and -1.
func readyOf(n *api.Node) (*api.Condition, int) {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == api.NodeReady {
			return &n.Status.Conditions[i], i
		}
	}
	return nil, -1
}

// NodeDead reports whether gossip declared n dead: its Ready condition is
// False with reason NodeStatusUnknown.
func NodeDead(n *api.Node) bool {
	c, _ := readyOf(n)
	return c != nil && c.Status == api.ConditionFalse && c.Reason == ReasonNodeStatusUnknown
}

// NodeNotReady reports whether n has a Ready condition that is not True
// (False or Unknown). A node with no Ready condition yet is not counted:
// the leader has not judged it.
func NodeNotReady(n *api.Node) bool {
	c, _ := readyOf(n)
	return c != nil && c.Status != api.ConditionTrue
}
