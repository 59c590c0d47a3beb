package store

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// A MODIFIED event carries the object as it was, so a consumer can tell
// which selections it left; other events carry none.
func TestWatchEventCarriesPrev(t *testing.T) {
	s := New(DefaultConfig())
	cm := func(v string) *api.ConfigMap {
		c := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "a", Labels: map[string]string{"v": v}}}
		api.SetTypeMeta(c)
		return c
	}
	w, err := s.Watch("ConfigMap", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	s.Apply([]Op{{Type: OpCreate, Object: cm("1")}})
	s.Apply([]Op{{Type: OpUpdate, Object: cm("2")}})
	s.Apply([]Op{{Type: OpDelete, Key: Key{Kind: "ConfigMap", Namespace: "default", Name: "a"}}})
	var evs []Event
	for len(evs) < 3 {
		evs = append(evs, <-w.Events())
	}
	if evs[0].Prev != nil || evs[2].Prev != nil {
		t.Errorf("ADDED/DELETED carry a Prev: %+v %+v", evs[0].Prev, evs[2].Prev)
	}
	if evs[1].Type != Modified || evs[1].Prev == nil || evs[1].Prev.GetObjectMeta().Labels["v"] != "1" {
		t.Errorf("MODIFIED Prev = %+v", evs[1].Prev)
	}
}

func TestCloseWatchers(t *testing.T) {
	s := New(DefaultConfig())
	w, err := s.Watch("", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	s.CloseWatchers(ErrTooOld)
	if _, ok := <-w.Events(); ok {
		t.Fatal("the watcher still delivers")
	}
	if w.Err() != ErrTooOld {
		t.Fatalf("Err() = %v", w.Err())
	}
	if _, err := s.Watch("", "", 0, Selector{}); err != nil {
		t.Fatalf("a new watch after CloseWatchers: %v", err)
	}
}
