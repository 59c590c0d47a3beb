package store

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestStats(t *testing.T) {
	s := New(DefaultConfig())
	if st := s.Stats(); st.Revision != 0 || st.Watchers != 0 || st.Objects["Pod"] != 0 {
		t.Fatalf("empty store: %+v", st)
	}
	cm := func(ns, name string) api.Object {
		o := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name}}
		api.SetTypeMeta(o)
		return o
	}
	for _, r := range s.Apply([]Op{{Type: OpCreate, Object: cm("a", "x")}, {Type: OpCreate, Object: cm("a", "y")}, {Type: OpCreate, Object: cm("b", "x")}}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	w, err := s.Watch("ConfigMap", "", s.Revision(), Selector{})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Objects["ConfigMap"] != 3 || st.Objects["Pod"] != 0 || st.Watchers != 1 || st.Revision != s.Revision() {
		t.Errorf("stats %+v, want 3 ConfigMaps, 1 watcher, revision %d", st, s.Revision())
	}
	w.Stop()
	if st := s.Stats(); st.Watchers != 0 {
		t.Errorf("after Stop: %d watchers, want 0", st.Watchers)
	}
}
