package dns

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	"github.com/shoal-dev/shoal/api"
)

// The index has two halves. The writers' half (index, under one mutex)
// keeps the Services and Endpoints and, for every name, which Services put
// records there (a nameState). The readers' half (table) maps each name to
// an immutable entry holding its ready-made responses, and its nameState,
// which only writers use; a change replaces the entries of the names it
// touched and nothing else. Readers take one shard's read lock for one map
// lookup.

// entry is what a reader finds for a name. It is never modified once
// published; a change publishes a new one.
//
// Its responses are packed one after another in one buffer, each preceded
// by its query type and length (2 bytes each, big endian): a slice of
// typed responses cost 56 bytes more a name, 2 MiB at 10,000 Services.
// A response is kept without its ID and its question (see compact): the
// question is the name itself, which the table's key already holds and
// the request repeats.
type entry struct {
	data []byte
	// st is the writers' state of the name, shared by the name's
	// successive entries; readers never look at it. Keeping it here
	// rather than in a second map of every name saves that map: about
	// 1.7 MiB at 10,000 Services (40,000 names).
	st *nameState
}

// emptyEntry is what build returns for a name without records of its own;
// publish gives each such name an entry of its own (with its state).
var emptyEntry = &entry{}

// typedAnswer is a packed response to a query of type qtype, compressed
// against the question, and kept compact (see compact).
type typedAnswer struct {
	qtype uint16
	wire  []byte
}

// A compact response is a packed response with its ID and question left
// out: the header's last 10 bytes (flags and the four counts), then
// everything after the question. The question of a response the index
// builds is its name, uncompressed, then type and class: always as long as
// the question of a request for that name (whose name the fast path takes
// only uncompressed), so the compression pointers of the rest, which point
// into the question, read the same once the request's question is put
// back. At 10,000 Services the questions were about 1.3 MiB of heap.
const compactHeader = headerLen - 2

// compact turns a packed response into its compact form; nil when it is
// not one with a single question.
func compact(wire []byte) []byte {
	if len(wire) < headerLen || binary.BigEndian.Uint16(wire[4:]) != 1 {
		return nil
	}
	off := headerLen
	for off < len(wire) && wire[off] != 0 {
		if wire[off] > 63 {
			return nil // a compressed question: never built here
		}
		off += 1 + int(wire[off])
	}
	off += 1 + 4 // the root label, type and class
	if off > len(wire) {
		return nil
	}
	out := make([]byte, 0, compactHeader+len(wire)-off)
	return append(append(out, wire[2:headerLen]...), wire[off:]...)
}

// expand makes a complete response (ID 0) to the question (key: wire
// name, lower case; qtype) again from its compact form t.
func expand(key []byte, qtype uint16, t []byte) []byte {
	out := make([]byte, 0, 2+len(t)+len(key)+4)
	out = append(out, 0, 0)
	out = append(out, t[:compactHeader]...)
	out = append(out, key...)
	out = binary.BigEndian.AppendUint16(out, qtype)
	out = binary.BigEndian.AppendUint16(out, classINET)
	return append(out, t[compactHeader:]...)
}

// maxEntryAnswer bounds a response kept in an entry (its length takes 2
// bytes); packAnswer truncates to MaxTCPAnswer, which is below it.
const maxEntryAnswer = 1<<16 - 1

// add appends a compact response to an entry being built.
func (e *entry) add(qtype uint16, wire []byte) {
	if len(wire) > maxEntryAnswer || len(wire) < compactHeader {
		return
	}
	e.data = append(e.data, byte(qtype>>8), byte(qtype), byte(len(wire)>>8), byte(len(wire)))
	e.data = append(e.data, wire...)
}

// answer returns the compact response to a query of type qtype, nil when
// the name has none. It does not allocate.
func (e *entry) answer(qtype uint16) []byte {
	for d := e.data; len(d) >= 4; {
		t, n := uint16(d[0])<<8|uint16(d[1]), int(d[2])<<8|int(d[3])
		if t == qtype {
			return d[4 : 4+n : 4+n]
		}
		d = d[4+n:]
	}
	return nil
}

// answers returns every compact response of the entry, in the order added.
func (e *entry) answers() []typedAnswer {
	var out []typedAnswer
	for d := e.data; len(d) >= 4; {
		t, n := uint16(d[0])<<8|uint16(d[1]), int(d[2])<<8|int(d[3])
		out = append(out, typedAnswer{t, d[4 : 4+n : 4+n]})
		d = d[4+n:]
	}
	return out
}

const tableShards = 64

// table is the readers' half: wire-format lower-case name → entry.
type table struct {
	seed   maphash.Seed
	shards [tableShards]tableShard
}

type tableShard struct {
	mu sync.RWMutex
	m  map[string]*entry
	_  [32]byte // keep shards on their own cache lines
}

func newTable() *table {
	t := &table{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = map[string]*entry{}
	}
	return t
}

func (t *table) shard(key []byte) *tableShard {
	return &t.shards[maphash.Bytes(t.seed, key)%tableShards]
}

func (t *table) shardOf(key string) *tableShard {
	return &t.shards[maphash.String(t.seed, key)%tableShards]
}

// get finds the entry of a wire-format lower-case name; it does not
// allocate.
func (t *table) get(key []byte) *entry {
	s := t.shard(key)
	s.mu.RLock()
	e := s.m[string(key)]
	s.mu.RUnlock()
	return e
}

// state returns the writers' state of a name, nil when the table does not
// hold it.
func (t *table) state(key string) *nameState {
	s := t.shardOf(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	return e.st
}

func (t *table) put(key string, e *entry) {
	s := t.shardOf(key)
	s.mu.Lock()
	s.m[key] = e
	s.mu.Unlock()
}

func (t *table) del(key string) {
	s := t.shardOf(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (t *table) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// nameState is the writers' view of one name, kept in its entry. It names
// the Services that
// put records there but does not keep their records: those are computed
// again from the Services' digests when the name is published (a name
// almost always has one owner, whose records the change at hand has just
// computed). Keeping them took about 4 MiB at 10,000 Services.
type nameState struct {
	owners []svcKey // the Services that put records here, sorted
	below  int32    // names in the index strictly below this one
	fixed  bool     // the zone apex and svc.<domain> always exist
}

// svcState is what the index holds of one key: the Service and the
// Endpoints objects as given (shared, read-only: the proxy's, on a voter
// the store's own objects) rather than digests of them: ten addresses made
// a 600-byte digest per Endpoints, kept twice over, and a Service's digest
// took about 130 bytes (1.3 MiB at 10,000 Services). The digests are made
// again when records are computed. Either may be nil.
type svcState struct {
	svc *api.Service
	eps *api.Endpoints
}

// index is the writers' half. Its methods are called with mu held.
type index struct {
	mu     sync.Mutex
	domain string // lower case, no final dot
	apex   string // wire form of the domain
	// services holds each key's Service and Endpoints objects, in one map
	// rather than two (0.7 MiB less at 10,000 Services).
	services map[svcKey]svcState
	// table holds the names, wire form, each entry with its nameState.
	table *table
	// build makes the entry of a name (text FQDN) from its records; the
	// apex's and empty names' entries too.
	build func(name string, rs *recSet, apex bool) *entry
	// recs holds the records of the Services computed during one set: the
	// changed Service's new records, and those of other owners of the
	// names it touches.
	recs map[svcKey][]nameRecs
}

func newIndex(domain string, build func(string, *recSet, bool) *entry) *index {
	ix := &index{
		domain:   domain,
		apex:     wireName(domain + "."),
		services: map[svcKey]svcState{},
		table:    newTable(),
		build:    build,
		recs:     map[svcKey][]nameRecs{},
	}
	for _, n := range []string{ix.apex, wireName("svc." + domain + ".")} {
		ix.publish(n, &nameState{fixed: true})
	}
	return ix
}

// upsert applies a Service or an Endpoints; other kinds are ignored.
func (ix *index) upsert(obj api.Object) {
	switch o := obj.(type) {
	case *api.Service:
		k := keyOf(&o.ObjectMeta)
		ix.set(k, o, ix.services[k].eps)
	case *api.Endpoints:
		k := keyOf(&o.ObjectMeta)
		ix.set(k, ix.services[k].svc, o)
	}
}

func (ix *index) delete(kind, namespace, name string) {
	k := keyOf(&api.ObjectMeta{Namespace: namespace, Name: name})
	switch kind {
	case "Service":
		ix.set(k, nil, ix.services[k].eps)
	case "Endpoints":
		ix.set(k, ix.services[k].svc, nil)
	}
}

// replace makes the index hold exactly the Services and Endpoints of objs.
// Keys whose digests did not change cost a compare.
func (ix *index) replace(objs []api.Object) {
	svcs := map[svcKey]*api.Service{}
	eps := map[svcKey]*api.Endpoints{}
	for _, obj := range objs {
		switch o := obj.(type) {
		case *api.Service:
			svcs[keyOf(&o.ObjectMeta)] = o
		case *api.Endpoints:
			eps[keyOf(&o.ObjectMeta)] = o
		}
	}
	keys := map[svcKey]struct{}{}
	for k := range ix.services {
		keys[k] = struct{}{}
	}
	for k := range svcs {
		keys[k] = struct{}{}
	}
	for k := range eps {
		keys[k] = struct{}{}
	}
	for k := range keys {
		ix.set(k, svcs[k], eps[k])
	}
}

// set changes the objects of key k and brings the names it owns up to
// date: the records before and after are computed and only the names whose
// records differ are touched.
func (ix *index) set(k svcKey, svcObj *api.Service, epsObj *api.Endpoints) {
	old := ix.services[k]
	oldSvc, oldEps := serviceInfoOf(old.svc), endpointsInfoOf(old.eps)
	svc, eps := oldSvc, oldEps
	if svcObj != old.svc {
		svc = serviceInfoOf(svcObj)
	}
	if epsObj != old.eps {
		eps = endpointsInfoOf(epsObj)
	}
	if svcObj == nil && epsObj == nil {
		delete(ix.services, k)
	} else {
		// Always the newer objects, even when their digests are the
		// same: the index must not keep objects the caller has replaced.
		ix.services[k] = svcState{svcObj, epsObj}
	}
	if svc.equal(oldSvc) && eps.equal(oldEps) {
		return
	}
	before := serviceRecords(k, oldSvc, oldEps, ix.domain)
	after := serviceRecords(k, svc, eps, ix.domain)
	ix.recs[k] = after
	defer clear(ix.recs)

	// Both lists are sorted by name: walk them together.
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || (i < len(before) && before[i].name < after[j].name):
			ix.dropOwner(wireName(before[i].name), k)
			i++
		case i == len(before) || after[j].name < before[i].name:
			ix.setOwner(wireName(after[j].name), k)
			j++
		default:
			if !before[i].recs.equal(&after[j].recs) {
				ix.setOwner(wireName(after[j].name), k)
			}
			i++
			j++
		}
	}
}

func (ix *index) setOwner(name string, k svcKey) {
	st := ix.table.state(name)
	if st == nil {
		st = &nameState{}
	}
	if i, found := slices.BinarySearchFunc(st.owners, k, cmpOwner); !found {
		if len(st.owners) == 0 {
			st.owners = []svcKey{k}
			ix.adjustAncestors(name, +1)
		} else {
			st.owners = slices.Insert(st.owners, i, k)
		}
	}
	ix.publish(name, st)
}

func (ix *index) dropOwner(name string, k svcKey) {
	st := ix.table.state(name)
	if st == nil {
		return
	}
	i, found := slices.BinarySearchFunc(st.owners, k, cmpOwner)
	if !found {
		return
	}
	st.owners = slices.Delete(st.owners, i, i+1)
	if len(st.owners) <= cap(st.owners)/2 {
		st.owners = slices.Clip(st.owners)
	}
	if len(st.owners) == 0 {
		st.owners = nil
		ix.adjustAncestors(name, -1)
	}
	ix.settle(name, st)
}

// settle publishes a name that exists (it has records, names with records
// below it, or is fixed) and removes one that no longer does.
func (ix *index) settle(name string, st *nameState) {
	if len(st.owners) == 0 && st.below == 0 && !st.fixed {
		ix.table.del(name)
		return
	}
	ix.publish(name, st)
}

// adjustAncestors counts a name gaining its first records (+1) or losing
// its last (-1) in every name above it up to the apex, so that a name with
// records below it exists (NODATA, not NXDOMAIN) while they do. Only names
// with records count, so an empty name coming or going changes no count.
// Names outside the cluster domain (reverse names) have no such ancestors.
func (ix *index) adjustAncestors(name string, d int32) {
	if !inZone(name, ix.apex) || name == ix.apex {
		return
	}
	for off := 1 + int(name[0]); off < len(name); off += 1 + int(name[off]) {
		a := name[off:]
		st := ix.table.state(a)
		created := st == nil
		if created {
			st = &nameState{}
		}
		st.below += d
		if created || len(st.owners) == 0 && !st.fixed && (st.below == 0 || st.below == 1 && d > 0) {
			// An empty name that just appeared or went.
			ix.settle(a, st)
		}
		if a == ix.apex {
			return
		}
	}
}

// publish puts name's entry, made from its state st, in the table.
func (ix *index) publish(name string, st *nameState) {
	text := textName(name)
	var rs recSet
	switch len(st.owners) {
	case 0:
	case 1:
		rs = ix.recsOf(st.owners[0], text)
	default:
		for _, k := range st.owners {
			o := ix.recsOf(k, text)
			rs.merge(&o)
		}
	}
	// A fresh entry: build's may be the shared emptyEntry.
	ix.table.put(name, &entry{data: ix.build(text, &rs, name == ix.apex).data, st: st})
}

// recsOf returns what Service k puts at name (text FQDN), from its current
// digests.
func (ix *index) recsOf(k svcKey, name string) recSet {
	all, ok := ix.recs[k]
	if !ok {
		st := ix.services[k]
		all = serviceRecords(k, serviceInfoOf(st.svc), endpointsInfoOf(st.eps), ix.domain)
		ix.recs[k] = all
	}
	if i, found := slices.BinarySearchFunc(all, name, func(r nameRecs, n string) int { return strings.Compare(r.name, n) }); found {
		return all[i].recs
	}
	return recSet{}
}

func cmpOwner(o, k svcKey) int {
	if c := strings.Compare(o.ns, k.ns); c != 0 {
		return c
	}
	return strings.Compare(o.name, k.name)
}

// wireName turns a lower-case FQDN made of plain labels into its wire
// form ("a.b." → "\x01a\x01b\x00").
func wireName(fqdn string) string {
	var b strings.Builder
	b.Grow(len(fqdn) + 1)
	for l := range strings.SplitSeq(strings.TrimSuffix(fqdn, "."), ".") {
		if l == "" {
			continue
		}
		b.WriteByte(byte(len(l)))
		b.WriteString(l)
	}
	b.WriteByte(0)
	return b.String()
}

// textName is wireName's inverse for the names the index builds.
func textName(wire string) string {
	if wire == "\x00" {
		return "."
	}
	var b strings.Builder
	b.Grow(len(wire))
	for off := 0; off < len(wire) && wire[off] != 0; off += 1 + int(wire[off]) {
		b.WriteString(wire[off+1 : off+1+int(wire[off])])
		b.WriteByte('.')
	}
	return b.String()
}

// inZone reports whether the wire name lies in or under the zone apex
// (both wire form, lower case), comparing at label boundaries.
func inZone[T string | []byte](name T, apex string) bool {
	if len(name) < len(apex) {
		return false
	}
	p := len(name) - len(apex)
	if string(name[p:]) != apex {
		return false
	}
	off := 0
	for off < p {
		off += 1 + int(name[off])
	}
	return off == p
}
