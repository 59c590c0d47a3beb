package lb

import (
	"slices"
)

// registry is what the services have put in the shared parts of the table:
// for every element of a fixed set, the services claiming it; for every
// shared chain, how many service ports use it.
//
// Two services may claim the same element (two ports on one endpoint put
// the same hairpin pair; two services given the same ClusterIP, which the
// control plane should never allow, both claim its keys). The element the
// table holds is that of the claimant with the smallest key, so it depends
// only on the services, never on the order they arrived in.
type registry struct {
	elems  map[string]map[string][]claim // set → key bytes → claims by owner
	shared map[string]*sharedUse         // chain name → use
}

type claim struct {
	owner ServiceKey
	el    element
}

type sharedUse struct {
	spec  *chainSpec
	users int
}

func newRegistry() *registry {
	return &registry{elems: map[string]map[string][]claim{}, shared: map[string]*sharedUse{}}
}

func (r *registry) claimAll(owner ServiceKey, f *fragment) {
	for _, e := range f.elems {
		r.claim(owner, e.set, e.el)
	}
	for _, c := range f.shared {
		r.use(c)
	}
}

func (r *registry) claim(owner ServiceKey, set string, el element) {
	keys := r.elems[set]
	if keys == nil {
		keys = map[string][]claim{}
		r.elems[set] = keys
	}
	k := string(el.key)
	cs := keys[k]
	i, found := slices.BinarySearchFunc(cs, owner, func(c claim, o ServiceKey) int { return compareKeys(c.owner, o) })
	if found {
		cs[i].el = el
		return
	}
	keys[k] = slices.Insert(cs, i, claim{owner, el})
}

func (r *registry) release(owner ServiceKey, set string, key []byte) {
	keys := r.elems[set]
	k := string(key)
	cs := keys[k]
	i, found := slices.BinarySearchFunc(cs, owner, func(c claim, o ServiceKey) int { return compareKeys(c.owner, o) })
	if !found {
		return
	}
	cs = slices.Delete(cs, i, i+1)
	if len(cs) == 0 {
		delete(keys, k)
	} else {
		keys[k] = cs
	}
}

// installed returns the element the table holds for key, if any.
func (r *registry) installed(set string, key []byte) (element, bool) {
	cs := r.elems[set][string(key)]
	if len(cs) == 0 {
		return element{}, false
	}
	return cs[0].el, true
}

func (r *registry) installedElements(set string) []element {
	keys := r.elems[set]
	out := make([]element, 0, len(keys))
	for _, cs := range keys {
		out = append(out, cs[0].el)
	}
	return out
}

func (r *registry) use(c *chainSpec) {
	u := r.shared[c.name]
	if u == nil {
		u = &sharedUse{spec: c}
		r.shared[c.name] = u
	}
	u.users++
}

func (r *registry) unuse(name string) {
	if u := r.shared[name]; u != nil {
		if u.users--; u.users <= 0 {
			delete(r.shared, name)
		}
	}
}

func (r *registry) sharedChains() []*chainSpec {
	out := make([]*chainSpec, 0, len(r.shared))
	for _, u := range r.shared {
		out = append(out, u.spec)
	}
	slices.SortFunc(out, compareSharedChains)
	return out
}

// changes is what an incremental sync sends: computed by moving services
// from their old fragment to their new one in the registry, and comparing
// what the table holds before and after for everything they touched.
type changes struct {
	reg *registry

	before       map[elemRef]*element // table's element before the first touch (nil: none)
	touchedOrder []elemRef
	sharedBefore map[string]bool
	sharedOrder  []string

	// The services' own sets and chains.
	delSets    []string
	addSets    []*setSpec
	flush      []string     // chains emptied before anything is deleted
	delChains  []string     // chains deleted (after flush)
	addChains  []*chainSpec // new chains, with their rules
	fillChains []*chainSpec // flushed chains that get their (new) rules back
}

type elemRef struct {
	set string
	key string
}

func newChanges(reg *registry) *changes {
	return &changes{reg: reg, before: map[elemRef]*element{}, sharedBefore: map[string]bool{}}
}

func (c *changes) touch(set string, key []byte) {
	ref := elemRef{set, string(key)}
	if _, ok := c.before[ref]; ok {
		return
	}
	var prev *element
	if el, ok := c.reg.installed(set, key); ok {
		prev = &el
	}
	c.before[ref] = prev
	c.touchedOrder = append(c.touchedOrder, ref)
}

func (c *changes) touchShared(name string) {
	if _, ok := c.sharedBefore[name]; ok {
		return
	}
	_, exists := c.reg.shared[name]
	c.sharedBefore[name] = exists
	c.sharedOrder = append(c.sharedOrder, name)
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
	for _, e := range old.elems {
		c.touch(e.set, e.el.key)
		c.reg.release(owner, e.set, e.el.key)
	}
	for _, e := range new.elems {
		c.touch(e.set, e.el.key)
		c.reg.claim(owner, e.set, e.el)
	}
	for _, ch := range old.shared {
		c.touchShared(ch.name)
		c.reg.unuse(ch.name)
	}
	for _, ch := range new.shared {
		c.touchShared(ch.name)
		c.reg.use(ch)
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
func (c *changes) elementOps() (del, add map[string][]element) {
	del, add = map[string][]element{}, map[string][]element{}
	for _, ref := range c.touchedOrder {
		prev := c.before[ref]
		cur, ok := c.reg.installed(ref.set, []byte(ref.key))
		switch {
		case prev != nil && ok && prev.equal(cur):
		default:
			if prev != nil {
				del[ref.set] = append(del[ref.set], *prev)
			}
			if ok {
				add[ref.set] = append(add[ref.set], cur)
			}
		}
	}
	return del, add
}

// sharedOps returns the shared chains to create and to delete.
func (c *changes) sharedOps() (create []*chainSpec, remove []string) {
	for _, name := range c.sharedOrder {
		u, now := c.reg.shared[name]
		switch was := c.sharedBefore[name]; {
		case now && !was:
			create = append(create, u.spec)
		case was && !now:
			remove = append(remove, name)
		}
	}
	return create, remove
}
