package placement

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

var appX = map[string]string{"app": "x"}

func TestReconcileReplicaSetTable(t *testing.T) {
	rs := testRS("web", 3, appX)
	other := testRS("other", 1, map[string]string{"app": "y"})
	tests := []struct {
		name        string
		replicas    int32
		pods        []*api.Pod
		wantCreate  int
		wantDelete  []string
		wantUpdate  []string
		wantStatus  bool
		burst       int
		wantReplica int32
	}{
		{name: "create all", replicas: 3, wantCreate: 3, wantStatus: false},
		{name: "steady", replicas: 2, pods: []*api.Pod{
			testPod("a", appX, ownedBy(rs), onNode("n1"), ready()),
			testPod("b", appX, ownedBy(rs), onNode("n1"), ready()),
		}, wantStatus: true, wantReplica: 2},
		{name: "terminating and failed do not count", replicas: 2, pods: []*api.Pod{
			testPod("a", appX, ownedBy(rs), ready()),
			testPod("b", appX, ownedBy(rs), terminating()),
			testPod("c", appX, ownedBy(rs), phase(api.PodFailed)),
			testPod("d", appX, ownedBy(rs), phase(api.PodSucceeded)),
		}, wantCreate: 1, wantStatus: true, wantReplica: 1},
		{name: "surplus: unscheduled first", replicas: 1, pods: []*api.Pod{
			testPod("sched", appX, ownedBy(rs), onNode("n1"), phase(api.PodPending)),
			testPod("unsched", appX, ownedBy(rs)),
		}, wantDelete: []string{"unsched"}, wantStatus: true, wantReplica: 2},
		{name: "surplus: pending before running", replicas: 1, pods: []*api.Pod{
			testPod("run", appX, ownedBy(rs), onNode("n1"), phase(api.PodRunning)),
			testPod("pend", appX, ownedBy(rs), onNode("n1"), phase(api.PodPending)),
		}, wantDelete: []string{"pend"}, wantStatus: true, wantReplica: 2},
		{name: "surplus: not ready before ready", replicas: 1, pods: []*api.Pod{
			testPod("rdy", appX, ownedBy(rs), onNode("n1"), ready()),
			testPod("notrdy", appX, ownedBy(rs), onNode("n1"), phase(api.PodRunning)),
		}, wantDelete: []string{"notrdy"}, wantStatus: true, wantReplica: 2},
		{name: "surplus: younger first", replicas: 1, pods: []*api.Pod{
			testPod("old", appX, ownedBy(rs), onNode("n1"), phase(api.PodRunning), created(t0.Add(-time.Hour))),
			testPod("young", appX, ownedBy(rs), onNode("n1"), phase(api.PodRunning), created(t0)),
		}, wantDelete: []string{"young"}, wantStatus: true, wantReplica: 2},
		{name: "adopt orphan, ignore other owner's pod", replicas: 2, pods: []*api.Pod{
			testPod("orphan", appX, ready()),
			testPod("theirs", appX, ownedBy(other)),
			testPod("nomatch", map[string]string{"app": "z"}),
		}, wantUpdate: []string{"orphan"}, wantCreate: 1, wantStatus: true, wantReplica: 1},
		{name: "release owned pod that no longer matches", replicas: 1, pods: []*api.Pod{
			testPod("a", map[string]string{"app": "z"}, ownedBy(rs)),
		}, wantUpdate: []string{"a"}, wantCreate: 1},
		{name: "burst", replicas: 10, burst: 4, wantCreate: 4},
		{name: "zero", replicas: 0, pods: []*api.Pod{
			testPod("a", appX, ownedBy(rs), ready()),
		}, wantDelete: []string{"a"}, wantStatus: true, wantReplica: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rs.DeepCopyObject().(*api.ReplicaSet)
			r.Spec.Replicas = i32(tc.replicas)
			p := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: r, Pods: tc.pods, Now: t0, Burst: tc.burst})
			if len(p.Create) != tc.wantCreate {
				t.Errorf("create %d, want %d\n%s", len(p.Create), tc.wantCreate, p)
			}
			var del []string
			for _, d := range p.Delete {
				del = append(del, d.Name)
			}
			if !slices.Equal(del, tc.wantDelete) {
				t.Errorf("delete %v, want %v", del, tc.wantDelete)
			}
			var upd []string
			for _, o := range p.Update {
				upd = append(upd, o.GetObjectMeta().Name)
			}
			if !slices.Equal(upd, tc.wantUpdate) {
				t.Errorf("update %v, want %v", upd, tc.wantUpdate)
			}
			if got := len(p.UpdateStatus) == 1; got != tc.wantStatus {
				t.Errorf("status update %v, want %v", got, tc.wantStatus)
			}
			if tc.wantStatus {
				st := p.UpdateStatus[0].(*api.ReplicaSet).Status
				if st.Replicas != tc.wantReplica || st.ObservedGeneration != 1 {
					t.Errorf("status %+v", st)
				}
			}
		})
	}
}

func TestReplicaSetCreatedPods(t *testing.T) {
	rs := testRS("web", 2, appX)
	p := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Now: t0})
	if len(p.Create) != 2 {
		t.Fatal(p)
	}
	p2 := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Now: t0})
	if !slices.Equal(names(p.Create), names(p2.Create)) {
		t.Errorf("names not deterministic: %v vs %v", names(p.Create), names(p2.Create))
	}
	for _, o := range p.Create {
		pod := o.(*api.Pod)
		if !strings.HasPrefix(pod.Name, "web-") || len(pod.Name) != len("web-")+5 {
			t.Errorf("name %q", pod.Name)
		}
		ref := api.ControllerOf(&pod.ObjectMeta)
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" || !*ref.BlockOwnerDeletion {
			t.Errorf("owner %+v", ref)
		}
		if pod.Labels["app"] != "x" || pod.Namespace != "default" || pod.Kind != "Pod" {
			t.Errorf("pod %+v", pod.ObjectMeta)
		}
	}
	// A name already taken is skipped.
	taken := testPod(p.Create[0].GetObjectMeta().Name, map[string]string{"app": "other"})
	p3 := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Pods: []*api.Pod{taken}, Now: t0})
	for _, o := range p3.Create {
		if o.GetObjectMeta().Name == taken.Name {
			t.Errorf("reused name %s", taken.Name)
		}
	}
	// NameSuffix is honoured.
	p4 := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Now: t0, NameSuffix: func(i int) string { return fmt.Sprint("s", i) }})
	if got := names(p4.Create); !slices.Equal(got, []string{"Pod/web-s0", "Pod/web-s1"}) {
		t.Errorf("NameSuffix names %v", got)
	}
}

func TestReplicaSetStatusAvailableUsesMinReady(t *testing.T) {
	rs := testRS("web", 2, appX)
	rs.Spec.MinReadySeconds = 30
	pods := []*api.Pod{
		testPod("a", appX, ownedBy(rs), readySince(t0.Add(-time.Minute))),
		testPod("b", appX, ownedBy(rs), readySince(t0.Add(-10*time.Second))),
	}
	p := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Pods: pods, Now: t0})
	st := p.UpdateStatus[0].(*api.ReplicaSet).Status
	if st.ReadyReplicas != 2 || st.AvailableReplicas != 1 || st.FullyLabeledReplicas != 2 {
		t.Errorf("status %+v", st)
	}
	// Unchanged status is not written again.
	rs2 := p.UpdateStatus[0].(*api.ReplicaSet)
	if p2 := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs2, Pods: pods, Now: t0}); len(p2.UpdateStatus) != 0 || !p2.Empty() {
		t.Errorf("second reconcile not empty:\n%s", p2)
	}
}

func TestReplicaSetDoesNotMutateInput(t *testing.T) {
	rs := testRS("web", 1, appX)
	orphan := testPod("o", appX)
	before := orphan.DeepCopyObject()
	ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Pods: []*api.Pod{orphan}, Now: t0})
	if len(orphan.OwnerReferences) != 0 || orphan.ResourceVersion != before.GetObjectMeta().ResourceVersion {
		t.Error("input pod changed")
	}
}

// Property: whatever the pods, one reconcile moves the active count to the
// desired count (within the burst), never deletes a pod it does not own, and
// never creates two pods of one name.
func TestReplicaSetConvergesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		want := rapid.Int32Range(0, 30).Draw(t, "replicas")
		rs := testRS("web", want, appX)
		other := testRS("other", 1, appX)
		n := rapid.IntRange(0, 40).Draw(t, "pods")
		var pods []*api.Pod
		for i := range n {
			var opts []podOpt
			switch rapid.IntRange(0, 3).Draw(t, "owner") {
			case 0, 1:
				opts = append(opts, ownedBy(rs))
			case 2:
				opts = append(opts, ownedBy(other))
			}
			switch rapid.IntRange(0, 4).Draw(t, "state") {
			case 0:
				opts = append(opts, ready(), onNode("n"))
			case 1:
				opts = append(opts, terminating())
			case 2:
				opts = append(opts, phase(api.PodFailed))
			case 3:
				opts = append(opts, onNode("n"), phase(api.PodPending))
			}
			pods = append(pods, testPod(fmt.Sprintf("p%d", i), appX, opts...))
		}
		burst := rapid.IntRange(1, 50).Draw(t, "burst")
		plan := ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Pods: pods, Now: t0, Burst: burst})
		mine := map[string]bool{}
		active := 0
		for _, p := range pods {
			c := controllerUID(&p.ObjectMeta)
			if c == rs.UID || c == "" {
				mine[p.Name] = true
				if podIsActive(p) {
					active++
				}
			}
		}
		for _, d := range plan.Delete {
			if !mine[d.Name] {
				t.Fatalf("deleted %s it does not own", d.Name)
			}
		}
		after := active + len(plan.Create) - len(plan.Delete)
		gap := int(want) - active
		if gap < 0 {
			gap = -gap
		}
		if gap <= burst && after != int(want) {
			t.Fatalf("after %d, want %d", after, want)
		}
		if len(plan.Create) > burst || len(plan.Delete) > burst {
			t.Fatalf("burst exceeded")
		}
		seen := map[string]bool{}
		for _, p := range pods {
			seen[p.Name] = true
		}
		for _, o := range plan.Create {
			if seen[o.GetObjectMeta().Name] {
				t.Fatalf("duplicate name %s", o.GetObjectMeta().Name)
			}
			seen[o.GetObjectMeta().Name] = true
		}
	})
}
