package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func testStore() *Store { return New(Config{HistorySize: 100, WatchBuffer: 64}) }

func pod(ns, name, node string, labels map[string]string) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, Labels: labels, UID: "uid-" + name}}
	p.Spec.NodeName = node
	p.Spec.Containers = []api.Container{{Name: "c", Image: "img"}}
	return p
}

func node(name string) *api.Node { return &api.Node{ObjectMeta: api.ObjectMeta{Name: name}} }

func configMap(ns, name string) *api.ConfigMap {
	return &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"k": "v"}}
}

// mustApply applies ops and fails the test on any error.
func mustApply(t testing.TB, s *Store, ops ...Op) []Result {
	t.Helper()
	res := s.Apply(ops)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("op %d: %v", i, r.Err)
		}
	}
	return res
}

func create(obj api.Object) Op { return Op{Type: OpCreate, Object: obj} }
func update(obj api.Object) Op { return Op{Type: OpUpdate, Object: obj} }

func mustGet(t testing.TB, s *Store, kind, ns, name string) api.Object {
	t.Helper()
	o, err := s.Get(Key{Kind: kind, Namespace: ns, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// editPod returns a deep copy of the stored pod, changed by f.
func editPod(t testing.TB, s *Store, ns, name string, f func(*api.Pod)) *api.Pod {
	t.Helper()
	p := mustGet(t, s, "Pod", ns, name).DeepCopyObject().(*api.Pod)
	f(p)
	return p
}

func names(objs []api.Object) string {
	var out []string
	for _, o := range objs {
		m := o.GetObjectMeta()
		if m.Namespace != "" {
			out = append(out, m.Namespace+"/"+m.Name)
		} else {
			out = append(out, m.Name)
		}
	}
	return strings.Join(out, " ")
}

func TestCreateGetDelete(t *testing.T) {
	s := testStore()
	res := mustApply(t, s, create(pod("default", "web", "n1", nil)), create(configMap("default", "cfg")), create(node("n1")))
	if s.Revision() != 3 {
		t.Fatalf("revision = %d, want 3", s.Revision())
	}
	p := res[0].Object.(*api.Pod)
	if p.ResourceVersion != "1" || p.Generation != 1 || p.Kind != "Pod" || p.APIVersion != "v1" {
		t.Errorf("created pod meta: rv=%q gen=%d kind=%q apiVersion=%q", p.ResourceVersion, p.Generation, p.Kind, p.APIVersion)
	}
	if cm := res[1].Object.(*api.ConfigMap); cm.ResourceVersion != "2" || cm.Generation != 0 {
		t.Errorf("configmap: rv=%q gen=%d (a kind without spec has no generation)", cm.ResourceVersion, cm.Generation)
	}
	if got := mustGet(t, s, "Pod", "default", "web"); got != res[0].Object {
		t.Error("Get did not return the stored object")
	}

	// A create ignores any incoming resourceVersion and generation.
	in := pod("default", "other", "", nil)
	in.ResourceVersion, in.Generation = "99", 7
	r := mustApply(t, s, create(in))[0].Object.GetObjectMeta()
	if r.ResourceVersion != "4" || r.Generation != 1 {
		t.Errorf("incoming rv/generation not ignored: %q %d", r.ResourceVersion, r.Generation)
	}

	stored := mustGet(t, s, "Pod", "default", "web")
	del := mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "web"}, ResourceVersion: 1})
	if got := del[0].Object.GetObjectMeta().ResourceVersion; got != "5" {
		t.Errorf("deleted object's resourceVersion = %q, want the delete's revision 5", got)
	}
	if stored.GetObjectMeta().ResourceVersion != "1" {
		t.Error("delete mutated the stored object in place")
	}
	if _, err := s.Get(Key{Kind: "Pod", Namespace: "default", Name: "web"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete: %v", err)
	}
	// Delete may name its object through Object instead of Key.
	mustApply(t, s, Op{Type: OpDelete, Object: node("n1")})
	if s.Revision() != 6 {
		t.Errorf("revision = %d, want 6", s.Revision())
	}
}

func TestApplyErrors(t *testing.T) {
	s := testStore()
	mustApply(t, s, create(pod("default", "web", "n1", nil)), create(configMap("default", "cfg")))
	webKey := Key{Kind: "Pod", Namespace: "default", Name: "web"}
	stale := pod("default", "web", "n2", nil)
	stale.ResourceVersion = "7"
	wrongUID := pod("default", "web", "n1", nil)
	wrongUID.UID = "someone-else"
	badRV := pod("default", "web", "n1", nil)
	badRV.ResourceVersion = "x1"
	cmStatus := configMap("default", "cfg")

	tests := []struct {
		name string
		op   Op
		want error
		msg  []string
	}{
		{"nil object", Op{Type: OpCreate}, ErrInvalid, []string{"no object"}},
		{"unknown op", Op{Type: 42, Object: pod("default", "x", "", nil)}, ErrInvalid, []string{"unknown operation type 42"}},
		{"kind not served", create(&api.PersistentVolumeClaim{ObjectMeta: api.ObjectMeta{Name: "c", Namespace: "default"}}), ErrInvalid, []string{"PersistentVolumeClaim"}},
		{"empty name", create(pod("default", "", "", nil)), ErrInvalid, []string{"metadata.name"}},
		{"namespaced without namespace", create(pod("", "web", "", nil)), ErrInvalid, []string{"metadata.namespace must be set"}},
		{"cluster-scoped with namespace", create(&api.Node{ObjectMeta: api.ObjectMeta{Name: "n", Namespace: "default"}}), ErrInvalid, []string{"must be empty", `"default"`}},
		{"create existing", create(pod("default", "web", "", nil)), ErrAlreadyExists, []string{`pods "default/web"`}},
		{"update missing", update(pod("default", "nope", "", nil)), ErrNotFound, []string{`pods "default/nope"`}},
		{"update status missing", Op{Type: OpUpdateStatus, Object: pod("default", "nope", "", nil)}, ErrNotFound, nil},
		{"update stale", update(stale), ErrConflict, []string{`pods "default/web"`, "resourceVersion 1", "against 7"}},
		{"update status stale", Op{Type: OpUpdateStatus, Object: stale}, ErrConflict, []string{"resourceVersion 1"}},
		{"update other uid", update(wrongUID), ErrConflict, []string{"someone-else", "uid-web"}},
		{"update bad resourceVersion", update(badRV), ErrInvalid, []string{"metadata.resourceVersion"}},
		{"update status of a kind without status", Op{Type: OpUpdateStatus, Object: cmStatus}, ErrInvalid, []string{"has no status"}},
		{"delete missing", Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "nope"}}, ErrNotFound, []string{`pods "default/nope"`}},
		{"delete stale", Op{Type: OpDelete, Key: webKey, ResourceVersion: 9}, ErrConflict, []string{"resourceVersion 1", "against 9"}},
		{"delete negative precondition", Op{Type: OpDelete, Key: webKey, ResourceVersion: -1}, ErrInvalid, nil},
		{"delete unknown kind", Op{Type: OpDelete, Key: Key{Kind: "Widget", Name: "w"}}, ErrInvalid, []string{`"Widget"`}},
		{"delete empty key", Op{Type: OpDelete}, ErrInvalid, []string{"missing kind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Revision()
			res := s.Apply([]Op{tt.op})
			if !errors.Is(res[0].Err, tt.want) {
				t.Fatalf("err = %v, want %v", res[0].Err, tt.want)
			}
			for _, m := range tt.msg {
				if !strings.Contains(res[0].Err.Error(), m) {
					t.Errorf("error %q does not mention %q", res[0].Err, m)
				}
			}
			if res[0].Object != nil {
				t.Error("a failed op returned an object")
			}
			if s.Revision() != before {
				t.Errorf("a failed op moved the revision from %d to %d", before, s.Revision())
			}
		})
	}

	// Passing the stored object itself back is refused, not silently applied.
	stored := mustGet(t, s, "Pod", "default", "web")
	if res := s.Apply([]Op{update(stored)}); !errors.Is(res[0].Err, ErrInvalid) {
		t.Errorf("update with the stored instance: %v", res[0].Err)
	}
	if stored.GetObjectMeta().ResourceVersion != "1" {
		t.Error("stored object was mutated")
	}
}

func TestApplyOpsAreIndependent(t *testing.T) {
	s := testStore()
	res := s.Apply([]Op{
		create(pod("default", "a", "", nil)),
		create(pod("default", "a", "", nil)),
		create(pod("default", "b", "", nil)),
	})
	if res[0].Err != nil || !errors.Is(res[1].Err, ErrAlreadyExists) || res[2].Err != nil {
		t.Fatalf("results: %v / %v / %v", res[0].Err, res[1].Err, res[2].Err)
	}
	if got := res[2].Object.GetObjectMeta().ResourceVersion; got != "2" {
		t.Errorf("third op's resourceVersion = %s, want 2 (a failed op takes no revision)", got)
	}
	if s.Revision() != 2 {
		t.Errorf("revision = %d", s.Revision())
	}
}

func TestOptimisticConcurrency(t *testing.T) {
	s := testStore()
	mustApply(t, s, create(pod("default", "web", "", nil)))

	// Two updates against the same resourceVersion in one batch: the first
	// wins, the second conflicts.
	a := editPod(t, s, "default", "web", func(p *api.Pod) { p.Labels = map[string]string{"v": "a"} })
	b := editPod(t, s, "default", "web", func(p *api.Pod) { p.Labels = map[string]string{"v": "b"} })
	res := s.Apply([]Op{update(a), update(b)})
	if res[0].Err != nil || !errors.Is(res[1].Err, ErrConflict) {
		t.Fatalf("results: %v / %v", res[0].Err, res[1].Err)
	}
	if got := mustGet(t, s, "Pod", "default", "web").GetObjectMeta().Labels["v"]; got != "a" {
		t.Errorf("label = %q, want a", got)
	}

	// Many writers racing from the same read: exactly one wins each round.
	for round := range 20 {
		base := mustGet(t, s, "Pod", "default", "web")
		const writers = 8
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := base.DeepCopyObject().(*api.Pod)
				p.Labels = map[string]string{"w": fmt.Sprint(i)}
				errs[i] = s.Apply([]Op{update(p)})[0].Err
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", round, wins)
		}
	}

	// An update without a resourceVersion is unconditional.
	p := pod("default", "web", "", map[string]string{"force": "yes"})
	mustApply(t, s, update(p))
}

func TestGenerationAndStatus(t *testing.T) {
	s := testStore()
	created := pod("default", "web", "", nil)
	created.CreationTimestamp = api.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	mustApply(t, s, create(created))

	gen := func() int64 { return mustGet(t, s, "Pod", "default", "web").GetObjectMeta().Generation }
	get := func() *api.Pod { return mustGet(t, s, "Pod", "default", "web").(*api.Pod) }

	// Metadata-only change: generation kept.
	mustApply(t, s, update(editPod(t, s, "default", "web", func(p *api.Pod) { p.Labels = map[string]string{"a": "b"} })))
	if gen() != 1 {
		t.Errorf("label change bumped generation to %d", gen())
	}
	// Spec change: generation bumped.
	mustApply(t, s, update(editPod(t, s, "default", "web", func(p *api.Pod) { p.Spec.NodeName = "n1" })))
	if gen() != 2 {
		t.Errorf("spec change: generation %d, want 2", gen())
	}
	// Status through OpUpdate is ignored; uid and creationTimestamp cannot change.
	mustApply(t, s, update(editPod(t, s, "default", "web", func(p *api.Pod) {
		p.Status.Phase = api.PodRunning
		p.UID = ""
		p.CreationTimestamp = api.Time{}
		p.Generation = 50
	})))
	got := get()
	if got.Status.Phase != "" || got.UID != "uid-web" || !got.CreationTimestamp.Equal(created.CreationTimestamp.Time) || got.Generation != 2 {
		t.Errorf("after update: phase=%q uid=%q created=%v gen=%d", got.Status.Phase, got.UID, got.CreationTimestamp, got.Generation)
	}
	// OpUpdateStatus changes only status: spec and labels come from the store.
	st := editPod(t, s, "default", "web", func(p *api.Pod) {
		p.Status.Phase = api.PodRunning
		p.Status.PodIP = "10.244.1.2"
		p.Spec.NodeName = "elsewhere"
		p.Labels = map[string]string{"sneaky": "yes"}
	})
	res := mustApply(t, s, Op{Type: OpUpdateStatus, Object: st})
	got = get()
	if res[0].Object != got {
		t.Error("result is not the stored object")
	}
	if got.Status.Phase != api.PodRunning || got.Status.PodIP != "10.244.1.2" {
		t.Errorf("status not applied: %+v", got.Status)
	}
	if got.Spec.NodeName != "n1" || got.Labels["a"] != "b" || got.Labels["sneaky"] != "" || got.Generation != 2 {
		t.Errorf("status update leaked: node=%q labels=%v gen=%d", got.Spec.NodeName, got.Labels, got.Generation)
	}
	if got.ResourceVersion != fmt.Sprint(s.Revision()) {
		t.Errorf("rv %q != revision %d", got.ResourceVersion, s.Revision())
	}
	// The status-only update moved nothing in the node index.
	objs, _, _ := s.List("Pod", "", Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: "n1"}}})
	if names(objs) != "default/web" {
		t.Errorf("node index after status update: %q", names(objs))
	}

	// Kinds without spec/status: ConfigMap data changes never touch generation.
	mustApply(t, s, create(configMap("default", "cfg")))
	cm := mustGet(t, s, "ConfigMap", "default", "cfg").DeepCopyObject().(*api.ConfigMap)
	cm.Data["k"] = "changed"
	out := mustApply(t, s, update(cm))[0].Object.(*api.ConfigMap)
	if out.Generation != 0 || out.Data["k"] != "changed" {
		t.Errorf("configmap update: gen=%d data=%v", out.Generation, out.Data)
	}
}

func TestUpdateNeverMutatesStoredObject(t *testing.T) {
	s := testStore()
	mustApply(t, s, create(pod("default", "web", "n1", map[string]string{"a": "1"})))
	before := mustGet(t, s, "Pod", "default", "web").(*api.Pod)
	mustApply(t, s, update(editPod(t, s, "default", "web", func(p *api.Pod) { p.Labels["a"] = "2"; p.Spec.NodeName = "n2" })))
	mustApply(t, s, Op{Type: OpUpdateStatus, Object: editPod(t, s, "default", "web", func(p *api.Pod) { p.Status.Phase = "Running" })})
	mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "web"}})
	if before.ResourceVersion != "1" || before.Labels["a"] != "1" || before.Spec.NodeName != "n1" || before.Status.Phase != "" || before.Generation != 1 {
		t.Errorf("an old reader's object changed: %+v", before.ObjectMeta)
	}
}

func TestList(t *testing.T) {
	s := testStore()
	mustApply(t, s,
		create(pod("b", "z", "n1", map[string]string{"app": "web"})),
		create(pod("a", "y", "n2", map[string]string{"app": "db"})),
		create(pod("a", "x", "n1", map[string]string{"app": "web"})),
		create(pod("b", "w", "", nil)),
		create(node("n2")),
		create(node("n1")),
		create(configMap("a", "cfg")),
	)
	sel := func(labels, fields string) Selector {
		l, err := api.ParseSelector(labels)
		if err != nil {
			t.Fatal(err)
		}
		f, err := api.ParseFieldSelector(fields)
		if err != nil {
			t.Fatal(err)
		}
		return Selector{Labels: l, Fields: f}
	}
	tests := []struct {
		kind, ns string
		sel      Selector
		want     string
	}{
		{"Pod", "", Selector{}, "a/x a/y b/w b/z"},
		{"Pod", "a", Selector{}, "a/x a/y"},
		{"Pod", "c", Selector{}, ""},
		{"Pod", "", sel("app=web", ""), "a/x b/z"},
		{"Pod", "b", sel("app=web", ""), "b/z"},
		{"Pod", "", sel("!app", ""), "b/w"},
		{"Pod", "", sel("", "spec.nodeName=n1"), "a/x b/z"},
		{"Pod", "a", sel("", "spec.nodeName=n1"), "a/x"},
		{"Pod", "", sel("", "spec.nodeName="), "b/w"},
		{"Pod", "", sel("", "spec.nodeName==n1,metadata.name!=x"), "b/z"},
		{"Pod", "", sel("app=db", "spec.nodeName=n1"), ""},
		{"Pod", "", sel("", "spec.nodeName!=n1"), "a/y b/w"},
		{"Pod", "", sel("", "metadata.namespace=b"), "b/w b/z"},
		{"Node", "", Selector{}, "n1 n2"},
		{"Node", "", sel("", "metadata.name=n2"), "n2"},
		{"ConfigMap", "a", Selector{}, "a/cfg"},
		{"Deployment", "", Selector{}, ""},
	}
	for _, tt := range tests {
		objs, rev, err := s.List(tt.kind, tt.ns, tt.sel)
		if err != nil {
			t.Fatalf("List(%s, %q, %v): %v", tt.kind, tt.ns, tt.sel, err)
		}
		if got := names(objs); got != tt.want {
			t.Errorf("List(%s, %q, %q %q) = %q, want %q", tt.kind, tt.ns, tt.sel.Labels, tt.sel.Fields, got, tt.want)
		}
		if rev != 7 {
			t.Errorf("list revision = %d, want 7", rev)
		}
	}

	errs := []struct {
		kind, ns string
		sel      Selector
		msg      string
	}{
		{"Widget", "", Selector{}, `"Widget"`},
		{"", "", Selector{}, "missing kind"},
		{"Node", "default", Selector{}, "cluster-scoped"},
		{"Node", "", sel("", "spec.nodeName=n1"), `field "spec.nodeName" is not selectable for nodes`},
		{"ConfigMap", "", sel("", "status.phase=x"), "status.phase"},
	}
	for _, e := range errs {
		_, _, err := s.List(e.kind, e.ns, e.sel)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), e.msg) {
			t.Errorf("List(%q, %q): %v, want ErrInvalid mentioning %q", e.kind, e.ns, err, e.msg)
		}
	}
}

func TestConfigLimits(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		cfg   Config
		field string
	}{
		{Config{HistorySize: -1, HistoryBytes: MinHistoryBytes, WatchBuffer: 1}, "HistorySize"},
		{Config{HistorySize: MaxHistorySize + 1, HistoryBytes: MinHistoryBytes, WatchBuffer: 1}, "HistorySize"},
		{Config{HistorySize: 1, HistoryBytes: MinHistoryBytes - 1, WatchBuffer: 1}, "HistoryBytes"},
		{Config{HistorySize: 1, HistoryBytes: MaxHistoryBytes + 1, WatchBuffer: 1}, "HistoryBytes"},
		{Config{HistorySize: 1, HistoryBytes: MinHistoryBytes, WatchBuffer: -5}, "WatchBuffer"},
		{Config{HistorySize: 1, HistoryBytes: MinHistoryBytes, WatchBuffer: MaxWatchBuffer + 1}, "WatchBuffer"},
	}
	for _, b := range bad {
		err := b.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), b.field) {
			t.Errorf("Validate(%+v) = %v, want error naming %s", b.cfg, err, b.field)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", b.cfg)
				}
			}()
			New(b.cfg)
		}()
	}
	if s := New(Config{}); s.cfg != DefaultConfig() {
		t.Errorf("zero Config took %+v, want the defaults", s.cfg)
	}
	if err := (Config{HistorySize: MaxHistorySize, HistoryBytes: MaxHistoryBytes, WatchBuffer: MaxWatchBuffer}).Validate(); err != nil {
		t.Errorf("the limits themselves are valid: %v", err)
	}
}
