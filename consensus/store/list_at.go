package store

import (
	"fmt"

	"github.com/shoal-dev/shoal/api"
)

// ListAt is List as of revision rev: the objects that matched sel right
// after the change at rev, sorted by namespace and name. rev 0, or the
// current revision, is List. A revision ahead of the store is an ErrInvalid
// error; one older than the retained history is ErrTooOld.
//
// The store keeps no old versions of its tables: ListAt takes the current
// objects of the kind (in namespace, "" for all) and undoes the retained
// changes after rev, newest first. Its cost is one pass over the kind (or
// namespace) plus one over the changes since rev, under the read lock. It
// serves the later pages of a paginated list at the first page's revision.
func (s *Store) ListAt(kind, namespace string, sel Selector, rev int64) ([]api.Object, error) {
	if _, err := checkScope(kind, namespace, sel); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if rev == 0 || rev == s.rev {
		s.mu.RUnlock()
		objs, cur, err := s.List(kind, namespace, sel)
		if err == nil && rev != 0 && cur != rev {
			// A write landed between the two locks; take the slow path.
			return s.ListAt(kind, namespace, sel, rev)
		}
		return objs, err
	}
	defer s.mu.RUnlock()
	if rev > s.rev {
		return nil, fmt.Errorf("%w: revision %d is ahead of the store (at %d)", ErrInvalid, rev, s.rev)
	}
	if rev < s.hist.base {
		return nil, fmt.Errorf("%w: revision %d is no longer retained; the oldest revision a list can be served at is %d",
			ErrTooOld, rev, s.hist.base)
	}
	objs := make(map[nsName]api.Object)
	t := s.tables[kind]
	for ns, byName := range t.byNS {
		if namespace != "" && ns != namespace {
			continue
		}
		for name, o := range byName {
			objs[nsName{ns, name}] = o
		}
	}
	// Undo the changes after rev, newest first.
	for i := s.hist.n - 1; i >= int(rev-s.hist.base); i-- {
		c := s.hist.buf[(s.hist.start+i)%len(s.hist.buf)]
		if c.kind != kind {
			continue
		}
		m := c.obj.GetObjectMeta()
		if namespace != "" && m.Namespace != namespace {
			continue
		}
		k := nsName{m.Namespace, m.Name}
		switch c.typ {
		case Added:
			delete(objs, k)
		case Modified, Deleted:
			objs[k] = c.prev // a delete keeps the object as it was, resourceVersion included
		}
	}
	out := make([]api.Object, 0, len(objs))
	for _, o := range objs {
		if sel.matches(o) {
			out = append(out, o)
		}
	}
	sortObjects(out)
	return out, nil
}
