package store

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/shoal-dev/shoal/api"
)

// Limits of Config. Zero fields take the defaults of DefaultConfig.
const (
	MaxHistorySize  = 1 << 20
	MinHistoryBytes = 1 << 20
	MaxHistoryBytes = 1 << 40
	MaxWatchBuffer  = 1 << 20
)

// Validate checks the limits of a Config whose zero fields have been
// defaulted; errors name the field.
func (c Config) Validate() error {
	if c.HistorySize < 1 || c.HistorySize > MaxHistorySize {
		return fmt.Errorf("store: Config.HistorySize must be between 1 and %d, got %d", MaxHistorySize, c.HistorySize)
	}
	if c.HistoryBytes < MinHistoryBytes || c.HistoryBytes > MaxHistoryBytes {
		return fmt.Errorf("store: Config.HistoryBytes must be between %d and %d, got %d", MinHistoryBytes, MaxHistoryBytes, c.HistoryBytes)
	}
	if c.WatchBuffer < 1 || c.WatchBuffer > MaxWatchBuffer {
		return fmt.Errorf("store: Config.WatchBuffer must be between 1 and %d, got %d", MaxWatchBuffer, c.WatchBuffer)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HistorySize == 0 {
		c.HistorySize = d.HistorySize
	}
	if c.HistoryBytes == 0 {
		c.HistoryBytes = d.HistoryBytes
	}
	if c.WatchBuffer == 0 {
		c.WatchBuffer = d.WatchBuffer
	}
	return c
}

// Store is the in-memory, indexed object store. Safe for concurrent use:
// reads share a read lock, Apply, Watch registration and Restore take the
// write lock.
type Store struct {
	cfg Config

	mu       sync.RWMutex
	rev      int64
	tables   map[string]*table
	hist     history
	watchers map[*Watcher]struct{}
	fan      fanout // watchers again, indexed for notify (watch.go)
}

// New returns an empty store at revision 0. Zero fields of cfg take their
// defaults; a cfg outside the limits (see Config.Validate) panics, since it
// is a programming error.
func New(cfg Config) *Store {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Store{
		cfg:      cfg,
		tables:   newTables(),
		hist:     newHistory(cfg.HistorySize, cfg.HistoryBytes, 0),
		watchers: make(map[*Watcher]struct{}),
	}
}

// nsName identifies an object within its kind.
type nsName struct{ ns, name string }

// table holds the objects of one kind.
type table struct {
	shape *kindShape
	// byNS: namespace → name → object. Cluster-scoped kinds use namespace "".
	byNS map[string]map[string]api.Object
	// byNode: spec.nodeName → objects, for pods only ("" holds unbound pods).
	byNode map[string]map[nsName]api.Object
}

func newTables() map[string]*table {
	m := make(map[string]*table, len(shapes))
	for kind, s := range shapes {
		t := &table{shape: s, byNS: make(map[string]map[string]api.Object)}
		if kind == "Pod" {
			t.byNode = make(map[string]map[nsName]api.Object)
		}
		m[kind] = t
	}
	return m
}

func (t *table) get(ns, name string) (api.Object, bool) {
	o, ok := t.byNS[ns][name]
	return o, ok
}

func nodeNameOf(obj api.Object) string {
	if p, ok := obj.(*api.Pod); ok {
		return p.Spec.NodeName
	}
	return ""
}

func (t *table) put(obj api.Object) {
	m := obj.GetObjectMeta()
	byName := t.byNS[m.Namespace]
	if byName == nil {
		byName = make(map[string]api.Object)
		t.byNS[m.Namespace] = byName
	}
	byName[m.Name] = obj
	if t.byNode != nil {
		node := nodeNameOf(obj)
		b := t.byNode[node]
		if b == nil {
			b = make(map[nsName]api.Object)
			t.byNode[node] = b
		}
		b[nsName{m.Namespace, m.Name}] = obj
	}
}

func (t *table) remove(obj api.Object) {
	m := obj.GetObjectMeta()
	if byName := t.byNS[m.Namespace]; byName != nil {
		delete(byName, m.Name)
		if len(byName) == 0 {
			delete(t.byNS, m.Namespace)
		}
	}
	if t.byNode != nil {
		node := nodeNameOf(obj)
		if b := t.byNode[node]; b != nil {
			delete(b, nsName{m.Namespace, m.Name})
			if len(b) == 0 {
				delete(t.byNode, node)
			}
		}
	}
}

// storedRev is the revision of a stored object; the store wrote it, so it
// always parses.
func storedRev(obj api.Object) int64 {
	v, _ := strconv.ParseInt(obj.GetObjectMeta().ResourceVersion, 10, 64)
	return v
}

// Revision returns the revision of the last successful change.
func (s *Store) Revision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Get returns the stored object (shared, read-only) or ErrNotFound.
func (s *Store) Get(key Key) (api.Object, error) {
	shape, err := checkKey(key)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.tables[key.Kind].get(key.Namespace, key.Name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, describe(shape, key))
	}
	return o, nil
}

// checkScope validates the kind, namespace and field selector of a list or
// watch of one kind.
func checkScope(kind, namespace string, sel Selector) (*kindShape, error) {
	shape, err := shapeOf(kind)
	if err != nil {
		return nil, err
	}
	if !shape.info.Namespaced && namespace != "" {
		return nil, fmt.Errorf("%w: %s are cluster-scoped; namespace %q given", ErrInvalid, shape.info.Resource, namespace)
	}
	if len(sel.Fields) == 0 {
		return shape, nil
	}
	probe := shape.info.New() // only to check the fields: one object per list was garbage
	for _, r := range sel.Fields {
		if _, ok := api.FieldValue(probe, r.Field); !ok {
			return nil, fmt.Errorf("%w: field %q is not selectable for %s", ErrInvalid, r.Field, shape.info.Resource)
		}
	}
	return shape, nil
}

func (sel Selector) matches(obj api.Object) bool {
	return sel.Labels.Matches(obj.GetObjectMeta().Labels) && sel.Fields.Matches(obj)
}

func (sel Selector) empty() bool { return len(sel.Labels) == 0 && len(sel.Fields) == 0 }

// nodeNameEquals returns X when the field selector requires spec.nodeName=X.
func nodeNameEquals(fs api.FieldSelector) (string, bool) {
	for _, r := range fs {
		if r.Field == api.FieldNodeName && (r.Operator == "=" || r.Operator == "==") {
			return r.Value, true
		}
	}
	return "", false
}

// List returns the objects of a kind in a namespace ("" for all namespaces)
// that match sel, sorted by namespace and name, and the revision at which
// the list was taken. A field selector spec.nodeName=X on pods is served from
// the node index; other selectors scan the namespace (or the kind).
func (s *Store) List(kind, namespace string, sel Selector) ([]api.Object, int64, error) {
	if _, err := checkScope(kind, namespace, sel); err != nil {
		return nil, 0, err
	}
	s.mu.RLock()
	t := s.tables[kind]
	var out []api.Object
	if sel.empty() {
		// Everything in scope matches: one slice made to measure instead
		// of one grown by doubling (a controller lists a kind on every
		// pass; 10,000 objects made 2.8 times their size of garbage).
		n := 0
		if namespace != "" {
			n = len(t.byNS[namespace])
		} else {
			for _, byName := range t.byNS {
				n += len(byName)
			}
		}
		out = make([]api.Object, 0, n)
	}
	if node, ok := nodeNameEquals(sel.Fields); ok && t.byNode != nil {
		for k, o := range t.byNode[node] {
			if (namespace == "" || k.ns == namespace) && sel.matches(o) {
				out = append(out, o)
			}
		}
	} else if namespace != "" {
		for _, o := range t.byNS[namespace] {
			if sel.matches(o) {
				out = append(out, o)
			}
		}
	} else {
		for _, byName := range t.byNS {
			for _, o := range byName {
				if sel.matches(o) {
					out = append(out, o)
				}
			}
		}
	}
	rev := s.rev
	s.mu.RUnlock()
	sortObjects(out)
	return out, rev, nil
}

func sortObjects(objs []api.Object) {
	slices.SortFunc(objs, func(a, b api.Object) int {
		ma, mb := a.GetObjectMeta(), b.GetObjectMeta()
		return cmp.Or(cmp.Compare(ma.Namespace, mb.Namespace), cmp.Compare(ma.Name, mb.Name))
	})
}

// Apply applies ops in order, each on its own: a failed op changes nothing
// and the next one still applies. Every successful op bumps the revision by
// one and produces one watch event.
func (s *Store) Apply(ops []Op) []Result {
	res := make([]Result, len(ops))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, op := range ops {
		c, err := s.apply(op)
		if err != nil {
			res[i].Err = err
			continue
		}
		s.rev = c.rev
		res[i].Object = c.obj
		c.size = objectSize(c.obj)
		if c.typ != Added {
			c.size += objectSize(c.prev)
		}
		s.hist.push(c)
		s.notify(c)
	}
	return res
}

func (s *Store) apply(op Op) (change, error) {
	switch op.Type {
	case OpCreate:
		return s.create(op.Object)
	case OpUpdate:
		return s.update(op.Object, false)
	case OpUpdateStatus:
		return s.update(op.Object, true)
	case OpDelete:
		key := op.Key
		if key == (Key{}) && op.Object != nil {
			key = KeyOf(op.Object)
		}
		return s.delete(key, op.ResourceVersion)
	}
	return change{}, fmt.Errorf("%w: unknown operation type %d", ErrInvalid, op.Type)
}

// objectKey validates the object of a create or update.
func objectKey(obj api.Object) (*kindShape, Key, error) {
	if obj == nil {
		return nil, Key{}, fmt.Errorf("%w: operation has no object", ErrInvalid)
	}
	key := KeyOf(obj)
	if key.Kind == "" {
		return nil, key, fmt.Errorf("%w: unknown kind of object %T", ErrInvalid, obj)
	}
	shape, err := checkKey(key)
	return shape, key, err
}

func (s *Store) create(obj api.Object) (change, error) {
	shape, key, err := objectKey(obj)
	if err != nil {
		return change{}, err
	}
	t := s.tables[key.Kind]
	if _, ok := t.get(key.Namespace, key.Name); ok {
		return change{}, fmt.Errorf("%w: %s", ErrAlreadyExists, describe(shape, key))
	}
	rev := s.rev + 1
	api.SetTypeMeta(obj)
	m := obj.GetObjectMeta()
	m.ResourceVersion = strconv.FormatInt(rev, 10)
	m.Generation = 0
	if shape.spec >= 0 {
		m.Generation = 1
	}
	t.put(obj)
	return change{kind: key.Kind, typ: Added, obj: obj, rev: rev}, nil
}

// checkPreconditions compares the resourceVersion and uid an update carries
// with the stored object.
func checkPreconditions(shape *kindShape, key Key, old, obj api.Object) error {
	m, om := obj.GetObjectMeta(), old.GetObjectMeta()
	want, err := m.ResourceVersionInt()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, describe(shape, key), err)
	}
	if have := storedRev(old); want != 0 && want != have {
		return fmt.Errorf("%w: %s: the object is at resourceVersion %d, the request was made against %d",
			ErrConflict, describe(shape, key), have, want)
	}
	if m.UID != "" && m.UID != om.UID {
		return fmt.Errorf("%w: %s: uid %q in the request does not match the stored object's uid %q",
			ErrConflict, describe(shape, key), m.UID, om.UID)
	}
	return nil
}

// update handles OpUpdate (statusOnly false) and OpUpdateStatus.
func (s *Store) update(obj api.Object, statusOnly bool) (change, error) {
	shape, key, err := objectKey(obj)
	if err != nil {
		return change{}, err
	}
	if statusOnly && shape.status < 0 {
		return change{}, fmt.Errorf("%w: %s: kind %s has no status", ErrInvalid, describe(shape, key), key.Kind)
	}
	t := s.tables[key.Kind]
	old, ok := t.get(key.Namespace, key.Name)
	if !ok {
		return change{}, fmt.Errorf("%w: %s", ErrNotFound, describe(shape, key))
	}
	if old == obj {
		return change{}, fmt.Errorf("%w: %s: the request passed the stored object itself; DeepCopyObject before changing it", ErrInvalid, describe(shape, key))
	}
	if err := checkPreconditions(shape, key, old, obj); err != nil {
		return change{}, err
	}
	rev := s.rev + 1
	var next api.Object
	if statusOnly {
		next = shallowCopy(old)
		shape.copyStatus(next, obj)
	} else {
		next = obj
		api.SetTypeMeta(next)
		m, om := next.GetObjectMeta(), old.GetObjectMeta()
		m.UID = om.UID
		m.CreationTimestamp = om.CreationTimestamp
		m.Generation = om.Generation
		if shape.spec >= 0 && !shape.specEqual(old, next) {
			m.Generation++
		}
		if shape.status >= 0 {
			shape.copyStatus(next, old)
		}
	}
	next.GetObjectMeta().ResourceVersion = strconv.FormatInt(rev, 10)
	t.remove(old)
	t.put(next)
	return change{kind: key.Kind, typ: Modified, obj: next, prev: old, rev: rev}, nil
}

func (s *Store) delete(key Key, precondition int64) (change, error) {
	shape, err := checkKey(key)
	if err != nil {
		return change{}, err
	}
	if precondition < 0 {
		return change{}, fmt.Errorf("%w: %s: negative resourceVersion precondition %d", ErrInvalid, describe(shape, key), precondition)
	}
	t := s.tables[key.Kind]
	old, ok := t.get(key.Namespace, key.Name)
	if !ok {
		return change{}, fmt.Errorf("%w: %s", ErrNotFound, describe(shape, key))
	}
	if have := storedRev(old); precondition != 0 && precondition != have {
		return change{}, fmt.Errorf("%w: %s: the object is at resourceVersion %d, the delete was made against %d",
			ErrConflict, describe(shape, key), have, precondition)
	}
	rev := s.rev + 1
	t.remove(old)
	gone := shallowCopy(old)
	gone.GetObjectMeta().ResourceVersion = strconv.FormatInt(rev, 10)
	return change{kind: key.Kind, typ: Deleted, obj: gone, prev: old, rev: rev}, nil
}
