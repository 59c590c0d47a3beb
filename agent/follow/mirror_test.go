package follow

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// The mirror is keyed by the objects' own strings: recording an event
// allocates nothing (a "namespace/name" string per object was 1.5 MiB of a
// voter's heap with 10,000 Services and Endpoints), and Objects still
// returns the mirror sorted by namespace, then name.
func TestMirrorKeyAllocatesNothing(t *testing.T) {
	f, err := New(Config{
		Endpoints: (&endpoints{}).get,
		Kind:      "configmaps",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	cm := func(ns, name string) *api.ConfigMap {
		return &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name}}
	}
	rv := int64(0)
	for _, o := range []*api.ConfigMap{cm("b", "x"), cm("a-b", "y"), cm("a", "z"), cm("a", "c")} {
		rv++
		if !f.apply("ADDED", o, rv) {
			t.Fatalf("event at %d not applied", rv)
		}
	}
	obj := cm("a", "z")
	allocs := testing.AllocsPerRun(100, func() {
		rv++
		f.apply("MODIFIED", obj, rv)
	})
	if allocs != 0 {
		t.Errorf("recording an update allocated %.1f times, want 0", allocs)
	}
	var got []string
	for _, o := range f.Objects() {
		got = append(got, o.GetObjectMeta().Namespace+"/"+o.GetObjectMeta().Name)
	}
	want := []string{"a/c", "a/z", "a-b/y", "b/x"}
	if len(got) != len(want) {
		t.Fatalf("Objects = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Objects = %v, want %v", got, want)
		}
	}
}

// With NoMirror the follower holds no object: the RESYNC event carries the
// list, sorted like Objects, the later events still arrive once each, and
// the follower's map stays empty (the proxy keeps its own copy; the mirror
// was a second map of 10,000 objects per kind).
func TestFollowerWithoutMirror(t *testing.T) {
	e := newEnv(t)
	var ops testOps
	for range 9 {
		applyOps(t, e.st, ops.next())
	}
	eps := &endpoints{}
	eps.set(addrOf(e))
	f, err := New(Config{
		Endpoints: eps.get,
		Kind:      "configmaps",
		Namespace: "default",
		NoMirror:  true,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := &eventLog{}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, log.handle) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "the first RESYNC", func() bool { return len(log.snapshot()) > 0 })
	first := log.snapshot()[0]
	want, _, err := e.st.List("ConfigMap", "default", store.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Type != Resync || len(first.Objects) != len(want) || len(want) == 0 {
		t.Fatalf("first event %s with %d objects, want RESYNC with the store's %d", first.Type, len(first.Objects), len(want))
	}
	for i := range want {
		if g, w := first.Objects[i].GetObjectMeta(), want[i].GetObjectMeta(); g.Name != w.Name {
			t.Errorf("Objects[%d] = %s, want %s (sorted by name)", i, g.Name, w.Name)
		}
	}
	var rev int64
	for range 6 {
		if r := applyOps(t, e.st, ops.next()); r != 0 {
			rev = r
		}
	}
	waitFor(t, fmt.Sprintf("the follower at revision %d", rev), func() bool { return f.Revision() >= rev })
	seen := map[int64]bool{}
	for _, ev := range log.snapshot()[1:] {
		if ev.Type == Resync || ev.Object == nil || seen[ev.ResourceVersion] {
			t.Errorf("event %s at %d: want each change once, with its object", ev.Type, ev.ResourceVersion)
		}
		seen[ev.ResourceVersion] = true
	}
	if got := f.Objects(); got != nil {
		t.Errorf("Objects() = %d objects, want nil without a mirror", len(got))
	}
	f.mu.RLock()
	n := len(f.objects)
	f.mu.RUnlock()
	if n != 0 {
		t.Errorf("the follower holds %d objects, want none", n)
	}
}
