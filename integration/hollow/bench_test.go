package hollow

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// allBoundIn is true only once the store holds the wanted number of pods
// and none of the benchmark's namespace is unbound; a pod unbound in
// another namespace does not count against it.
func TestAllBoundIn(t *testing.T) {
	st := store.New(store.DefaultConfig())
	pod := func(ns, name, node string) api.Object {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name}, Spec: api.PodSpec{NodeName: node,
			Containers: []api.Container{{Name: "c", Image: "i"}}}}
		api.SetDefaults(p)
		api.SetTypeMeta(p)
		return p
	}
	apply := func(ops ...store.Op) {
		t.Helper()
		for i, r := range st.Apply(ops) {
			if r.Err != nil {
				t.Fatalf("op %d: %v", i, r.Err)
			}
		}
	}
	apply(store.Op{Type: store.OpCreate, Object: &api.Namespace{ObjectMeta: api.ObjectMeta{Name: Namespace}}},
		store.Op{Type: store.OpCreate, Object: &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "other"}}})
	if allBoundIn(nil, 0) {
		t.Fatal("no store: all bound")
	}
	base := podsStored(st)
	apply(store.Op{Type: store.OpCreate, Object: pod("other", "x", "")})
	base++ // not the benchmark's, and unbound: counts in the total only
	apply(store.Op{Type: store.OpCreate, Object: pod(Namespace, "a", "n1")})
	if allBoundIn(st, base+2) {
		t.Fatal("1 of 2 pods stored: all bound")
	}
	apply(store.Op{Type: store.OpCreate, Object: pod(Namespace, "b", "")})
	if allBoundIn(st, base+2) {
		t.Fatal("2 of 2 pods stored, one unbound: all bound")
	}
	apply(store.Op{Type: store.OpUpdate, Object: pod(Namespace, "b", "n2")})
	if !allBoundIn(st, base+2) {
		t.Fatal("2 of 2 pods stored and bound: not all bound")
	}
}
