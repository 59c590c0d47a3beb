package api

import (
	"slices"
	"testing"
	"time"
)

// The pod table's STATUS column, as kubectl prints it.
func TestPodStatusColumn(t *testing.T) {
	at := NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	running := func() *Pod {
		p := &Pod{ObjectMeta: ObjectMeta{Name: "web"}}
		p.Spec.Containers = []Container{{Name: "c"}}
		p.Status.Phase = PodRunning
		p.Status.ContainerStatuses = []ContainerStatus{{Name: "c", Ready: true}}
		return p
	}
	terminating := running()
	terminating.DeletionTimestamp = &at
	crashing := running()
	crashing.Status.ContainerStatuses[0].State.Waiting = &ContainerStateWaiting{Reason: "CrashLoopBackOff"}
	crashingDeleted := crashing.DeepCopyObject().(*Pod)
	crashingDeleted.DeletionTimestamp = &at
	for _, tc := range []struct {
		name string
		pod  *Pod
		want string
	}{
		{"running", running(), "Running"},
		{"terminating", terminating, "Terminating"},
		{"waiting", crashing, "CrashLoopBackOff"},
		{"terminating wins over waiting", crashingDeleted, "Terminating"},
	} {
		_, row := podColumns(false, func(Object) string { return "1m" })
		got := row(tc.pod)
		if want := []string{"web", "1/1", tc.want, "0", "1m"}; !slices.Equal(got, want) {
			t.Errorf("%s: row %q, want %q", tc.name, got, want)
		}
	}
}

// The Service table counts each Service's ready endpoints; "?" when the
// Endpoints could not be read.
func TestServiceEndpointsColumn(t *testing.T) {
	svc := &Service{ObjectMeta: ObjectMeta{Namespace: "default", Name: "web"},
		Spec: ServiceSpec{Type: "ClusterIP", ClusterIP: "10.96.0.10", Ports: []ServicePort{{Port: 80, Protocol: "TCP"}}}}
	age := func(Object) string { return "1m" }
	for _, tc := range []struct {
		name  string
		ready map[string]int
		want  string
	}{
		{"three ready", map[string]int{"default/web": 3}, "3"},
		{"no Endpoints yet", map[string]int{}, "0"},
		{"unknown", nil, "?"},
	} {
		header, row := serviceColumns(age, tc.ready)
		got := row(svc)
		if want := []string{"web", "ClusterIP", "10.96.0.10", "80/TCP", tc.want, "1m"}; !slices.Equal(got, want) || len(header) != len(got) {
			t.Errorf("%s: row %q (header %q), want %q", tc.name, got, header, want)
		}
	}
}

// A Node of an agent that runs no pods says so in STATUS.
func TestNodeStatusNoPods(t *testing.T) {
	n := &Node{}
	n.Status.Conditions = []Condition{{Type: NodeReady, Status: ConditionTrue}}
	if got := NodeStatusColumn(n); got != "Ready" {
		t.Fatalf("plain node: %q", got)
	}
	n.Spec.Taints = []Taint{{Key: "node.shoal.dev/no-pods", Effect: TaintNoSchedule}}
	n.Spec.Unschedulable = true
	if got := NodeStatusColumn(n); got != "Ready,SchedulingDisabled,NoPods" {
		t.Fatalf("cordoned control-plane-only node: %q", got)
	}
}

func TestFormatAge(t *testing.T) {
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ago  time.Duration
		want string
	}{{5 * time.Second, "5s"}, {119 * time.Second, "119s"}, {10 * time.Minute, "10m"}, {3 * time.Hour, "3h"}, {72 * time.Hour, "3d"}} {
		if got := FormatAge(now.Add(-c.ago), now); got != c.want {
			t.Errorf("FormatAge(%v) = %q, want %q", c.ago, got, c.want)
		}
	}
	if got := FormatAge(time.Time{}, now); got != "<unknown>" {
		t.Errorf("zero time: %q", got)
	}
}
