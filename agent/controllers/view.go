package controllers

import (
	"sort"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// View is what the leader's controllers read: the local store plus the
// indexes a controller needs and the store does not keep — objects by the
// uid of their controller, and objects with no controller by namespace. With
// them a reconcile of one ReplicaSet reads its own pods, not every pod of the
// cluster. The controller loop keeps the indexes current from the same
// watch that drives it; only that goroutine touches a View.
type View struct {
	st *store.Store
	// byOwner: controller uid → keys of the objects it controls.
	byOwner map[string]map[store.Key]struct{}
	// orphans: namespace and kind (orphanSlot) → keys of the objects of
	// that kind without a controller.
	orphans map[string]map[store.Key]struct{}
	// ownerOf remembers where each indexed key is filed, to move it on change.
	ownerOf map[store.Key]string
}

// indexedKinds are the kinds whose objects are filed by controller.
var indexedKinds = map[string]bool{"Pod": true, "ReplicaSet": true}

// NewView returns an empty view of st; call Rebuild before use.
func NewView(st *store.Store) *View {
	v := &View{st: st}
	v.reset()
	return v
}

// Store is the underlying store (read-only objects).
func (v *View) Store() *store.Store { return v.st }

func (v *View) reset() {
	v.byOwner = map[string]map[store.Key]struct{}{}
	v.orphans = map[string]map[store.Key]struct{}{}
	v.ownerOf = map[store.Key]string{}
}

// Rebuild indexes the store's current content.
func (v *View) Rebuild() {
	v.reset()
	for kind := range indexedKinds {
		objs, _, err := v.st.List(kind, "", store.Selector{})
		if err != nil {
			continue
		}
		for _, o := range objs {
			v.file(store.KeyOf(o), o)
		}
	}
}

// Observe updates the indexes with one change.
func (v *View) Observe(ev store.Event) {
	key := store.KeyOf(ev.Object)
	if !indexedKinds[key.Kind] {
		return
	}
	v.unfile(key)
	if ev.Type != store.Deleted {
		v.file(key, ev.Object)
	}
}

// orphanSlot files an orphan by namespace and kind, so that reading the
// orphan pods of a namespace does not walk its orphan ReplicaSets.
func orphanSlot(ns, kind string) string { return "orphan/" + ns + "/" + kind }

func (v *View) file(key store.Key, o api.Object) {
	m := o.GetObjectMeta()
	if ref := api.ControllerOf(m); ref != nil {
		set := v.byOwner[ref.UID]
		if set == nil {
			set = map[store.Key]struct{}{}
			v.byOwner[ref.UID] = set
		}
		set[key] = struct{}{}
		v.ownerOf[key] = ref.UID
		return
	}
	slot := orphanSlot(m.Namespace, key.Kind)
	set := v.orphans[slot]
	if set == nil {
		set = map[store.Key]struct{}{}
		v.orphans[slot] = set
	}
	set[key] = struct{}{}
	v.ownerOf[key] = slot
}

func (v *View) unfile(key store.Key) {
	slot, ok := v.ownerOf[key]
	if !ok {
		return
	}
	delete(v.ownerOf, key)
	if set := v.byOwner[slot]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(v.byOwner, slot)
		}
		return
	}
	if set := v.orphans[slot]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(v.orphans, slot)
		}
	}
}

// Owned returns the objects of kind that the controller with uid owns,
// sorted by name.
func (v *View) Owned(uid, kind string) []api.Object {
	return v.get(v.byOwner[uid], kind)
}

// Orphans returns the objects of kind in ns that have no controller.
func (v *View) Orphans(ns, kind string) []api.Object {
	return v.get(v.orphans[orphanSlot(ns, kind)], kind)
}

func (v *View) get(set map[store.Key]struct{}, kind string) []api.Object {
	out := make([]api.Object, 0, len(set))
	for k := range set {
		if k.Kind != kind {
			continue
		}
		if o, err := v.st.Get(k); err == nil {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetObjectMeta().Name < out[j].GetObjectMeta().Name })
	return out
}

// Get reads one object, nil when it does not exist.
func (v *View) Get(kind, ns, name string) api.Object {
	o, err := v.st.Get(store.Key{Kind: kind, Namespace: ns, Name: name})
	if err != nil {
		return nil
	}
	return o
}

// List reads every object of a kind ("" namespace: all).
func (v *View) List(kind, ns string) []api.Object {
	objs, _, err := v.st.List(kind, ns, store.Selector{})
	if err != nil {
		return nil
	}
	return objs
}
