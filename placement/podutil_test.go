package placement

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func i32(v int32) *int32 { return &v }

func testTemplate(image string, labels map[string]string) api.PodTemplateSpec {
	return api.PodTemplateSpec{
		ObjectMeta: api.ObjectMeta{Labels: labels},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "c", Image: image}}},
	}
}

func testRS(name string, replicas int32, labels map[string]string) *api.ReplicaSet {
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name, ResourceVersion: "7", Generation: 1,
			CreationTimestamp: api.NewTime(t0)},
		Spec: api.ReplicaSetSpec{Replicas: i32(replicas), Selector: &api.LabelSelector{MatchLabels: labels},
			Template: testTemplate("img:1", labels)},
		Status: api.ReplicaSetStatus{ObservedGeneration: 1},
	}
	api.SetTypeMeta(rs)
	return rs
}

// podOpt changes a test pod.
type podOpt func(*api.Pod)

func onNode(n string) podOpt { return func(p *api.Pod) { p.Spec.NodeName = n } }
func phase(ph string) podOpt { return func(p *api.Pod) { p.Status.Phase = ph } }
func readySince(t time.Time) podOpt {
	return func(p *api.Pod) {
		p.Status.Phase = api.PodRunning
		p.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: api.NewTime(t)}}
	}
}
func ready() podOpt              { return readySince(t0.Add(-time.Hour)) }
func created(t time.Time) podOpt { return func(p *api.Pod) { p.CreationTimestamp = api.NewTime(t) } }
func withIP(ip string) podOpt    { return func(p *api.Pod) { p.Status.PodIP = ip } }
func terminating() podOpt {
	return func(p *api.Pod) { tt := api.NewTime(t0); p.DeletionTimestamp = &tt }
}
func labeled(k, v string) podOpt { return func(p *api.Pod) { p.Labels[k] = v } }
func ownedBy(o api.Object) podOpt {
	return func(p *api.Pod) { p.OwnerReferences = []api.OwnerReference{newControllerRef(o)} }
}

func testPod(name string, labels map[string]string, opts ...podOpt) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name, ResourceVersion: "3",
		Labels: map[string]string{}, CreationTimestamp: api.NewTime(t0.Add(-2 * time.Hour))},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "img:1"}}}}
	for k, v := range labels {
		p.Labels[k] = v
	}
	for _, o := range opts {
		o(p)
	}
	api.SetTypeMeta(p)
	return p
}

func deleted(p Plan) map[string]bool {
	m := map[string]bool{}
	for _, r := range p.Delete {
		m[r.Name] = true
	}
	return m
}

func TestHashSuffixStableAndDistinct(t *testing.T) {
	if HashSuffix("a", 1) != HashSuffix("a", 1) {
		t.Fatal("not deterministic")
	}
	seen := map[string]bool{}
	for i := range 1000 {
		s := HashSuffix("seed", i)
		if len(s) != 5 {
			t.Fatalf("suffix %q", s)
		}
		seen[s] = true
	}
	if len(seen) < 995 {
		t.Fatalf("only %d distinct suffixes of 1000", len(seen))
	}
}

func TestTemplateHashIgnoresHashLabel(t *testing.T) {
	a := testTemplate("img:1", map[string]string{"app": "x"})
	b := testTemplate("img:1", map[string]string{"app": "x", LabelPodTemplateHash: "zzz"})
	c := testTemplate("img:2", map[string]string{"app": "x"})
	if TemplateHash(&a, 0) != TemplateHash(&b, 0) {
		t.Error("hash label changes the hash")
	}
	if TemplateHash(&a, 0) == TemplateHash(&c, 0) {
		t.Error("image change keeps the hash")
	}
	if TemplateHash(&a, 0) == TemplateHash(&a, 1) {
		t.Error("collisionCount ignored")
	}
	if _, ok := b.Labels[LabelPodTemplateHash]; !ok {
		t.Error("TemplateHash changed its input")
	}
}

func TestSetCondition(t *testing.T) {
	c1 := api.Condition{Type: "A", Status: api.ConditionTrue, Reason: "R"}
	conds, ch := setCondition(nil, c1, t0)
	if !ch || len(conds) != 1 || !conds[0].LastTransitionTime.Equal(t0) {
		t.Fatalf("add: %v %+v", ch, conds)
	}
	later := t0.Add(time.Minute)
	conds2, ch := setCondition(conds, c1, later)
	if ch || !conds2[0].LastTransitionTime.Equal(t0) {
		t.Fatalf("same condition changed: %v %+v", ch, conds2)
	}
	c2 := c1
	c2.Status = api.ConditionFalse
	conds3, ch := setCondition(conds, c2, later)
	if !ch || !conds3[0].LastTransitionTime.Equal(later) {
		t.Fatalf("flip: %v %+v", ch, conds3)
	}
	if conds[0].Status != api.ConditionTrue {
		t.Fatal("input slice changed")
	}
}

func TestPodIsAvailable(t *testing.T) {
	p := testPod("p", nil, readySince(t0))
	for _, tc := range []struct {
		min  int32
		now  time.Time
		want bool
	}{
		{0, t0, true},
		{10, t0.Add(9 * time.Second), false},
		{10, t0.Add(10 * time.Second), true},
	} {
		if got := podIsAvailable(p, tc.min, tc.now); got != tc.want {
			t.Errorf("min %d now+%v: %v", tc.min, tc.now.Sub(t0), got)
		}
	}
	if podIsAvailable(testPod("q", nil), 0, t0) {
		t.Error("unready pod available")
	}
}

func names(objs []api.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, fmt.Sprintf("%s/%s", api.KindOf(o), o.GetObjectMeta().Name))
	}
	return out
}
