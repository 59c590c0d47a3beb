package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func tolerantPodSpec() api.PodSpec {
	return api.PodSpec{
		Containers:  []api.Container{{Name: "app", Image: "busybox"}},
		Tolerations: []api.Toleration{{Key: TaintNoPods, Operator: "Exists"}},
	}
}

// eventsAbout lists the Events about kind/name with the given reason, as
// "reason: message" lines.
func eventsAbout(ctx context.Context, c *api.Client, ns, kind, name, reason string) ([]string, error) {
	sel := fmt.Sprintf("involvedObject.kind=%s,involvedObject.name=%s,reason=%s", kind, name, reason)
	objs, _, err := c.List(ctx, "Event", ns, api.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		e := o.(*api.Event)
		out = append(out, fmt.Sprintf("%s (%s, x%d): %s", e.Reason, e.Source.Component, e.Count, e.Message))
	}
	return out, nil
}

// TestClusterRecordsEvents: on a secure three-agent cluster (pods off, so
// every Node carries the no-pods taint), the leader records Scheduled for
// a pod that tolerates it, FailedScheduling with the scheduler's reason for
// one that does not, ScalingReplicaSet and SuccessfulCreate for a
// Deployment's pods, and LeaderElected on its own Node.
func TestClusterRecordsEvents(t *testing.T) {
	_, tas := secureAgents(t, 3)
	ctx := context.Background()
	c := tas[0].client()
	tolerant := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "tolerant", Namespace: "default"}, Spec: tolerantPodSpec()}
	stuck := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "stuck", Namespace: "default"},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "app", Image: "busybox"}}}}
	two := int32(2)
	dep := &api.Deployment{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"}}
	dep.Spec.Replicas = &two
	dep.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	dep.Spec.Template.Labels = map[string]string{"app": "web"}
	dep.Spec.Template.Spec = tolerantPodSpec()
	for _, o := range []api.Object{tolerant, stuck, dep} {
		waitUntil(t, 20*time.Second, "create "+o.GetObjectMeta().Name, func() string {
			if _, err := c.Create(ctx, o.DeepCopyObject()); err != nil && !api.IsAlreadyExists(err) {
				return err.Error()
			}
			return ""
		})
	}
	want := func(ns, kind, name, reason, contains string) {
		t.Helper()
		waitUntil(t, 30*time.Second, reason+" Event on "+kind+" "+name, func() string {
			evs, err := eventsAbout(ctx, c, ns, kind, name, reason)
			if err != nil {
				return err.Error()
			}
			for _, e := range evs {
				if strings.Contains(e, contains) {
					return ""
				}
			}
			all, _, _ := c.List(ctx, "Event", "", api.ListOptions{})
			var names []string
			for _, o := range all {
				e := o.(*api.Event)
				names = append(names, e.Namespace+"/"+e.Name+" "+e.Reason)
			}
			return fmt.Sprintf("events %q, want one containing %q (all events: %q)", evs, contains, names)
		})
	}
	want("default", "Pod", "tolerant", "Scheduled", "Successfully assigned default/tolerant to ")
	want("default", "Pod", "stuck", "FailedScheduling", "0/3 nodes")
	want("default", "Deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-")
	var leader *testAgent
	waitUntil(t, 10*time.Second, "a leader", func() string {
		if leader = leaderOf(tas); leader == nil {
			return "none"
		}
		return ""
	})
	want("default", "Node", leader.cfg.NodeName, "LeaderElected", leader.cfg.NodeName+" became the Raft leader")
	// The ReplicaSet's pods: one SuccessfulCreate each (two messages).
	rss, _, err := c.List(ctx, "ReplicaSet", "default", api.ListOptions{})
	if err != nil || len(rss) != 1 {
		t.Fatalf("replicasets: %v, %d", err, len(rss))
	}
	rs := rss[0].GetObjectMeta().Name
	waitUntil(t, 30*time.Second, "two SuccessfulCreate on "+rs, func() string {
		evs, err := eventsAbout(ctx, c, "default", "ReplicaSet", rs, "SuccessfulCreate")
		if err != nil {
			return err.Error()
		}
		if len(evs) != 2 {
			return fmt.Sprintf("events %q", evs)
		}
		return ""
	})
}
