package main

import (
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// The pod table's STATUS column, as kubectl prints it.
func TestPodStatusColumn(t *testing.T) {
	at := api.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	running := func() *api.Pod {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "web"}}
		p.Spec.Containers = []api.Container{{Name: "c"}}
		p.Status.Phase = api.PodRunning
		p.Status.ContainerStatuses = []api.ContainerStatus{{Name: "c", Ready: true}}
		return p
	}
	terminating := running()
	terminating.DeletionTimestamp = &at
	crashing := running()
	crashing.Status.ContainerStatuses[0].State.Waiting = &api.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
	crashingDeleted := crashing.DeepCopyObject().(*api.Pod)
	crashingDeleted.DeletionTimestamp = &at
	for _, tc := range []struct {
		name string
		pod  *api.Pod
		want string
	}{
		{"running", running(), "Running"},
		{"terminating", terminating, "Terminating"},
		{"waiting", crashing, "CrashLoopBackOff"},
		{"terminating wins over waiting", crashingDeleted, "Terminating"},
	} {
		_, row := podColumns(false, func(api.Object) string { return "1m" })
		got := row(tc.pod)
		if want := []string{"web", "1/1", tc.want, "0", "1m"}; !slices.Equal(got, want) {
			t.Errorf("%s: row %q, want %q", tc.name, got, want)
		}
	}
}

// The Service table counts each Service's ready endpoints; "?" when the
// Endpoints could not be read.
func TestServiceEndpointsColumn(t *testing.T) {
	svc := &api.Service{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: api.ServiceSpec{Type: "ClusterIP", ClusterIP: "10.96.0.10", Ports: []api.ServicePort{{Port: 80, Protocol: "TCP"}}}}
	age := func(api.Object) string { return "1m" }
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
	n := &api.Node{}
	n.Status.Conditions = []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue}}
	if got := nodeStatus(n); got != "Ready" {
		t.Fatalf("plain node: %q", got)
	}
	n.Spec.Taints = []api.Taint{{Key: "node.shoal.dev/no-pods", Effect: api.TaintNoSchedule}}
	n.Spec.Unschedulable = true
	if got := nodeStatus(n); got != "Ready,SchedulingDisabled,NoPods" {
		t.Fatalf("cordoned control-plane-only node: %q", got)
	}
}
