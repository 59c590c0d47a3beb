package placement

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func nodeDownSince(name, status string, since time.Time) *api.Node {
	n := readyNode(name)
	n.Status.Conditions[0].Status = status
	n.Status.Conditions[0].LastTransitionTime = api.NewTime(since)
	return n
}

func TestReconcileNodeLoss(t *testing.T) {
	rs := testRS("web", 3, appX)
	ds := testDS()
	sts := testSTS(1, "")
	moveSTS := testSTS(1, "")
	moveSTS.Name, moveSTS.UID = "cache", "uid-cache"
	moveSTS.Annotations = map[string]string{AnnotationAllowMove: "true"}
	yes := true
	job := func(p *api.Pod) {
		p.OwnerReferences = []api.OwnerReference{{Kind: "Job", Name: "j", UID: "uid-j", Controller: &yes}}
	}
	nodes := []*api.Node{
		readyNode("up"),
		nodeDownSince("down", api.ConditionFalse, t0.Add(-time.Minute)),
		nodeDownSince("unknown", api.ConditionUnknown, t0.Add(-time.Minute)),
		nodeDownSince("fresh", api.ConditionFalse, t0.Add(-10*time.Second)),
	}
	pods := []*api.Pod{
		testPod("rs-up", appX, ownedBy(rs), onNode("up")),
		testPod("rs-down", appX, ownedBy(rs), onNode("down")),
		testPod("rs-unknown", appX, ownedBy(rs), onNode("unknown")),
		testPod("rs-fresh", appX, ownedBy(rs), onNode("fresh")),
		testPod("rs-deleted-node", appX, ownedBy(rs), onNode("vanished")),
		testPod("rs-terminating", appX, ownedBy(rs), onNode("down"), terminating()),
		testPod("bare-terminating", appX, onNode("down"), terminating()),
		testPod("db-1", appX, ownedBy(sts), onNode("down"), terminating()),
		testPod("db-2", appX, ownedBy(sts), onNode("vanished"), terminating()),
		testPod("cache-1", appX, ownedBy(moveSTS), onNode("down"), terminating()),
		testPod("up-terminating", appX, ownedBy(rs), onNode("up"), terminating()),
		testPod("fresh-terminating", appX, ownedBy(rs), onNode("fresh"), terminating()),
		testPod("ds-down", appX, ownedBy(ds), onNode("down")),
		testPod("db-0", appX, ownedBy(sts), onNode("down")),
		testPod("cache-0", appX, ownedBy(moveSTS), onNode("down")),
		testPod("bare", appX, onNode("down")),
		testPod("job-pod", appX, job, onNode("down")),
		testPod("pending", appX, ownedBy(rs)),
	}
	p := ReconcileNodeLoss(NodeLossInput{Nodes: nodes, Pods: pods, StatefulSets: []*api.StatefulSet{sts, moveSTS},
		Now: t0, Grace: 30 * time.Second})
	var got []string
	for _, r := range p.Delete {
		got = append(got, r.Name)
		if r.ResourceVersion == "" {
			t.Errorf("delete of %s without resourceVersion", r.Name)
		}
	}
	sort.Strings(got)
	// Terminating pods of lost nodes go at once (their agent will never
	// finish them), except a StatefulSet's on a node that may come back.
	want := []string{"bare-terminating", "cache-0", "cache-1", "db-2", "ds-down", "rs-deleted-node", "rs-down", "rs-terminating", "rs-unknown"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("deleted %v, want %v", got, want)
	}
	ev := strings.Join(p.Events, "\n")
	for _, s := range []string{"Pod default/db-0 kept", "Pod default/bare kept", "Pod default/job-pod kept", "node vanished no longer exists", "Ready=False for 1m0s",
		"Pod default/db-1 kept terminating", "Pod default/rs-terminating removed: it was terminating"} {
		if !strings.Contains(ev, s) {
			t.Errorf("events lack %q:\n%s", s, ev)
		}
	}
	// With the default grace (40s) the same nodes are lost after a minute.
	if p := ReconcileNodeLoss(NodeLossInput{Nodes: nodes[:2], Pods: pods[:2], Now: t0}); len(p.Delete) != 1 {
		t.Errorf("default grace: %s", p)
	}
	// Nothing lost, nothing done.
	if p := ReconcileNodeLoss(NodeLossInput{Nodes: nodes[:1], Pods: pods[:1], Now: t0}); !p.Empty() || len(p.Events) != 0 {
		t.Errorf("healthy cluster: %s %v", p, p.Events)
	}
}

// nodeWithReason is a node whose Ready condition has had status and
// reason since since.
func nodeWithReason(name, status, reason string, since time.Time) *api.Node {
	n := nodeDownSince(name, status, since)
	n.Status.Conditions[0].Reason = reason
	return n
}

// Gossip's dead verdict is strong evidence: the pods of a dead node go
// after the short grace; a node that left (most often restarting, its pods
// still running) or that gossip does not know waits the long one. While a
// grace runs, the plan says when to decide again.
func TestReconcileNodeLossGraceByEvidence(t *testing.T) {
	rs := testRS("web", 3, appX)
	in := func(now time.Time, nodes ...*api.Node) NodeLossInput {
		var pods []*api.Pod
		for _, n := range nodes {
			pods = append(pods, testPod("on-"+n.Name, appX, ownedBy(rs), onNode(n.Name)))
		}
		return NodeLossInput{Nodes: nodes, Pods: pods, Now: now, Grace: 3 * time.Second, UnknownGrace: 40 * time.Second}
	}
	deleted := func(p Plan) []string {
		var out []string
		for _, r := range p.Delete {
			out = append(out, r.Name)
			if !r.Force {
				t.Errorf("delete of %s not forced", r.Name)
			}
		}
		sort.Strings(out)
		return out
	}
	dead := nodeWithReason("dead", api.ConditionFalse, ReasonNodeStatusUnknown, t0)
	left := nodeWithReason("left", api.ConditionFalse, ReasonNodeLeft, t0)
	unknown := nodeWithReason("unknown", api.ConditionUnknown, ReasonNotInGossip, t0)
	for _, tc := range []struct {
		after   time.Duration
		deleted string
		requeue time.Duration
	}{
		{0, "", 3 * time.Second},
		{2500 * time.Millisecond, "", 500 * time.Millisecond},
		{3 * time.Second, "on-dead", 37 * time.Second},
		{39 * time.Second, "on-dead", time.Second},
		{40 * time.Second, "on-dead on-left on-unknown", 0},
	} {
		p := ReconcileNodeLoss(in(t0.Add(tc.after), dead, left, unknown))
		if got := strings.Join(deleted(p), " "); got != tc.deleted {
			t.Errorf("%v after: deleted %q, want %q", tc.after, got, tc.deleted)
		}
		if p.RequeueAfter != tc.requeue {
			t.Errorf("%v after: requeue after %v, want %v", tc.after, p.RequeueAfter, tc.requeue)
		}
	}
	p := ReconcileNodeLoss(in(t0.Add(3*time.Second), dead))
	if ev := strings.Join(p.Events, "\n"); !strings.Contains(ev, "dead in gossip") || !strings.Contains(ev, "grace 3s") {
		t.Errorf("events: %s", ev)
	}
	// Zero graces mean the defaults.
	p = ReconcileNodeLoss(NodeLossInput{Nodes: []*api.Node{dead}, Pods: in(t0, dead).Pods, Now: t0.Add(DefaultNodeLossGrace)})
	if len(p.Delete) != 1 {
		t.Errorf("default dead grace %v: %s", DefaultNodeLossGrace, p)
	}
	p = ReconcileNodeLoss(NodeLossInput{Nodes: []*api.Node{left}, Pods: in(t0, left).Pods, Now: t0.Add(DefaultNodeUnknownGrace - time.Second)})
	if len(p.Delete) != 0 || p.RequeueAfter != time.Second {
		t.Errorf("default unknown grace %v: %s (requeue %v)", DefaultNodeUnknownGrace, p, p.RequeueAfter)
	}
}
