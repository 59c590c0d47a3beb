package placement

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

func testDeploy(replicas int32, image string, surge, unavail api.IntOrString) *api.Deployment {
	d := &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-deploy", ResourceVersion: "1", Generation: 1,
			CreationTimestamp: api.NewTime(t0)},
		Spec: api.DeploymentSpec{
			Replicas: i32(replicas), Selector: &api.LabelSelector{MatchLabels: appX},
			Template: testTemplate(image, appX),
			Strategy: api.DeploymentStrategy{Type: api.RollingUpdateStrategy,
				RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}},
			RevisionHistoryLimit: i32(10), ProgressDeadlineSeconds: i32(600),
		},
	}
	api.SetTypeMeta(d)
	return d
}

// world is a fake store the simulations apply plans to: it checks
// resourceVersion preconditions as the real store does.
// fataler is what the world needs of *testing.T and *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}

type world struct {
	t     fataler
	now   time.Time
	seq   int
	objs  map[string]api.Object // kind/name
	order []string
}

func newWorld(t fataler) *world {
	return &world{t: t, now: t0, objs: map[string]api.Object{}}
}

func key(o api.Object) string { return api.KindOf(o) + "/" + o.GetObjectMeta().Name }

func (w *world) put(o api.Object) {
	w.seq++
	m := o.GetObjectMeta()
	if m.UID == "" {
		m.UID = fmt.Sprintf("uid-%d", w.seq)
		m.CreationTimestamp = api.NewTime(w.now)
		if m.Namespace == "" {
			m.Namespace = "default"
		}
	}
	m.ResourceVersion = strconv.Itoa(w.seq)
	w.objs[key(o)] = o
}

func (w *world) apply(p Plan) {
	for _, o := range p.Create {
		if _, ok := w.objs[key(o)]; ok {
			w.t.Fatalf("create of existing %s", key(o))
		}
		w.put(o.DeepCopyObject())
	}
	upd := func(o api.Object, status bool) {
		cur, ok := w.objs[key(o)]
		if !ok {
			return
		}
		if cur.GetObjectMeta().ResourceVersion != o.GetObjectMeta().ResourceVersion {
			w.t.Fatalf("conflict on %s: have rv %s, update from %s", key(o), cur.GetObjectMeta().ResourceVersion, o.GetObjectMeta().ResourceVersion)
		}
		n := o.DeepCopyObject()
		switch x := n.(type) {
		case *api.Deployment:
			c := cur.(*api.Deployment)
			if status {
				c2 := c.DeepCopyObject().(*api.Deployment)
				c2.Status = x.Status
				n = c2
			} else {
				if !equalJSON(x.Spec, c.Spec) {
					x.Generation = c.Generation + 1
				}
				x.Status = c.Status
			}
		case *api.ReplicaSet:
			c := cur.(*api.ReplicaSet)
			if status {
				c2 := c.DeepCopyObject().(*api.ReplicaSet)
				c2.Status = x.Status
				n = c2
			} else {
				x.Status = c.Status
			}
		}
		w.put(n)
	}
	for _, o := range p.Update {
		upd(o, false)
	}
	for _, o := range p.UpdateStatus {
		upd(o, true)
	}
	for _, r := range p.Delete {
		cur, ok := w.objs[r.Kind+"/"+r.Name]
		if !ok {
			continue
		}
		if r.ResourceVersion != "" && cur.GetObjectMeta().ResourceVersion != r.ResourceVersion {
			w.t.Fatalf("delete conflict on %s/%s", r.Kind, r.Name)
		}
		delete(w.objs, r.Kind+"/"+r.Name)
	}
}

func equalJSON(a, b any) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }

func (w *world) deployment() *api.Deployment {
	return w.objs["Deployment/web"].(*api.Deployment)
}

func (w *world) replicaSets() []*api.ReplicaSet {
	var out []*api.ReplicaSet
	for _, o := range w.objs {
		if rs, ok := o.(*api.ReplicaSet); ok {
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (w *world) pods() []*api.Pod {
	var out []*api.Pod
	for _, o := range w.objs {
		if p, ok := o.(*api.Pod); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// step runs the Deployment reconcile, then each ReplicaSet's twice (the
// second to refresh status after its pods changed).
func (w *world) step() Plan {
	p := ReconcileDeployment(DeploymentInput{Deployment: w.deployment(), ReplicaSets: w.replicaSets(), Pods: w.pods(), Now: w.now})
	w.apply(p)
	for range 2 {
		for _, rs := range w.replicaSets() {
			w.apply(ReconcileReplicaSet(ReplicaSetInput{ReplicaSet: rs, Pods: w.pods(), Now: w.now}))
		}
	}
	return p
}

func (w *world) markReady(pred func(*api.Pod) bool) {
	for _, p := range w.pods() {
		if !podIsReady(p) && pred(p) {
			c := p.DeepCopyObject().(*api.Pod)
			readySince(w.now)(c)
			c.Spec.NodeName = "n1"
			w.put(c)
		}
	}
}

func (w *world) counts() (active, available int) {
	for _, p := range w.pods() {
		if podIsActive(p) {
			active++
			if podIsAvailable(p, 0, w.now) {
				available++
			}
		}
	}
	return
}

// settle runs steps with every pod ready until the Deployment is complete.
func (w *world) settle(limit int) {
	for range limit {
		w.step()
		w.markReady(func(*api.Pod) bool { return true })
		w.now = w.now.Add(time.Second)
		if rolloutComplete(w) {
			return
		}
	}
	w.t.Fatalf("no steady state after %d steps:\n%s", limit, w.describe())
}

func rolloutComplete(w *world) bool {
	d := w.deployment()
	c := api.FindCondition(d.Status.Conditions, DeploymentProgressing)
	want := *d.Spec.Replicas
	if c == nil || c.Reason != ReasonNewRSAvailable || d.Status.UpdatedReplicas != want ||
		d.Status.AvailableReplicas != want || d.Status.Replicas != want {
		return false
	}
	active, _ := w.counts()
	return active == int(want)
}

func (w *world) describe() string {
	s := ""
	for _, rs := range w.replicaSets() {
		s += fmt.Sprintf("rs %s spec=%d status=%+v rev=%s\n", rs.Name, *rs.Spec.Replicas, rs.Status, rs.Annotations[AnnotationRevision])
	}
	a, av := w.counts()
	d := w.deployment()
	s += fmt.Sprintf("pods active=%d available=%d; deploy status %+v\n", a, av, d.Status)
	return s
}

func TestDeploymentRolloutProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		replicas := rapid.Int32Range(0, 12).Draw(rt, "replicas")
		drawIOS := func(label string) api.IntOrString {
			if rapid.Bool().Draw(rt, label+"Percent") {
				return api.FromString(fmt.Sprintf("%d%%", rapid.IntRange(0, 100).Draw(rt, label+"Pct")))
			}
			return api.FromInt(int32(rapid.IntRange(0, 4).Draw(rt, label)))
		}
		surgeV, unavV := drawIOS("surge"), drawIOS("unavailable")
		// Resolved independently of the code under test.
		resolve := func(v api.IntOrString, up bool) int {
			if !v.IsString {
				return int(v.IntVal)
			}
			var pct int
			fmt.Sscanf(v.StrVal, "%d%%", &pct)
			if up {
				return (pct*int(replicas) + 99) / 100
			}
			return pct * int(replicas) / 100
		}
		surge, unav := resolve(surgeV, true), resolve(unavV, false)
		if surge == 0 && unav == 0 {
			unav = 1
		}
		unav = min(unav, int(replicas))

		w := newWorld(rt)
		w.put(testDeploy(replicas, "img:1", surgeV, unavV))
		w.settle(50)

		images := []string{"img:2"}
		if rapid.Bool().Draw(rt, "secondChange") {
			images = append(images, "img:3")
		}
		changeAt := rapid.IntRange(1, 6).Draw(rt, "changeAt")
		change := func(image string) {
			d := w.deployment().DeepCopyObject().(*api.Deployment)
			d.Spec.Template.Spec.Containers[0].Image = image
			d.Generation++
			w.put(d)
		}
		change(images[0])
		limit := 30 * (int(replicas) + 3)
		done := false
		for i := 0; i < limit; i++ {
			if i == changeAt && len(images) > 1 {
				change(images[1])
			}
			w.step()
			active, available := w.counts()
			if active > int(replicas)+surge {
				rt.Fatalf("step %d: %d pods > replicas %d + maxSurge %d\n%s", i, active, replicas, surge, w.describe())
			}
			if available < int(replicas)-unav {
				rt.Fatalf("step %d: %d available < replicas %d - maxUnavailable %d\n%s", i, available, replicas, unav, w.describe())
			}
			// Some not-ready pods become ready; at least one, so the
			// rollout can always progress.
			first := true
			w.markReady(func(p *api.Pod) bool {
				ok := first || rapid.Bool().Draw(rt, "ready")
				first = false
				return ok
			})
			w.now = w.now.Add(time.Second)
			if i > changeAt && rolloutComplete(w) {
				done = true
				break
			}
		}
		if !done {
			rt.Fatalf("rollout did not complete in %d steps\n%s", limit, w.describe())
		}
		final := images[len(images)-1]
		for _, p := range w.pods() {
			if p.Spec.Containers[0].Image != final {
				rt.Fatalf("pod %s runs %s after the rollout to %s", p.Name, p.Spec.Containers[0].Image, final)
			}
		}
		for _, rs := range w.replicaSets() {
			if rs.Spec.Template.Spec.Containers[0].Image != final && *rs.Spec.Replicas != 0 {
				rt.Fatalf("old ReplicaSet %s still has %d replicas", rs.Name, *rs.Spec.Replicas)
			}
		}
		if got := Revision(&w.deployment().ObjectMeta); got != int64(1+len(images)) {
			rt.Fatalf("deployment revision %d, want %d", got, 1+len(images))
		}
	})
}

func TestDeploymentFirstReconcile(t *testing.T) {
	d := testDeploy(3, "img:1", api.FromString("25%"), api.FromString("25%"))
	p := ReconcileDeployment(DeploymentInput{Deployment: d, Now: t0})
	if len(p.Create) != 1 {
		t.Fatalf("plan:\n%s", p)
	}
	rs := p.Create[0].(*api.ReplicaSet)
	hash := TemplateHash(&d.Spec.Template, 0)
	if rs.Name != "web-"+hash || rs.Labels[LabelPodTemplateHash] != hash || rs.Spec.Template.Labels[LabelPodTemplateHash] != hash ||
		rs.Spec.Selector.MatchLabels[LabelPodTemplateHash] != hash || rs.Spec.Template.Labels["app"] != "x" {
		t.Errorf("rs %+v", rs.ObjectMeta)
	}
	if *rs.Spec.Replicas != 3 || Revision(&rs.ObjectMeta) != 1 || api.ControllerOf(&rs.ObjectMeta).UID != d.UID {
		t.Errorf("rs replicas %d revision %d", *rs.Spec.Replicas, Revision(&rs.ObjectMeta))
	}
	if _, ok := d.Spec.Template.Labels[LabelPodTemplateHash]; ok {
		t.Error("deployment template changed")
	}
	if len(p.Update) != 1 || Revision(&p.Update[0].(*api.Deployment).ObjectMeta) != 1 || len(p.UpdateStatus) != 0 {
		t.Errorf("want the revision annotation alone on the deployment:\n%s", p)
	}
}

// rolloutState builds a Deployment mid-rollout: an old ReplicaSet of oldN
// available pods and a new one of newSpec replicas, newAvail available.
func rolloutState(d *api.Deployment, oldN, newSpec, newAvail int32) (*api.ReplicaSet, *api.ReplicaSet) {
	oldT := d.DeepCopyObject().(*api.Deployment)
	oldT.Spec.Template.Spec.Containers[0].Image = "img:0"
	old := newReplicaSetFor(oldT, "web-"+TemplateHash(&oldT.Spec.Template, 0), 1)
	old.UID, old.ResourceVersion, old.Spec.Replicas = "uid-old", "5", i32(oldN)
	old.Status = api.ReplicaSetStatus{Replicas: oldN, ReadyReplicas: oldN, AvailableReplicas: oldN}
	nw := newReplicaSetFor(d, "web-"+TemplateHash(&d.Spec.Template, 0), 2)
	nw.UID, nw.ResourceVersion, nw.Spec.Replicas = "uid-new", "6", i32(newSpec)
	nw.Status = api.ReplicaSetStatus{Replicas: newSpec, ReadyReplicas: newAvail, AvailableReplicas: newAvail}
	nw.CreationTimestamp = api.NewTime(t0.Add(time.Minute))
	d.Annotations = map[string]string{AnnotationRevision: "2"}
	return old, nw
}

func scaledTo(p Plan) map[string]int32 {
	m := map[string]int32{}
	for _, o := range p.Update {
		if rs, ok := o.(*api.ReplicaSet); ok {
			m[rs.UID] = *rs.Spec.Replicas
		}
	}
	return m
}

func TestDeploymentRollingSteps(t *testing.T) {
	tests := []struct {
		name                  string
		surge, unavail        api.IntOrString
		oldN, newSpec, newAvl int32
		want                  map[string]int32
	}{
		{"scale up new within surge", api.FromInt(1), api.FromInt(0), 4, 0, 0, map[string]int32{"uid-new": 1}},
		{"surge reached, new not available: wait", api.FromInt(1), api.FromInt(0), 4, 1, 0, map[string]int32{}},
		{"new available: scale old down", api.FromInt(1), api.FromInt(0), 4, 1, 1, map[string]int32{"uid-old": 3}},
		{"maxUnavailable lets old go first", api.FromInt(0), api.FromInt(2), 4, 0, 0, map[string]int32{"uid-old": 2}},
		{"percent: 25% of 4 = 1 each", api.FromString("25%"), api.FromString("25%"), 4, 0, 0, map[string]int32{"uid-new": 1}},
		{"percent rounding: 10% of 4 surge up 1, unavailable down 0", api.FromString("10%"), api.FromString("10%"), 4, 1, 0, map[string]int32{}},
		{"last old pods", api.FromInt(1), api.FromInt(0), 1, 4, 4, map[string]int32{"uid-old": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := testDeploy(4, "img:1", tc.surge, tc.unavail)
			old, nw := rolloutState(d, tc.oldN, tc.newSpec, tc.newAvl)
			p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{old, nw}, Now: t0})
			if len(p.Create) != 0 || len(p.Delete) != 0 {
				t.Fatalf("unexpected create/delete:\n%s", p)
			}
			got := scaledTo(p)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("scaled %v, want %v\n%v", got, tc.want, p.Events)
			}
		})
	}
}

func TestDeploymentRecreate(t *testing.T) {
	d := testDeploy(3, "img:1", api.FromInt(1), api.FromInt(0))
	d.Spec.Strategy = api.DeploymentStrategy{Type: api.RecreateStrategy}
	old, nw := rolloutState(d, 3, 0, 0)

	// Old ReplicaSet still scaled: scale it to 0, leave the new one.
	p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{old, nw}, Now: t0})
	if got := scaledTo(p); fmt.Sprint(got) != fmt.Sprint(map[string]int32{"uid-old": 0}) {
		t.Fatalf("step 1 scaled %v", got)
	}
	// Scaled to 0 but a pod is still there: wait.
	old.Spec.Replicas = i32(0)
	old.Status = api.ReplicaSetStatus{}
	lingering := testPod("old-pod", appX, ownedBy(old), terminating())
	p = ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{old, nw}, Pods: []*api.Pod{lingering}, Now: t0})
	if got := scaledTo(p); len(got) != 0 {
		t.Fatalf("step 2 scaled %v while an old pod exists", got)
	}
	// Gone: scale the new one up in one go.
	p = ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{old, nw}, Now: t0})
	if got := scaledTo(p); fmt.Sprint(got) != fmt.Sprint(map[string]int32{"uid-new": 3}) {
		t.Fatalf("step 3 scaled %v", got)
	}
}

func TestDeploymentRollbackReusesReplicaSet(t *testing.T) {
	d := testDeploy(2, "img:1", api.FromInt(1), api.FromInt(0))
	cur, older := rolloutState(d, 2, 0, 0) // "older" has img:1 at revision 2, cur img:0 at revision 1
	setRevision(&cur.ObjectMeta, 3)
	older.Spec.Replicas = i32(0)
	older.Status = api.ReplicaSetStatus{}
	d.Annotations = map[string]string{AnnotationRevision: "3"}
	// d's template (img:1) equals older's: no new ReplicaSet, older becomes revision 4.
	p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{cur, older}, Now: t0})
	if len(p.Create) != 0 {
		t.Fatalf("created a ReplicaSet on rollback:\n%s", p)
	}
	var sawRS, sawD bool
	for _, o := range p.Update {
		switch x := o.(type) {
		case *api.ReplicaSet:
			if x.UID == older.UID && Revision(&x.ObjectMeta) == 4 && *x.Spec.Replicas == 1 {
				sawRS = true
			}
		case *api.Deployment:
			sawD = Revision(&x.ObjectMeta) == 4
		}
	}
	if !sawRS || !sawD {
		t.Errorf("want older at revision 4 scaled to 1 and deployment at revision 4:\n%s%v", p, p.Events)
	}
}

func TestRollbackTemplate(t *testing.T) {
	d := testDeploy(2, "img:1", api.FromInt(1), api.FromInt(0))
	old, nw := rolloutState(d, 0, 2, 2) // old: img:0 rev 1; new: img:1 rev 2
	list := []*api.ReplicaSet{old, nw, testRS("unrelated", 1, appX)}
	tmpl, err := RollbackTemplate(d, list, 0)
	if err != nil || tmpl.Spec.Containers[0].Image != "img:0" {
		t.Fatalf("undo: %v %+v", err, tmpl)
	}
	if _, ok := tmpl.Labels[LabelPodTemplateHash]; ok {
		t.Error("hash label kept")
	}
	if tmpl, err = RollbackTemplate(d, list, 2); err != nil || tmpl.Spec.Containers[0].Image != "img:1" {
		t.Fatalf("to 2: %v", err)
	}
	if _, err = RollbackTemplate(d, list, 9); !errors.Is(err, ErrRevisionNotFound) {
		t.Errorf("to 9: %v", err)
	}
	if _, err = RollbackTemplate(d, []*api.ReplicaSet{nw}, 0); !errors.Is(err, ErrNoRolloutHistory) {
		t.Errorf("no history: %v", err)
	}
	// Writing the template back makes the reconcile reuse the old ReplicaSet.
	d2 := d.DeepCopyObject().(*api.Deployment)
	d2.Spec.Template = *tmpl
	if TemplateHash(&d2.Spec.Template, 0) != TemplateHash(&nw.Spec.Template, 0) {
		t.Error("rolled-back template does not match its ReplicaSet")
	}
}

func TestDeploymentHistoryLimit(t *testing.T) {
	d := testDeploy(1, "img:9", api.FromInt(1), api.FromInt(0))
	d.Spec.RevisionHistoryLimit = i32(2)
	var list []*api.ReplicaSet
	for i := range 5 {
		t2 := d.DeepCopyObject().(*api.Deployment)
		t2.Spec.Template.Spec.Containers[0].Image = fmt.Sprint("img:", i)
		rs := newReplicaSetFor(t2, fmt.Sprint("web-old", i), int64(i+1))
		rs.UID, rs.Spec.Replicas = fmt.Sprint("uid-old", i), i32(0)
		list = append(list, rs)
	}
	nw := newReplicaSetFor(d, "web-"+TemplateHash(&d.Spec.Template, 0), 6)
	nw.UID, nw.Spec.Replicas = "uid-new", i32(1)
	nw.Status = api.ReplicaSetStatus{Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	d.Annotations = map[string]string{AnnotationRevision: "6"}
	p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: append(list, nw), Now: t0})
	got := deleted(p)
	if len(got) != 3 || !got["web-old0"] || !got["web-old1"] || !got["web-old2"] {
		t.Errorf("deleted %v, want the three lowest revisions", got)
	}
	// Not complete (new one not available): keep history.
	nw.Status.AvailableReplicas = 0
	if p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: append(list, nw), Now: t0}); len(p.Delete) != 0 {
		t.Errorf("pruned mid-rollout: %v", deleted(p))
	}
}

func TestDeploymentProgressConditions(t *testing.T) {
	d := testDeploy(4, "img:1", api.FromInt(1), api.FromInt(0))
	old, nw := rolloutState(d, 4, 1, 0)
	d.Status = api.DeploymentStatus{ObservedGeneration: 1, Replicas: 5, UpdatedReplicas: 1, ReadyReplicas: 4, AvailableReplicas: 4}
	d.Status.Conditions, _ = setCondition(nil, api.Condition{Type: DeploymentProgressing, Status: api.ConditionTrue,
		Reason: ReasonRSUpdated, LastUpdateTime: api.NewTime(t0)}, t0)
	cond := func(p Plan) *api.Condition {
		if len(p.UpdateStatus) == 0 {
			return api.FindCondition(d.Status.Conditions, DeploymentProgressing)
		}
		return api.FindCondition(p.UpdateStatus[0].(*api.Deployment).Status.Conditions, DeploymentProgressing)
	}
	rsl := []*api.ReplicaSet{old, nw}
	// Within the deadline, no progress: still progressing.
	p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: rsl, Now: t0.Add(5 * time.Minute)})
	if c := cond(p); c.Status != api.ConditionTrue || c.Reason != ReasonRSUpdated {
		t.Errorf("before deadline: %+v", c)
	}
	if at, ok := ProgressDeadline(d); !ok || !at.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("ProgressDeadline %v %v", at, ok)
	}
	// Past it: False, ProgressDeadlineExceeded.
	p = ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: rsl, Now: t0.Add(11 * time.Minute)})
	if c := cond(p); c.Status != api.ConditionFalse || c.Reason != ReasonProgressDeadline {
		t.Errorf("after deadline: %+v", c)
	}
	// Progress (the new pod became available) refreshes the clock.
	nw.Status.AvailableReplicas, nw.Status.ReadyReplicas = 1, 1
	p = ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: rsl, Now: t0.Add(11 * time.Minute)})
	if c := cond(p); c.Status != api.ConditionTrue || c.Reason != ReasonRSUpdated || !c.LastUpdateTime.Equal(t0.Add(11*time.Minute)) {
		t.Errorf("after progress: %+v", c)
	}
	st := p.UpdateStatus[0].(*api.Deployment).Status
	if st.Replicas != 5 || st.UpdatedReplicas != 1 || st.AvailableReplicas != 5 || st.UnavailableReplicas != 0 {
		t.Errorf("status %+v", st)
	}
	if a := api.FindCondition(st.Conditions, DeploymentAvailable); a == nil || a.Status != api.ConditionTrue {
		t.Errorf("available %+v", a)
	}
}

func TestDeploymentPaused(t *testing.T) {
	d := testDeploy(4, "img:1", api.FromInt(1), api.FromInt(0))
	d.Spec.Paused = true
	old, _ := rolloutState(d, 4, 0, 0)
	p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{old}, Now: t0})
	if len(p.Create) != 0 || len(p.Update) != 0 {
		t.Fatalf("paused deployment rolled out:\n%s", p)
	}
	if c := api.FindCondition(p.UpdateStatus[0].(*api.Deployment).Status.Conditions, DeploymentProgressing); c.Reason != ReasonDeploymentPaused {
		t.Errorf("condition %+v", c)
	}
}

func TestDeploymentNameCollision(t *testing.T) {
	d := testDeploy(1, "img:1", api.FromInt(1), api.FromInt(0))
	squatter := testRS("web-"+TemplateHash(&d.Spec.Template, 0), 1, map[string]string{"app": "other"})
	p := ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{squatter}, Now: t0})
	if len(p.Create) != 0 || len(p.UpdateStatus) != 1 || *p.UpdateStatus[0].(*api.Deployment).Status.CollisionCount != 1 {
		t.Fatalf("plan:\n%s", p)
	}
	d.Status.CollisionCount = i32(1)
	p = ReconcileDeployment(DeploymentInput{Deployment: d, ReplicaSets: []*api.ReplicaSet{squatter}, Now: t0})
	if len(p.Create) != 1 || p.Create[0].GetObjectMeta().Name == squatter.Name {
		t.Fatalf("plan after collision:\n%s", p)
	}
}

func TestDeploymentZeroReplicas(t *testing.T) {
	w := newWorld(t)
	w.put(testDeploy(3, "img:1", api.FromString("25%"), api.FromString("25%")))
	w.settle(30)
	d := w.deployment().DeepCopyObject().(*api.Deployment)
	d.Spec.Replicas = i32(0)
	w.put(d)
	w.settle(30)
	if a, _ := w.counts(); a != 0 {
		t.Fatalf("%d pods left", a)
	}
}
