package placement

import (
	"reflect"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func TestNodeReadiness(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	earlier := api.NewTime(now.Add(-time.Hour))
	deadSince := now.Add(-7 * time.Second)
	node := func(name string, conds ...api.Condition) *api.Node {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name, ResourceVersion: "3"}}
		n.Status.Conditions = conds
		return n
	}
	ready := func(status, reason string) api.Condition {
		return api.Condition{Type: api.NodeReady, Status: status, Reason: reason, LastTransitionTime: earlier}
	}
	alive := Liveness{Alive: true, Known: true, Since: now.Add(-time.Minute)}
	dead := Liveness{Known: true, Since: deadSince}
	pressure := api.Condition{Type: "DiskPressure", Status: api.ConditionFalse}

	tests := []struct {
		name     string
		node     *api.Node
		live     Liveness
		noEntry  bool           // leave the node out of the live map
		want     *api.Condition // nil: no change expected
		keepTime bool           // lastTransitionTime stays earlier
	}{
		{name: "new alive", node: node("a"), live: alive,
			want: &api.Condition{Status: api.ConditionTrue, Reason: ReasonGossipAlive}},
		{name: "already ready", node: node("a", ready(api.ConditionTrue, ReasonGossipAlive)), live: alive},
		{name: "dies", node: node("a", ready(api.ConditionTrue, ReasonGossipAlive)), live: dead,
			want: &api.Condition{Status: api.ConditionFalse, Reason: ReasonNodeStatusUnknown, Message: "gossip: dead since 2026-03-01T11:59:53Z"}},
		{name: "already dead", node: node("a", ready(api.ConditionFalse, ReasonNodeStatusUnknown)), live: dead},
		{name: "leaves", node: node("a", ready(api.ConditionTrue, ReasonGossipAlive)), live: Liveness{Known: true, Left: true, Since: deadSince},
			want: &api.Condition{Status: api.ConditionFalse, Reason: ReasonNodeLeft, Message: "gossip: left since 2026-03-01T11:59:53Z"}},
		{name: "left, then dead", node: node("a", ready(api.ConditionFalse, ReasonNodeLeft)), live: dead,
			want: &api.Condition{Status: api.ConditionFalse, Reason: ReasonNodeStatusUnknown}, keepTime: true},
		{name: "returns", node: node("a", ready(api.ConditionFalse, ReasonNodeStatusUnknown)), live: alive,
			want: &api.Condition{Status: api.ConditionTrue, Reason: ReasonGossipAlive}},
		{name: "unknown to gossip", node: node("a", ready(api.ConditionTrue, ReasonGossipAlive)), noEntry: true,
			want: &api.Condition{Status: api.ConditionUnknown, Reason: ReasonNotInGossip}},
		{name: "known flag false", node: node("a", ready(api.ConditionTrue, ReasonGossipAlive)), live: Liveness{Alive: true},
			want: &api.Condition{Status: api.ConditionUnknown, Reason: ReasonNotInGossip}},
		{name: "still unknown", node: node("a", ready(api.ConditionUnknown, ReasonNotInGossip)), noEntry: true},
		{name: "new and dead", node: node("a"), live: dead,
			want: &api.Condition{Status: api.ConditionFalse, Reason: ReasonNodeStatusUnknown}},
		{name: "other writer's reason", node: node("a", ready(api.ConditionTrue, "SomethingElse")), live: alive,
			want: &api.Condition{Status: api.ConditionTrue, Reason: ReasonGossipAlive}, keepTime: true},
		{name: "other conditions kept", node: node("a", pressure), live: alive,
			want: &api.Condition{Status: api.ConditionTrue, Reason: ReasonGossipAlive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := map[string]Liveness{}
			if !tt.noEntry {
				live[tt.node.Name] = tt.live
			}
			before := tt.node.DeepCopyObject()
			got := NodeReadiness([]*api.Node{tt.node}, live, now)
			if !reflect.DeepEqual(before, tt.node) {
				t.Fatal("the input node was modified")
			}
			if tt.want == nil {
				if len(got) != 0 {
					t.Fatalf("changed %d nodes, want none: %+v", len(got), got[0].Status.Conditions)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("changed %d nodes, want 1", len(got))
			}
			n := got[0]
			if n == tt.node || n.ResourceVersion != "3" {
				t.Fatal("the result must be a copy of the node, resourceVersion included")
			}
			var c *api.Condition
			others := 0
			for i := range n.Status.Conditions {
				if n.Status.Conditions[i].Type == api.NodeReady {
					if c != nil {
						t.Fatal("two Ready conditions")
					}
					c = &n.Status.Conditions[i]
				} else {
					others++
				}
			}
			if c == nil {
				t.Fatal("no Ready condition")
			}
			if others != len(tt.node.Status.Conditions)-countReady(tt.node) {
				t.Errorf("other conditions: %d, want %d", others, len(tt.node.Status.Conditions)-countReady(tt.node))
			}
			if c.Status != tt.want.Status || c.Reason != tt.want.Reason {
				t.Errorf("Ready %s/%s, want %s/%s", c.Status, c.Reason, tt.want.Status, tt.want.Reason)
			}
			if tt.want.Message != "" && c.Message != tt.want.Message {
				t.Errorf("message %q, want %q", c.Message, tt.want.Message)
			}
			if c.Message == "" {
				t.Error("empty message")
			}
			wantTime := api.NewTime(now)
			if tt.keepTime {
				wantTime = earlier
			}
			if !c.LastTransitionTime.Equal(wantTime.Time) {
				t.Errorf("lastTransitionTime %v, want %v", c.LastTransitionTime, wantTime)
			}
		})
	}
}

func countReady(n *api.Node) int {
	k := 0
	for _, c := range n.Status.Conditions {
		if c.Type == api.NodeReady {
			k++
		}
	}
	return k
}

func TestNodeReadinessManyNodesWritesOnlyChanges(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var nodes []*api.Node
	live := map[string]Liveness{}
	for _, name := range []string{"a", "b", "c", "d"} {
		nodes = append(nodes, &api.Node{ObjectMeta: api.ObjectMeta{Name: name}})
		live[name] = Liveness{Alive: true, Known: true}
	}
	nodes = append(nodes, nil) // tolerated
	first := NodeReadiness(nodes, live, now)
	if len(first) != 4 {
		t.Fatalf("first pass changed %d nodes, want 4", len(first))
	}
	// Apply the plan, as the leader would; the next pass has nothing to do.
	if again := NodeReadiness(first, live, now.Add(time.Second)); len(again) != 0 {
		t.Fatalf("second pass changed %d nodes", len(again))
	}
	live["c"] = Liveness{Known: true, Since: now}
	changed := NodeReadiness(first, live, now.Add(2*time.Second))
	if len(changed) != 1 || changed[0].Name != "c" {
		t.Fatalf("changed %v, want only c", changed)
	}
}
