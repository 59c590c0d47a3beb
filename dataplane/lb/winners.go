package lb

import "encoding/binary"

// winners holds the claim the table holds for every element: the
// registry's largest part, one entry per element of every service (about
// twelve per service with ten endpoints).
//
// A plain map from element to claim cost about 140 bytes an element at
// 10,000 services (a 56-byte slot in a map that is between a third and
// seven eighths full), 17 MiB in all. Most elements, though, are the
// numbered endpoints of a service port (key: the port's key and an index
// 0..n-1): those are kept together, one map entry per port holding a dense
// array of 16-byte claims indexed by endpoint number. The other elements
// stay in a plain map. Which store holds an element depends only on its
// key, so an element is never in both.
type winners struct {
	plain  map[elemKey]claim
	groups map[groupKey][]groupClaim
	// goTos holds the verdict of a grouped element that has one; the
	// endpoint sets are data maps, so it stays empty in practice.
	goTos map[elemKey]*string
	n     int // elements held
	// peak is the largest size of each map since it was last made: Go
	// maps never shrink, so a map that lost most of what it held at its
	// peak is made again (after a mass deletion, for instance).
	peakPlain, peakGroups int
}

// groupKey is the key of the elements of one numbered group: the element
// key without its trailing index.
type groupKey struct {
	set  setID
	klen uint8
	key  [12]byte
}

// groupClaim is a claim kept in a group, without the key it shares with the
// group and without a verdict. owner is the owner's number plus one; 0 is
// a free slot.
type groupClaim struct {
	owner uint32
	vlen  uint8
	val   [8]byte
}

// maxGroupIndex bounds the index of a grouped element; an element numbered
// beyond it (a port with more endpoints) goes to the plain map, so a large
// index never makes a large array.
const maxGroupIndex = 1 << 12

func newWinners() winners {
	return winners{plain: map[elemKey]claim{}, groups: map[groupKey][]groupClaim{}, goTos: map[elemKey]*string{}}
}

// group splits k into its group and index when k is a numbered endpoint
// element kept in a group.
func group(k elemKey) (groupKey, int, bool) {
	if k.set.kind != skClusterEndpoints && k.set.kind != skNodePortEndpoints || k.klen < 4 {
		return groupKey{}, 0, false
	}
	i := binary.NativeEndian.Uint32(k.key[k.klen-4 : k.klen])
	if i >= maxGroupIndex {
		return groupKey{}, 0, false
	}
	g := groupKey{set: k.set, klen: k.klen - 4}
	copy(g.key[:], k.key[:g.klen])
	return g, int(i), true
}

func (g groupKey) element(i int) elemKey {
	k := elemKey{set: g.set, klen: g.klen + 4}
	copy(k.key[:], g.key[:g.klen])
	binary.NativeEndian.PutUint32(k.key[g.klen:], uint32(i))
	return k
}

func (w *winners) len() int { return w.n }

func (w *winners) get(k elemKey) (claim, bool) {
	g, i, ok := group(k)
	if !ok {
		c, ok := w.plain[k]
		return c, ok
	}
	cs := w.groups[g]
	if i >= len(cs) || cs[i].owner == 0 {
		return claim{}, false
	}
	c := claim{owner: ownerID(cs[i].owner - 1), vlen: cs[i].vlen, val: cs[i].val}
	if len(w.goTos) > 0 {
		c.goTo = w.goTos[k]
	}
	return c, true
}

func (w *winners) put(k elemKey, c claim) {
	g, i, ok := group(k)
	if !ok {
		if _, had := w.plain[k]; !had {
			w.n++
		}
		w.plain[k] = c
		w.peakPlain = max(w.peakPlain, len(w.plain))
		return
	}
	cs := w.groups[g]
	if i >= len(cs) {
		if i >= cap(cs) {
			// Grow by a quarter: the endpoints of a port are claimed in
			// order, and a doubled array would be half empty.
			grown := make([]groupClaim, i+1, max(i+1, len(cs)+len(cs)/4))
			copy(grown, cs)
			cs = grown
		} else {
			cs = cs[:i+1]
		}
	}
	if cs[i].owner == 0 {
		w.n++
	}
	cs[i] = groupClaim{owner: uint32(c.owner) + 1, vlen: c.vlen, val: c.val}
	w.groups[g] = cs
	w.peakGroups = max(w.peakGroups, len(w.groups))
	if c.goTo != nil {
		w.goTos[k] = c.goTo
	} else if len(w.goTos) > 0 {
		delete(w.goTos, k)
	}
}

func (w *winners) del(k elemKey) {
	g, i, ok := group(k)
	if !ok {
		if _, had := w.plain[k]; had {
			w.n--
			delete(w.plain, k)
			if shrinkable(len(w.plain), w.peakPlain) {
				w.plain = cloneMap(w.plain)
				w.peakPlain = len(w.plain)
			}
		}
		return
	}
	cs := w.groups[g]
	if i >= len(cs) || cs[i].owner == 0 {
		return
	}
	w.n--
	cs[i] = groupClaim{}
	if len(w.goTos) > 0 {
		delete(w.goTos, k)
	}
	for len(cs) > 0 && cs[len(cs)-1].owner == 0 {
		cs = cs[:len(cs)-1]
	}
	switch {
	case len(cs) == 0:
		delete(w.groups, g)
		if shrinkable(len(w.groups), w.peakGroups) {
			w.groups = cloneMap(w.groups)
			w.peakGroups = len(w.groups)
		}
	case len(cs) <= cap(cs)/2:
		w.groups[g] = append([]groupClaim(nil), cs...)
	default:
		w.groups[g] = cs
	}
}

// all calls f for every element held, in no particular order.
func (w *winners) all(f func(elemKey, claim)) {
	for k, c := range w.plain {
		f(k, c)
	}
	for g, cs := range w.groups {
		for i := range cs {
			if cs[i].owner == 0 {
				continue
			}
			k := g.element(i)
			c := claim{owner: ownerID(cs[i].owner - 1), vlen: cs[i].vlen, val: cs[i].val}
			if len(w.goTos) > 0 {
				c.goTo = w.goTos[k]
			}
			f(k, c)
		}
	}
}

// shrinkable says a map now holding n entries, having held peak, is worth
// making again: it lost three quarters of a size that matters.
func shrinkable(n, peak int) bool { return peak >= 1024 && n <= peak/4 }

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
