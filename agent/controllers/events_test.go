package controllers

import (
	"sort"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

func TestPlanNotes(t *testing.T) {
	yes := true
	own := func(kind, name string) []api.OwnerReference {
		return []api.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: name + "-uid", Controller: &yes}}
	}
	pending := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "a", Namespace: "default", UID: "pa"}}
	bound := pending.DeepCopyObject().(*api.Pod)
	bound.Spec.NodeName = "n2"
	unsched := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "b", Namespace: "default", UID: "pb"}}
	unsched.Status.Conditions = []api.Condition{{Type: api.PodScheduled, Status: api.ConditionFalse, Reason: placement.ReasonUnschedulable,
		Message: "0/3 nodes are available: 3 Insufficient cpu."}}
	three, one := int32(3), int32(1)
	oldRS := &api.ReplicaSet{ObjectMeta: api.ObjectMeta{Name: "web-1", Namespace: "default", OwnerReferences: own("Deployment", "web")}}
	oldRS.Spec.Replicas = &one
	newRS := oldRS.DeepCopyObject().(*api.ReplicaSet)
	newRS.Spec.Replicas = &three
	victim := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "web-1-x", Namespace: "default", OwnerReferences: own("ReplicaSet", "web-1")}}
	plan := placement.Plan{
		Create: []api.Object{
			&api.Pod{ObjectMeta: api.ObjectMeta{Name: "web-1-abcde", Namespace: "default", OwnerReferences: own("ReplicaSet", "web-1")}},
			&api.ReplicaSet{ObjectMeta: api.ObjectMeta{Name: "web-2", Namespace: "default", OwnerReferences: own("Deployment", "web")}, Spec: api.ReplicaSetSpec{Replicas: &one}},
		},
		Update:       []api.Object{bound, newRS},
		UpdateStatus: []api.Object{unsched},
		Delete:       []placement.Ref{{Kind: "Pod", Namespace: "default", Name: "web-1-x"}},
	}
	view := map[string]api.Object{"Pod/a": pending, "ReplicaSet/web-1": oldRS, "Pod/web-1-x": victim}
	get := func(kind, ns, name string) api.Object { return view[kind+"/"+name] }
	notes := planNotes(plan, get)
	var got []string
	for _, n := range notes {
		got = append(got, n.component+" "+n.ref.Kind+"/"+n.ref.Name+" "+n.typ+" "+n.reason+": "+n.message)
	}
	sort.Strings(got)
	want := []string{
		"default-scheduler Pod/a Normal Scheduled: Successfully assigned default/a to n2",
		"default-scheduler Pod/b Warning FailedScheduling: 0/3 nodes are available: 3 Insufficient cpu.",
		"deployment-controller Deployment/web Normal ScalingReplicaSet: Scaled up replica set web-1 to 3 from 1",
		"deployment-controller Deployment/web Normal ScalingReplicaSet: Scaled up replica set web-2 to 1",
		"replicaset-controller ReplicaSet/web-1 Normal SuccessfulCreate: Created pod: web-1-abcde",
		"replicaset-controller ReplicaSet/web-1 Normal SuccessfulDelete: Deleted pod: web-1-x",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A refused binding claims nothing.
	refused := map[store.Key]bool{{Kind: "Pod", Namespace: "default", Name: "a"}: true}
	n := 0
	for _, x := range notes {
		if !refused[x.key] {
			n++
		}
	}
	if n != len(want)-1 {
		t.Fatalf("%d notes pass the refused filter, want %d", n, len(want)-1)
	}
}

// The view reads the live store, which holds the plan's objects once it
// is applied: the notes compare with the objects read before (planOlds).
// Reading after the apply saw the pod bound already and lost Scheduled.
func TestPlanNotesReadBeforeApply(t *testing.T) {
	st := store.New(store.DefaultConfig())
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "a", Namespace: "default", UID: "pa"}}
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
	api.SetTypeMeta(p)
	if res := st.Apply([]store.Op{{Type: store.OpCreate, Object: p}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	v := NewView(st)
	v.Rebuild()
	bound := p.DeepCopyObject().(*api.Pod)
	bound.Spec.NodeName = "n1"
	plan := placement.Plan{Update: []api.Object{bound}}
	olds := planOlds(plan, v.Get)
	if res := st.Apply([]store.Op{{Type: store.OpUpdate, Object: bound}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	notes := planNotes(plan, olds)
	if len(notes) != 1 || notes[0].reason != "Scheduled" {
		t.Fatalf("notes %+v, want Scheduled", notes)
	}
}
