package placement

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

func testSTS(replicas int32, policy string, claims ...string) *api.StatefulSet {
	s := &api.StatefulSet{
		ObjectMeta: api.ObjectMeta{Name: "db", Namespace: "default", UID: "uid-db", ResourceVersion: "4", Generation: 1},
		Spec: api.StatefulSetSpec{Replicas: i32(replicas), Selector: &api.LabelSelector{MatchLabels: appX},
			Template: testTemplate("db:1", appX), ServiceName: "db-svc", PodManagementPolicy: policy,
			UpdateStrategy: api.StatefulSetUpdateStrategy{Type: api.RollingUpdateStrategy}},
	}
	for _, c := range claims {
		s.Spec.VolumeClaimTemplates = append(s.Spec.VolumeClaimTemplates, api.PersistentVolumeClaim{ObjectMeta: api.ObjectMeta{Name: c}})
	}
	api.SetTypeMeta(s)
	return s
}

// stsPod is ordinal i of s at the current revision.
func stsPod(s *api.StatefulSet, i int, opts ...podOpt) *api.Pod {
	p := statefulPod(s, i, TemplateHash(&s.Spec.Template, 0), "")
	p.UID, p.ResourceVersion = fmt.Sprint("uid-", p.Name), "2"
	for _, o := range opts {
		o(p)
	}
	return p
}

func planNames(p Plan) (created, deletedN []string) {
	for _, o := range p.Create {
		created = append(created, o.GetObjectMeta().Name)
	}
	for _, r := range p.Delete {
		deletedN = append(deletedN, r.Name)
	}
	return
}

func TestReconcileStatefulSetTable(t *testing.T) {
	ord := testSTS(3, api.OrderedReadyPodManagement)
	par := testSTS(3, api.ParallelPodManagement)
	tests := []struct {
		name          string
		s             *api.StatefulSet
		pods          func(s *api.StatefulSet) []*api.Pod
		create, del   []string
		replicasAfter int32
	}{
		{"ordered: first pod only", ord, func(*api.StatefulSet) []*api.Pod { return nil }, []string{"db-0"}, nil, 0},
		{"ordered: wait for db-0 ready", ord, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0, phase(api.PodRunning))}
		}, nil, nil, 0},
		{"ordered: next after ready", ord, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0, ready())}
		}, []string{"db-1"}, nil, 0},
		{"ordered: hole refilled first", ord, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0, ready()), stsPod(s, 2, ready())}
		}, []string{"db-1"}, nil, 0},
		{"ordered: failed pod deleted", ord, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0, ready()), stsPod(s, 1, phase(api.PodFailed))}
		}, nil, []string{"db-1"}, 0},
		{"ordered: scale down highest first, one at a time", ord, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0, ready()), stsPod(s, 1, ready()), stsPod(s, 2, ready()), stsPod(s, 3, ready()), stsPod(s, 4, ready())}
		}, nil, []string{"db-4"}, 0},
		{"ordered: no scale down while one is unready", ord, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0, ready()), stsPod(s, 1, phase(api.PodRunning)), stsPod(s, 2, ready()), stsPod(s, 3, ready())}
		}, nil, nil, 0},
		{"ordered: wait while one terminates", ord, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0, ready()), stsPod(s, 1, ready()), stsPod(s, 2, ready()), stsPod(s, 3, ready()), stsPod(s, 4, ready(), terminating())}
		}, nil, nil, 0},
		{"parallel: all at once", par, func(*api.StatefulSet) []*api.Pod { return nil }, []string{"db-0", "db-1", "db-2"}, nil, 0},
		{"parallel: scale down all at once", par, func(s *api.StatefulSet) []*api.Pod {
			return []*api.Pod{stsPod(s, 0), stsPod(s, 1), stsPod(s, 2), stsPod(s, 3), stsPod(s, 4)}
		}, nil, []string{"db-4", "db-3"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ReconcileStatefulSet(StatefulSetInput{StatefulSet: tc.s, Pods: tc.pods(tc.s), Now: t0})
			c, d := planNames(p)
			if !slices.Equal(c, tc.create) || !slices.Equal(d, tc.del) {
				t.Errorf("created %v deleted %v, want %v %v\n%v", c, d, tc.create, tc.del, p.Events)
			}
		})
	}
}

func TestStatefulSetPodShape(t *testing.T) {
	s := testSTS(1, "", "data")
	p := ReconcileStatefulSet(StatefulSetInput{StatefulSet: s, Now: t0})
	pod := p.Create[0].(*api.Pod)
	if pod.Name != "db-0" || pod.Spec.Hostname != "db-0" || pod.Spec.Subdomain != "db-svc" || pod.Spec.NodeName != "" {
		t.Errorf("pod %+v %+v", pod.ObjectMeta, pod.Spec)
	}
	if pod.Labels[LabelStatefulSetPodName] != "db-0" || pod.Labels[LabelControllerRevision] != TemplateHash(&s.Spec.Template, 0) || pod.Labels["app"] != "x" {
		t.Errorf("labels %v", pod.Labels)
	}
	if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].PersistentVolumeClaim == nil || pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-db-0" || pod.Spec.Volumes[0].HostPath != nil {
		t.Errorf("volumes %+v", pod.Spec.Volumes)
	}
}

func TestStatefulSetVolumeBinding(t *testing.T) {
	s := testSTS(2, "", "data")
	// db-0 was scheduled to n1: the binding is recorded on the set and the pod.
	p0 := stsPod(s, 0, ready(), onNode("n1"))
	p := ReconcileStatefulSet(StatefulSetInput{StatefulSet: s, Pods: []*api.Pod{p0}, Now: t0})
	var setUpd *api.StatefulSet
	var podUpd *api.Pod
	for _, o := range p.Update {
		switch x := o.(type) {
		case *api.StatefulSet:
			setUpd = x
		case *api.Pod:
			podUpd = x
		}
	}
	if setUpd == nil || setUpd.Annotations[AnnotationVolumeNodes] != `{"0":"n1"}` || setUpd.ResourceVersion != "4" {
		t.Fatalf("set update %+v\n%s", setUpd, p)
	}
	if podUpd == nil || podUpd.Annotations[AnnotationVolumeNode] != "n1" {
		t.Fatalf("pod update %+v", podUpd)
	}
	if len(p.UpdateStatus) != 0 {
		t.Error("status and metadata updated in one plan")
	}
	// db-0 is gone (node lost, or deleted): it comes back pinned to n1.
	p = ReconcileStatefulSet(StatefulSetInput{StatefulSet: setUpd, Now: t0})
	if len(p.Create) != 1 {
		t.Fatalf("plan %s", p)
	}
	pod := p.Create[0].(*api.Pod)
	if pod.Spec.NodeName != "n1" || pod.Annotations[AnnotationVolumeNode] != "n1" {
		t.Errorf("re-created pod not pinned: %q %v", pod.Spec.NodeName, pod.Annotations)
	}
	// With allow-move and n1 NotReady, the binding is dropped instead.
	moved := setUpd.DeepCopyObject().(*api.StatefulSet)
	moved.Annotations[AnnotationAllowMove] = "true"
	n1 := testNode("n1", 0, "")
	n1.Status.Conditions = []api.Condition{{Type: api.NodeReady, Status: api.ConditionFalse}}
	p = ReconcileStatefulSet(StatefulSetInput{StatefulSet: moved, Nodes: []*api.Node{n1}, Now: t0})
	if len(p.Create) != 1 || p.Create[0].(*api.Pod).Spec.NodeName != "" {
		t.Fatalf("allow-move: %s", p)
	}
	if len(p.Update) != 1 || p.Update[0].GetObjectMeta().Annotations[AnnotationVolumeNodes] != "" {
		t.Errorf("binding not dropped: %v", p.Update)
	}
}

func TestStatefulSetRollingUpdate(t *testing.T) {
	s := testSTS(3, "")
	old := s.DeepCopyObject().(*api.StatefulSet)
	old.Spec.Template.Spec.Containers[0].Image = "db:0"
	pods := []*api.Pod{stsPod(old, 0, ready()), stsPod(old, 1, ready()), stsPod(old, 2, ready())}
	p := ReconcileStatefulSet(StatefulSetInput{StatefulSet: s, Pods: pods, Now: t0})
	if _, d := planNames(p); !slices.Equal(d, []string{"db-2"}) {
		t.Fatalf("deleted %v, want db-2", d)
	}
	s.Spec.UpdateStrategy.RollingUpdate = &api.RollingUpdateStatefulSetStrategy{Partition: i32(2)}
	pods[2] = stsPod(s, 2, ready())
	if _, d := planNames(ReconcileStatefulSet(StatefulSetInput{StatefulSet: s, Pods: pods, Now: t0})); len(d) != 0 {
		t.Errorf("partition 2 ignored: deleted %v", d)
	}
	s.Spec.UpdateStrategy = api.StatefulSetUpdateStrategy{Type: api.OnDeleteStrategy}
	pods[2] = stsPod(old, 2, ready())
	if _, d := planNames(ReconcileStatefulSet(StatefulSetInput{StatefulSet: s, Pods: pods, Now: t0})); len(d) != 0 {
		t.Errorf("OnDelete deleted %v", d)
	}
}

// Property (OrderedReady): pods are created in order, only after all lower
// ordinals are Running and Ready, one per reconcile; removed from the top,
// one at a time, only while the rest are Running and Ready; and the set
// converges to exactly name-0..name-(n-1) whatever the replica changes.
func TestStatefulSetOrderingProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := newWorld(rt)
		w.put(testSTS(int32(rapid.IntRange(0, 6).Draw(rt, "replicas")), api.OrderedReadyPodManagement))
		sts := func() *api.StatefulSet { return w.objs["StatefulSet/db"].(*api.StatefulSet) }
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for i := 0; i < steps+40; i++ {
			if i < steps && rapid.IntRange(0, 9).Draw(rt, "rescale") == 0 {
				c := sts().DeepCopyObject().(*api.StatefulSet)
				c.Spec.Replicas = i32(int32(rapid.IntRange(0, 6).Draw(rt, "replicas")))
				w.put(c)
			}
			pods := w.pods()
			byOrd := map[int]*api.Pod{}
			for _, p := range pods {
				o, _ := statefulOrdinal("db", p.Name)
				byOrd[o] = p
			}
			allReadyBelow := func(n int) bool {
				for j := range n {
					p := byOrd[j]
					if p == nil || p.Status.Phase != api.PodRunning || !podIsReady(p) {
						return false
					}
				}
				return true
			}
			plan := ReconcileStatefulSet(StatefulSetInput{StatefulSet: sts(), Pods: pods, Now: w.now})
			if len(plan.Create) > 1 || len(plan.Delete) > 1 {
				rt.Fatalf("step %d: %d creates, %d deletes in one reconcile", i, len(plan.Create), len(plan.Delete))
			}
			for _, o := range plan.Create {
				n, ok := statefulOrdinal("db", o.GetObjectMeta().Name)
				if !ok || !allReadyBelow(n) {
					rt.Fatalf("step %d: created %s before its predecessors were ready", i, o.GetObjectMeta().Name)
				}
			}
			for _, r := range plan.Delete {
				n, _ := statefulOrdinal("db", r.Name)
				for o := range byOrd {
					if o > n {
						rt.Fatalf("step %d: deleted %s while %d exists", i, r.Name, o)
					}
				}
				if want := int(*sts().Spec.Replicas); n >= want && !allReadyBelow(want) {
					rt.Fatalf("step %d: scaled down %s while lower ordinals were not ready", i, r.Name)
				}
			}
			w.apply(plan)
			// Pods start, and become ready, at random (always, later on).
			for _, p := range w.pods() {
				if podIsReady(p) {
					continue
				}
				if i >= steps || rapid.Bool().Draw(rt, "ready") {
					c := p.DeepCopyObject().(*api.Pod)
					readySince(w.now)(c)
					w.put(c)
				}
			}
			w.now = w.now.Add(time.Second)
		}
		want := int(*sts().Spec.Replicas)
		var got []string
		for _, p := range w.pods() {
			got = append(got, p.Name)
		}
		sort.Strings(got)
		var exp []string
		for j := range want {
			exp = append(exp, fmt.Sprint("db-", j))
		}
		sort.Strings(exp)
		if !slices.Equal(got, exp) {
			rt.Fatalf("pods %v, want %v", got, exp)
		}
		if st := sts().Status; int(st.Replicas) != want || int(st.ReadyReplicas) != want {
			rt.Fatalf("status %+v", st)
		}
	})
}
