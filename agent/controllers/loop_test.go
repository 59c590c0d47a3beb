package controllers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// copier is a toy controller: every ConfigMap "x" gets a copy "x-copy" with
// the same data. It exercises the loop: first pass, events, convergence.
func copier() Controller {
	key := func(ns, name string) string { return ns + "/" + strings.TrimSuffix(name, "-copy") }
	return Controller{
		Name: "copier",
		Keys: func(ev store.Event, _ *View) []string {
			if api.KindOf(ev.Object) != "ConfigMap" {
				return nil
			}
			m := ev.Object.GetObjectMeta()
			return []string{key(m.Namespace, m.Name)}
		},
		All: func(v *View) []string {
			objs, _, _ := v.Store().List("ConfigMap", "", store.Selector{})
			var keys []string
			for _, o := range objs {
				m := o.GetObjectMeta()
				keys = append(keys, key(m.Namespace, m.Name))
			}
			return keys
		},
		Reconcile: func(k string, v *View, now time.Time) placement.Plan {
			st := v.Store()
			ns, name, _ := strings.Cut(k, "/")
			var p placement.Plan
			src, err := st.Get(store.Key{Kind: "ConfigMap", Namespace: ns, Name: name})
			if err != nil {
				return p
			}
			cp, err := st.Get(store.Key{Kind: "ConfigMap", Namespace: ns, Name: name + "-copy"})
			want := src.(*api.ConfigMap).Data
			switch {
			case err != nil:
				p.Create = append(p.Create, &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name + "-copy"}, Data: want})
			case !equalData(cp.(*api.ConfigMap).Data, want):
				c := cp.DeepCopyObject().(*api.ConfigMap)
				c.Data = want
				p.Update = append(p.Update, c)
			}
			return p
		},
	}
}

func equalData(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestControllersConverge(t *testing.T) {
	st := store.New(store.DefaultConfig())
	b := &testBackend{st: st}
	put := func(typ store.OpType, name, v string) {
		cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"v": v}}
		if typ == store.OpCreate {
			cm.UID = api.NewUID()
		}
		api.SetTypeMeta(cm)
		if res := st.Apply([]store.Op{{Type: typ, Object: cm}}); res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	}
	put(store.OpCreate, "before", "1") // exists before the loop starts: the first pass handles it

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Run(ctx, st, b, LoopConfig{Resync: time.Hour, Settle: time.Millisecond}, []Controller{copier()})
	}()
	defer func() { cancel(); wg.Wait() }()

	waitData := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			o, err := st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: name})
			if err == nil && o.(*api.ConfigMap).Data["v"] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never had v=%s (last: %v, %v)", name, want, o, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitData("before-copy", "1")
	put(store.OpCreate, "after", "2") // an event
	waitData("after-copy", "2")
	put(store.OpUpdate, "after", "3") // an update propagates
	waitData("after-copy", "3")

	// Converged: no more proposals once the copies match.
	n := b.proposals.Load()
	rev := st.Revision()
	put(store.OpCreate, "unrelated-copy", "x") // marks key "unrelated", whose source does not exist
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := b.proposals.Load(); got != n || st.Revision() != rev+1 {
		t.Fatalf("the loop kept writing after converging: %d proposals (was %d), revision %d (want %d)", got, n, st.Revision(), rev+1)
	}
}

func TestPlanOpsFillsCreates(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := placement.Plan{
		Create: []api.Object{&api.Pod{ObjectMeta: api.ObjectMeta{Namespace: "default", GenerateName: "web-"},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "i"}}}}},
		Delete: []placement.Ref{{Kind: "Pod", Namespace: "default", Name: "old", ResourceVersion: "7"}},
	}
	ops, err := planOps(p, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := ops[0].Object.GetObjectMeta()
	if !strings.HasPrefix(m.Name, "web-") || len(m.Name) <= len("web-") || m.UID == "" || !m.CreationTimestamp.Equal(now) {
		t.Errorf("create not filled: %+v", m)
	}
	if ops[0].Object.(*api.Pod).Spec.RestartPolicy != api.RestartAlways {
		t.Errorf("create not defaulted")
	}
	if ops[1].Type != store.OpDelete || ops[1].ResourceVersion != 7 || ops[1].Key.Name != "old" {
		t.Errorf("delete op: %+v", ops[1])
	}
	if _, err := planOps(placement.Plan{Delete: []placement.Ref{{Kind: "Pod", Name: "x", ResourceVersion: "seven"}}}, now, nil); err == nil {
		t.Error("a bad resourceVersion was accepted")
	}
}

// A controller's delete of a pod running on a node marks it terminating,
// as a delete through the API does; a forced one (lost node), an unbound
// pod or an unknown one is removed at once; one already terminating is
// left alone.
func TestPlanOpsDeletesPodsGracefully(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pod := func(name, node string, terminating bool) *api.Pod {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name, UID: "uid-" + name, ResourceVersion: "3"},
			Spec: api.PodSpec{NodeName: node, Containers: []api.Container{{Name: "c", Image: "i"}}}}
		if terminating {
			at := api.NewTime(now.Add(time.Second))
			p.DeletionTimestamp = &at
		}
		return p
	}
	objs := map[string]*api.Pod{
		"bound": pod("bound", "n1", false), "forced": pod("forced", "n1", false),
		"unbound": pod("unbound", "", false), "terminating": pod("terminating", "n1", true),
	}
	get := func(r placement.Ref) api.Object {
		if p, ok := objs[r.Name]; ok {
			return p
		}
		return nil
	}
	var p placement.Plan
	for _, name := range []string{"bound", "forced", "unbound", "terminating"} {
		r := placement.RefOf(objs[name])
		r.Force = name == "forced"
		p.Delete = append(p.Delete, r)
	}
	p.Delete = append(p.Delete, placement.Ref{Kind: "Pod", Namespace: "default", Name: "gone", UID: "uid-gone"})
	ops, err := planOps(p, now, get)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range ops {
		switch op.Type {
		case store.OpUpdate:
			m := op.Object.GetObjectMeta()
			if m.DeletionTimestamp == nil || !m.DeletionTimestamp.Equal(now.Add(30*time.Second)) || m.DeletionGracePeriodSeconds == nil || *m.DeletionGracePeriodSeconds != 30 {
				t.Errorf("%s marked with %v/%v, want now+30s/30", m.Name, m.DeletionTimestamp, m.DeletionGracePeriodSeconds)
			}
			got = append(got, "mark "+m.Name)
		case store.OpDelete:
			got = append(got, "delete "+op.Key.Name)
		}
	}
	want := []string{"mark bound", "delete forced", "delete unbound", "delete gone"}
	if !slices.Equal(got, want) {
		t.Fatalf("ops %v, want %v", got, want)
	}
	if objs["bound"].DeletionTimestamp != nil {
		t.Fatal("planOps changed the view's object")
	}
}

// failingBackend refuses the first proposals as a Raft node without a
// leader would, then applies.
type failingBackend struct {
	testBackend
	fail atomic.Int64
}

func (b *failingBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if b.fail.Add(-1) >= 0 {
		return nil, errors.New("no leader at the moment")
	}
	return b.testBackend.Propose(ctx, ops)
}

// A plan that could not be proposed is decided again after a back-off,
// without an event or a resync (an hour away here) to bring its key back.
func TestControllersRetryAFailedProposal(t *testing.T) {
	st := store.New(store.DefaultConfig())
	b := &failingBackend{testBackend: testBackend{st: st}}
	b.fail.Store(3)
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "src", UID: api.NewUID()}, Data: map[string]string{"v": "1"}}
	api.SetTypeMeta(cm)
	if res := st.Apply([]store.Op{{Type: store.OpCreate, Object: cm}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		Run(ctx, st, b, LoopConfig{Resync: time.Hour, Settle: time.Millisecond}, []Controller{copier()})
	})
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "src-copy"}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copy was never made after %d failed proposals", 3-b.fail.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := b.fail.Load(); n > -1 {
		t.Fatalf("the copy appeared with %d refusals left: the test did not exercise the retry", n+1)
	}
}

// filler is a toy ReplicaSet: key "fill" wants want pods controlled by uid
// and creates at most burst per decision, counting what it has in the
// view's owner index (as the ReplicaSet controller does). stale is called
// when a decision counts fewer pods than the store holds: the view had not
// filed the loop's own last writes.
func filler(uid string, want, burst int, stale func(have, stored int)) Controller {
	owner := api.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "fill", UID: uid, Controller: new(true)}
	return Controller{
		Name: "filler",
		Keys: func(ev store.Event, _ *View) []string {
			if api.KindOf(ev.Object) == "Pod" {
				return []string{"fill"}
			}
			return nil
		},
		All: func(*View) []string { return []string{"fill"} },
		Reconcile: func(_ string, v *View, _ time.Time) placement.Plan {
			have := len(v.Owned(uid, "Pod"))
			if stored, _, _ := v.Store().List("Pod", "default", store.Selector{}); len(stored) != have {
				stale(have, len(stored))
			}
			var p placement.Plan
			for range min(want-have, burst) {
				p.Create = append(p.Create, &api.Pod{
					ObjectMeta: api.ObjectMeta{Namespace: "default", GenerateName: "fill-", OwnerReferences: []api.OwnerReference{owner}},
					Spec:       api.PodSpec{Containers: []api.Container{{Name: "c", Image: "i"}}},
				})
			}
			return p
		},
	}
}

// TestLoopDecidesOnItsOwnWrites: a decision never reads a view that lacks
// what the loop's previous plan wrote. With a settle of a nanosecond the
// loop stops gathering events almost at once, so without waiting for its
// own writes' events a decision counted a fraction of the pods just
// created and created the rest again (seen in a hollow run: 5,000 replicas
// became 6,000 pods, then 1,000 were deleted).
func TestLoopDecidesOnItsOwnWrites(t *testing.T) {
	st := store.New(store.DefaultConfig())
	b := &testBackend{st: st}
	const want, burst = 400, 10
	var stale atomic.Int64
	var first atomic.Value
	ctrl := filler(api.NewUID(), want, burst, func(have, stored int) {
		if stale.Add(1) == 1 {
			first.Store([2]int{have, stored})
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { Run(ctx, st, b, LoopConfig{Resync: time.Hour, Settle: time.Nanosecond}, []Controller{ctrl}) })
	defer func() { cancel(); wg.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, _, _ := st.List("Pod", "default", store.Selector{})
		if len(pods) >= want && b.proposals.Load() >= want/burst {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pods after 30 s", len(pods), want)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	pods, _, _ := st.List("Pod", "default", store.Selector{})
	if n := stale.Load(); n > 0 {
		t.Errorf("%d decisions read a view without the loop's own writes (first: counted %v of the stored pods)", n, first.Load())
	}
	if len(pods) != want {
		t.Errorf("%d pods, want exactly %d", len(pods), want)
	}
}

// A plan that deletes an object does not also update it: the update would
// bump the resourceVersion the delete is conditioned on, and the object
// would survive its delete.
func TestPlanOpsSkipsUpdatesOfDeletedObjects(t *testing.T) {
	st := store.New(store.DefaultConfig())
	now := time.Now()
	rs := &api.ReplicaSet{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: api.ReplicaSetSpec{Selector: &api.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
			Template: api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"a": "b"}},
				Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "i"}}}}}}
	api.SetDefaults(rs)
	api.PrepareCreate(rs, now, api.NewUID())
	res := st.Apply([]store.Op{{Type: store.OpCreate, Object: rs}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	stored := res[0].Object.(*api.ReplicaSet)
	status := stored.DeepCopyObject().(*api.ReplicaSet)
	status.Status.Replicas = 3
	p := placement.Plan{UpdateStatus: []api.Object{status}, Delete: []placement.Ref{placement.RefOf(stored)}}
	ops, err := planOps(p, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Type != store.OpDelete {
		t.Fatalf("ops %+v: want the delete alone", ops)
	}
	for i, r := range st.Apply(ops) {
		if r.Err != nil {
			t.Fatalf("op %d: %v", i, r.Err)
		}
	}
	if _, err := st.Get(store.KeyOf(stored)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the ReplicaSet survived its delete: %v", err)
	}
}

// A plan larger than the store's per-watch buffer (store.Config.WatchBuffer)
// does not overflow the loop's own watch, which has a buffer of its own
// (LoopConfig.WatchBuffer): the loop reads no event while it decides and
// its plan goes through Raft, and an overflow closed its watch and rebuilt
// the whole view after every large scale-up. With the loop's buffer as
// small as the store's, the same plan does overflow it: the check can
// fail.
func TestLoopWatchSurvivesPlansLargerThanItsBuffer(t *testing.T) {
	for _, tc := range []struct {
		loopBuffer int
		overflow   bool
	}{{0, false}, {64, true}} {
		cfg := store.DefaultConfig()
		cfg.WatchBuffer = 64
		st := store.New(cfg)
		b := &testBackend{st: st}
		const want = 1000 // one plan, about 16 times the store's buffer
		var logs lockedBuffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		ctrl := filler(api.NewUID(), want, want, func(int, int) {})
		var decided atomic.Int64
		reconcile := ctrl.Reconcile
		ctrl.Reconcile = func(k string, v *View, now time.Time) placement.Plan {
			decided.Add(1)
			return reconcile(k, v, now)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			Run(ctx, st, b, LoopConfig{Resync: time.Hour, Settle: time.Millisecond, Logger: log, WatchBuffer: tc.loopBuffer}, []Controller{ctrl})
		})
		deadline := time.Now().Add(30 * time.Second)
		for {
			pods, _, _ := st.List("Pod", "default", store.Selector{})
			// The loop decides again once it has its plan's events
			// (the pods changed), or once it has watched again
			// after an overflow (it marks everything): a second
			// decision comes after either.
			if len(pods) >= want && decided.Load() >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("loop buffer %d: %d of %d pods, %d proposals after 30 s; log:\n%s", tc.loopBuffer, len(pods), want, b.proposals.Load(), logs.String())
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		wg.Wait()
		if got := strings.Contains(logs.String(), "restarting the watch"); got != tc.overflow {
			t.Errorf("loop buffer %d: watch restarted %v, want %v; log:\n%s", tc.loopBuffer, got, tc.overflow, logs.String())
		}
		if pods, _, _ := st.List("Pod", "default", store.Selector{}); len(pods) != want {
			t.Errorf("loop buffer %d: %d pods, want exactly %d", tc.loopBuffer, len(pods), want)
		}
	}
}

// lockedBuffer is a bytes.Buffer for a logger written from the loop's
// goroutine and read by the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
