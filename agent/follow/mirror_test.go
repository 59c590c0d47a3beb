package follow

import (
	"io"
	"log/slog"
	"testing"

	"github.com/shoal-dev/shoal/api"
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
