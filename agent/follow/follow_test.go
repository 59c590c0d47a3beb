package follow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// testOps is a deterministic stream of changes: creates, updates and
// deletes of ConfigMaps, with an unrelated Secret now and then (a revision
// the follower never sees). Fed to two stores in the same order it gives
// the same revisions, as Raft replication would.
type testOps struct{ n int }

// next returns the next ops, built fresh for each store, and whether the
// first of them is a ConfigMap change.
func (o *testOps) next() (build func() []store.Op) {
	i := o.n
	o.n++
	return func() []store.Op {
		var ops []store.Op
		switch i % 3 {
		case 0:
			cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Namespace: "default", UID: fmt.Sprintf("uid-%d", i)},
				Data: map[string]string{"v": "0"}}
			api.SetTypeMeta(cm)
			ops = append(ops, store.Op{Type: store.OpCreate, Object: cm})
		case 1:
			cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("cm-%d", i-1), Namespace: "default", UID: fmt.Sprintf("uid-%d", i-1)},
				Data: map[string]string{"v": fmt.Sprint(i)}}
			api.SetTypeMeta(cm)
			ops = append(ops, store.Op{Type: store.OpUpdate, Object: cm})
		case 2:
			if i%4 == 2 { // delete about half the configmaps
				ops = append(ops, store.Op{Type: store.OpDelete, Key: store.Key{Kind: "ConfigMap", Namespace: "default", Name: fmt.Sprintf("cm-%d", i-2)}})
			} else {
				s := &api.Secret{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("s-%d", i), Namespace: "default", UID: fmt.Sprintf("uid-%d", i)}}
				api.SetTypeMeta(s)
				ops = append(ops, store.Op{Type: store.OpCreate, Object: s})
			}
		}
		return ops
	}
}

// applyOps applies one step to a store and returns the revision of a
// ConfigMap change, or 0.
func applyOps(t *testing.T, st *store.Store, build func() []store.Op) int64 {
	t.Helper()
	ops := build()
	for _, r := range st.Apply(ops) {
		if r.Err != nil {
			t.Fatalf("apply: %v", r.Err)
		}
	}
	if ops[0].Key.Kind == "ConfigMap" || (ops[0].Object != nil && api.KindOf(ops[0].Object) == "ConfigMap") {
		return st.Revision()
	}
	return 0
}

// eventLog collects what a follower reports.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) handle(ev Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) snapshot() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// endpoints is a settable Config.Endpoints.
type endpoints struct {
	mu  sync.Mutex
	eps []string
}

func (e *endpoints) get() []string { e.mu.Lock(); defer e.mu.Unlock(); return slices.Clone(e.eps) }
func (e *endpoints) set(eps ...string) {
	e.mu.Lock()
	e.eps = eps
	e.mu.Unlock()
}

func addrOf(e *env) string { return strings.TrimPrefix(e.ts.URL, "http://") }

// kill stops an agent's API the hard way: streams cut, listener closed.
func kill(e *env) {
	e.srv.Close()
	e.ts.CloseClientConnections()
	e.ts.Close()
}

type runningFollower struct {
	f    *Follower
	log  *eventLog
	stop context.CancelFunc
	done chan error
}

func startFollower(t *testing.T, eps *endpoints) *runningFollower {
	t.Helper()
	f, err := New(Config{
		Endpoints:     eps.get,
		Kind:          "configmaps",
		Namespace:     "default",
		Backoff:       5 * time.Millisecond,
		MaxBackoff:    50 * time.Millisecond,
		CheckInterval: 10 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rf := &runningFollower{f: f, log: &eventLog{}, stop: cancel, done: make(chan error, 1)}
	go func() { rf.done <- f.Run(ctx, rf.log.handle) }()
	t.Cleanup(func() {
		cancel()
		<-rf.done
	})
	return rf
}

func (rf *runningFollower) waitRevision(t *testing.T, rev int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the follower at revision %d", rev), func() bool { return rf.f.Revision() >= rev })
}

// checkMirror compares the follower's objects with a store's list.
func checkMirror(t *testing.T, f *Follower, st *store.Store) {
	t.Helper()
	want, _, err := st.List("ConfigMap", "default", store.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	got := f.Objects()
	if len(got) != len(want) {
		t.Fatalf("mirror holds %d objects, store %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i].GetObjectMeta(), want[i].GetObjectMeta()
		if g.Name != w.Name || g.ResourceVersion != w.ResourceVersion {
			t.Errorf("mirror[%d] = %s@%s, store %s@%s", i, g.Name, g.ResourceVersion, w.Name, w.ResourceVersion)
		}
	}
}

func TestFollowerSurvivesAVoterDyingWithoutGapOrDuplicate(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	var ops testOps
	var want []int64 // revisions of every ConfigMap change
	both := func(n int) {
		for range n {
			build := ops.next()
			ra, rb := applyOps(t, a.st, build), applyOps(t, b.st, build)
			if ra != rb {
				t.Fatalf("stores diverged: %d vs %d", ra, rb)
			}
			if ra != 0 {
				want = append(want, ra)
			}
		}
	}
	both(9)
	eps := &endpoints{}
	eps.set(addrOf(a), addrOf(b))
	rf := startFollower(t, eps)
	waitFor(t, "the first list", func() bool { return len(rf.log.snapshot()) > 0 })
	listRev := rf.log.snapshot()[0].ResourceVersion
	both(12)
	rf.waitRevision(t, want[len(want)-1])

	// A runs ahead of B (B has not replicated the last entries yet), and
	// the follower sees them from A.
	var lagging []func() []store.Op
	for range 6 {
		build := ops.next()
		lagging = append(lagging, build)
		if r := applyOps(t, a.st, build); r != 0 {
			want = append(want, r)
		}
	}
	rf.waitRevision(t, want[len(want)-1])

	// A dies. B catches up and writes go on there; the follower resumes on
	// B from the last revision it saw.
	kill(a)
	for _, build := range lagging {
		applyOps(t, b.st, build)
	}
	for range 15 {
		if r := applyOps(t, b.st, ops.next()); r != 0 {
			want = append(want, r)
		}
	}
	rf.waitRevision(t, want[len(want)-1])

	evs := rf.log.snapshot()
	if evs[0].Type != Resync {
		t.Fatalf("first event %s, want RESYNC", evs[0].Type)
	}
	var got []int64
	types := map[string]int{}
	for _, ev := range evs[1:] {
		if ev.Type == Resync {
			t.Fatalf("unexpected RESYNC at %d", ev.ResourceVersion)
		}
		types[ev.Type]++
		got = append(got, ev.ResourceVersion)
	}
	var wantAfter []int64
	for _, r := range want {
		if r > listRev {
			wantAfter = append(wantAfter, r)
		}
	}
	if !slices.Equal(got, wantAfter) {
		t.Fatalf("event revisions\n got %v\nwant %v", got, wantAfter)
	}
	if types["ADDED"] == 0 || types["MODIFIED"] == 0 || types["DELETED"] == 0 {
		t.Errorf("event types %v: the test should see all three", types)
	}
	checkMirror(t, rf.f, b.st)
}

func TestFollowerLeavesAnEndpointGossipDropped(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	var ops testOps
	var want []int64
	both := func(n int) {
		for range n {
			build := ops.next()
			applyOps(t, a.st, build)
			if r := applyOps(t, b.st, build); r != 0 {
				want = append(want, r)
			}
		}
	}
	both(3)
	eps := &endpoints{}
	eps.set(addrOf(a), addrOf(b))
	rf := startFollower(t, eps)
	rf.waitRevision(t, want[len(want)-1])
	waitFor(t, "a watch on A", func() bool { return len(a.rec.all()) == 1 })

	// A still answers but gossip says it is gone (a host that vanished
	// without closing its connections looks the same to the follower).
	eps.set(addrOf(b))
	waitStopped(t, a.rec.all()[0])
	waitFor(t, "a watch on B", func() bool { return len(b.rec.all()) == 1 })
	both(9)
	rf.waitRevision(t, want[len(want)-1])
	evs := rf.log.snapshot()
	var got []int64
	for _, ev := range evs[1:] {
		got = append(got, ev.ResourceVersion)
	}
	want = slices.DeleteFunc(want, func(r int64) bool { return r <= evs[0].ResourceVersion })
	if evs[0].Type != Resync || !slices.Equal(got, want) {
		t.Fatalf("event revisions\n got %v\nwant %v", got, want)
	}
	checkMirror(t, rf.f, b.st)
}

func TestFollowerRelistsOnGone(t *testing.T) {
	a := newEnv(t)
	b := newEnv(t, func(sc *store.Config) { sc.HistorySize = 3 })
	var ops testOps
	for range 6 {
		build := ops.next()
		applyOps(t, a.st, build)
		applyOps(t, b.st, build)
	}
	eps := &endpoints{}
	eps.set(addrOf(a))
	rf := startFollower(t, eps)
	rf.waitRevision(t, a.st.Revision()-1) // the last op may be a Secret
	seen := rf.f.Revision()

	// A dies; B moves on further than its history reaches back, so the
	// follower cannot resume there and must list again.
	kill(a)
	for range 12 {
		applyOps(t, b.st, ops.next())
	}
	eps.set(addrOf(b))
	waitFor(t, "a RESYNC from B", func() bool {
		evs := rf.log.snapshot()
		return len(evs) > 1 && evs[len(evs)-1].Type == Resync
	})
	evs := rf.log.snapshot()
	last := evs[len(evs)-1]
	if last.ResourceVersion != b.st.Revision() || last.ResourceVersion <= seen {
		t.Errorf("RESYNC at %d, B at %d, follower was at %d", last.ResourceVersion, b.st.Revision(), seen)
	}
	for _, ev := range evs[1 : len(evs)-1] {
		if ev.Type == Resync {
			t.Errorf("extra RESYNC at %d", ev.ResourceVersion)
		}
	}
	checkMirror(t, rf.f, b.st)

	// And it goes on watching.
	var rev int64
	for rev == 0 {
		rev = applyOps(t, b.st, ops.next())
	}
	rf.waitRevision(t, rev)
	checkMirror(t, rf.f, b.st)
}

func TestFollowerRefusesToGoBackwards(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	var ops testOps
	for range 9 {
		build := ops.next()
		applyOps(t, a.st, build)
	}
	// B holds nothing of it yet; a list there would go back in time.
	for range 3 {
		applyOps(t, b.st, ops.next())
	}
	eps := &endpoints{}
	eps.set(addrOf(a), addrOf(b))
	rf := startFollower(t, eps)
	rf.waitRevision(t, a.st.Revision())
	before := rf.f.Revision()
	// Force a list on B by making the mirror need one: it must fail while
	// B is behind, so the mirror stays where it was.
	f := rf.f
	err := f.list(context.Background(), api.NewClient(b.ts.URL), api.ListOptions{Stale: true}, func(Event) {
		t.Error("a list behind the mirror must not be reported")
	})
	if !errors.Is(err, errBehind) {
		t.Fatalf("list on a lagging voter: %v, want errBehind", err)
	}
	if f.Revision() != before {
		t.Fatalf("revision moved from %d to %d", before, f.Revision())
	}
}

func TestFollowerStopsOnCancelAndWaitsForEndpoints(t *testing.T) {
	a := newEnv(t)
	eps := &endpoints{} // none yet
	rf := startFollower(t, eps)
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "x", Namespace: "default"}}
	if _, err := api.NewClient(a.ts.URL).Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	eps.set(addrOf(a))
	waitFor(t, "the mirror holding x", func() bool {
		objs := rf.f.Objects()
		return len(objs) == 1 && objs[0].GetObjectMeta().Name == "x"
	})
	rf.stop()
	select {
	case err := <-rf.done:
		rf.done <- err // for the cleanup
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestFollowConfigValidate(t *testing.T) {
	ok := Config{Endpoints: func() []string { return nil }, Kind: "Pod"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Config{
		{Kind: "Pod"},
		{Endpoints: ok.Endpoints},
		{Endpoints: ok.Endpoints, Kind: "Widget"},
		{Endpoints: ok.Endpoints, Kind: "Pod", Backoff: -1},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
