package lb

import (
	"maps"
	"slices"
)

// registry is what the services have put in the shared sets of the table:
// for every element, the services claiming it.
//
// Two services may claim the same element (two ports on one endpoint put
// the same hairpin pair; two services given the same ClusterIP, which the
// control plane should never allow, both claim its keys). The element the
// table holds is that of the claimant with the smallest key, so it depends
// only on the services, never on the order they arrived in.
//
// It holds an entry for every element of every service (about twelve per
// service with ten endpoints), so a claim is kept small: its owner is a
// number from the owners table, and the rare verdict target a pointer.
type registry struct {
	winners winners             // the claim the table holds
	others  map[elemKey][]claim // further claimants by owner (rare)
	sizes   map[setID]int       // elements the table holds, by set
	owners  owners
}

type elemKey struct {
	set  setID
	klen uint8
	key  [16]byte
}

func keyOf(set setID, el *element) elemKey {
	return elemKey{set: set, klen: el.klen, key: el.key}
}

// claim is one service's claim on an element; the element's key is the
// map's key.
type claim struct {
	owner ownerID
	vlen  uint8
	val   [8]byte
	goTo  *string // verdict maps only
}

func (r *registry) newClaim(owner ownerID, el *element) claim {
	c := claim{owner: owner, val: el.val, vlen: el.vlen}
	if el.goTo != "" {
		g := el.goTo
		c.goTo = &g
	}
	return c
}

func (c *claim) element(k elemKey) element {
	el := element{key: k.key, klen: k.klen, val: c.val, vlen: c.vlen}
	if c.goTo != nil {
		el.goTo = *c.goTo
	}
	return el
}

// ownerID numbers a service in the owners table.
type ownerID uint32

// owners numbers the services that hold claims, counting each one's
// claims; a number is reused once its service holds none.
type owners struct {
	ids  map[ServiceKey]ownerID
	keys []ServiceKey
	refs []int32
	free []ownerID
}

// ref returns k's number and counts one more claim of it.
func (o *owners) ref(k ServiceKey) ownerID {
	id, ok := o.ids[k]
	if !ok {
		if n := len(o.free); n > 0 {
			id, o.free = o.free[n-1], o.free[:n-1]
			o.keys[id] = k
		} else {
			id = ownerID(len(o.keys))
			o.keys = append(o.keys, k)
			o.refs = append(o.refs, 0)
		}
		o.ids[k] = id
	}
	o.refs[id]++
	return id
}

// unref counts one claim of id fewer.
func (o *owners) unref(id ownerID) {
	if o.refs[id]--; o.refs[id] == 0 {
		delete(o.ids, o.keys[id])
		o.keys[id] = ServiceKey{}
		o.free = append(o.free, id)
	}
}

// newRegistry returns an empty registry. It is not sized ahead: its maps
// are small (see winners), and a map sized for every element would be
// mostly empty.
func newRegistry() *registry {
	return &registry{
		winners: newWinners(), others: map[elemKey][]claim{}, sizes: map[setID]int{},
		owners: owners{ids: map[ServiceKey]ownerID{}},
	}
}

func (r *registry) claimAll(owner ServiceKey, f *fragment) {
	for _, e := range f.elems {
		r.claim(owner, e.set, e.el)
	}
}

func (r *registry) key(c claim) ServiceKey { return r.owners.keys[c.owner] }

func (r *registry) claim(owner ServiceKey, set setID, el element) {
	k := keyOf(set, &el)
	w, ok := r.winners.get(k)
	if !ok || r.key(w) == owner {
		if !ok {
			r.sizes[set]++
			r.winners.put(k, r.newClaim(r.owners.ref(owner), &el))
			return
		}
		r.winners.put(k, r.newClaim(w.owner, &el))
		return
	}
	all := append([]claim{w}, r.others[k]...)
	i, found := slices.BinarySearchFunc(all, owner, func(c claim, o ServiceKey) int { return compareKeys(r.key(c), o) })
	if found {
		all[i] = r.newClaim(all[i].owner, &el)
	} else {
		all = slices.Insert(all, i, r.newClaim(r.owners.ref(owner), &el))
	}
	r.winners.put(k, all[0])
	r.others[k] = all[1:]
}

func (r *registry) release(owner ServiceKey, set setID, el *element) {
	k := keyOf(set, el)
	w, ok := r.winners.get(k)
	if !ok {
		return
	}
	others := r.others[k]
	if r.key(w) == owner {
		r.owners.unref(w.owner)
		if len(others) == 0 {
			r.winners.del(k)
			if r.sizes[set]--; r.sizes[set] == 0 {
				delete(r.sizes, set)
			}
			return
		}
		r.winners.put(k, others[0])
		others = others[1:]
	} else {
		others = slices.DeleteFunc(slices.Clone(others), func(c claim) bool {
			if r.key(c) != owner {
				return false
			}
			r.owners.unref(c.owner)
			return true
		})
	}
	if len(others) == 0 {
		delete(r.others, k)
	} else {
		r.others[k] = others
	}
}

// installed returns the element the table holds for k, if any.
func (r *registry) installed(k elemKey) (element, bool) {
	w, ok := r.winners.get(k)
	if !ok {
		return element{}, false
	}
	return w.element(k), true
}

// installedElements returns every element the table holds, by set.
func (r *registry) installedElements() map[setID][]element {
	out := make(map[setID][]element, len(r.sizes))
	for id, n := range r.sizes {
		out[id] = make([]element, 0, n)
	}
	r.winners.all(func(k elemKey, w claim) {
		out[k.set] = append(out[k.set], w.element(k))
	})
	return out
}

// sizedSets returns the sized sets that have elements, in order.
func (r *registry) sizedSets() []setID {
	var ids []setID
	for id := range r.sizes {
		if id.sized() {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, compareSetIDs)
	return ids
}

// changes is what an incremental sync sends: computed by moving services
// from their old fragment to their new one in the registry, and comparing
// what the table holds before and after for everything they touched.
type changes struct {
	reg         *registry
	sizedBefore []setID

	before       map[elemKey]prior // table's element before the first touch
	touchedOrder []elemKey

	// The services' own sets and chains.
	delSets    []string
	addSets    []*setSpec
	flush      []string     // chains emptied before anything is deleted
	delChains  []string     // chains deleted (after flush)
	addChains  []*chainSpec // new chains, with their rules
	fillChains []*chainSpec // flushed chains that get their (new) rules back
}

type prior struct {
	el     element
	exists bool
}

func newChanges(reg *registry) *changes {
	return &changes{reg: reg, sizedBefore: reg.sizedSets(), before: map[elemKey]prior{}}
}

func (c *changes) touch(k elemKey) {
	if _, ok := c.before[k]; ok {
		return
	}
	el, ok := c.reg.installed(k)
	c.before[k] = prior{el, ok}
	c.touchedOrder = append(c.touchedOrder, k)
}

// service moves one service from fragment old to fragment new (either may
// be nil: added, deleted).
func (c *changes) service(owner ServiceKey, old, new *fragment) {
	if old == nil {
		old = &fragment{}
	}
	if new == nil {
		new = &fragment{}
	}
	for i := range old.elems {
		e := &old.elems[i]
		c.touch(keyOf(e.set, &e.el))
		c.reg.release(owner, e.set, &e.el)
	}
	for i := range new.elems {
		e := &new.elems[i]
		c.touch(keyOf(e.set, &e.el))
		c.reg.claim(owner, e.set, e.el)
	}

	// Its own sets: a set whose declaration changed (the affinity timeout)
	// is deleted and created again, and every chain of the service is
	// rewritten, since some of them refer to it.
	newSets := map[string]*setSpec{}
	for _, s := range new.sets {
		newSets[s.name] = s
	}
	oldSets := map[string]bool{}
	rewriteAll := false
	for _, s := range old.sets {
		oldSets[s.name] = true
		n, ok := newSets[s.name]
		switch {
		case !ok:
			c.delSets = append(c.delSets, s.name)
		case !s.equal(n):
			c.delSets = append(c.delSets, s.name)
			c.addSets = append(c.addSets, n)
			rewriteAll = true
		}
	}
	for _, s := range new.sets {
		if !oldSets[s.name] {
			c.addSets = append(c.addSets, s)
		}
	}

	newChains := map[string]*chainSpec{}
	for _, ch := range new.chains {
		newChains[ch.name] = ch
	}
	oldChains := map[string]bool{}
	for _, ch := range old.chains {
		oldChains[ch.name] = true
		n, ok := newChains[ch.name]
		switch {
		case !ok:
			c.flush = append(c.flush, ch.name)
			c.delChains = append(c.delChains, ch.name)
		case rewriteAll || !ch.sameRules(n):
			c.flush = append(c.flush, ch.name)
			c.fillChains = append(c.fillChains, n)
		}
	}
	for _, ch := range new.chains {
		if !oldChains[ch.name] {
			c.addChains = append(c.addChains, ch)
		}
	}
}

// elementOps returns the elements to delete and to add, by set.
func (c *changes) elementOps() (del, add map[setID][]element) {
	del, add = map[setID][]element{}, map[setID][]element{}
	for _, k := range c.touchedOrder {
		prev := c.before[k]
		cur, ok := c.reg.installed(k)
		if prev.exists && ok && prev.el == cur {
			continue
		}
		if prev.exists {
			del[k.set] = append(del[k.set], prev.el)
		}
		if ok {
			add[k.set] = append(add[k.set], cur)
		}
	}
	return del, add
}

// sizedOps returns the sized sets to create and to delete, and the sized
// sets in use afterwards (which the services and nodeports chains follow).
func (c *changes) sizedOps() (create, remove, after []setID) {
	after = c.reg.sizedSets()
	for _, id := range after {
		if !slices.Contains(c.sizedBefore, id) {
			create = append(create, id)
		}
	}
	for _, id := range c.sizedBefore {
		if !slices.Contains(after, id) {
			remove = append(remove, id)
		}
	}
	return create, remove, after
}

func sortedSetIDs[V any](m map[setID]V) []setID {
	return slices.SortedFunc(maps.Keys(m), compareSetIDs)
}
