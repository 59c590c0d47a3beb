package store

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/shoal-dev/shoal/api"
)

// change is one successful operation, kept in the history and fanned out to
// watchers. For a delete, obj is the deleted object with its resourceVersion
// set to rev. For an update, prev is the object it replaced (needed to turn
// selector transitions into ADDED/DELETED); for a delete, the object as it
// was stored (ListAt restores it). size is what the history charges for it
// (objectSize of obj and prev).
type change struct {
	kind string
	typ  EventType
	obj  api.Object
	prev api.Object
	rev  int64
	size int64
}

// history is a ring of the last changes, bounded by count (the ring's
// length) and by bytes (maxBytes, the sum of the retained changes' sizes;
// the newest change is kept even if it alone is larger). Revisions are
// contiguous (every successful op is one change), so it holds exactly the
// changes with revision in (base, base+n].
type history struct {
	// buf is a ring of the retained changes, grown on demand up to
	// limit entries: every agent holds a store, and most (those that are
	// not voters) never record a change, so a ring made whole up front
	// was 0.75 GB of pointer-holding memory at 1,000 agents in one process.
	buf      []change
	limit    int
	start    int
	n        int
	base     int64
	bytes    int64
	maxBytes int64
}

// minHistoryRing is the ring's first size, once a change is recorded.
const minHistoryRing = 64

func newHistory(size int, maxBytes, base int64) history {
	return history{limit: size, base: base, maxBytes: maxBytes}
}

func (h *history) push(c change) {
	if h.n == len(h.buf) {
		if len(h.buf) < h.limit {
			h.grow()
		} else {
			h.dropOldest()
		}
	}
	h.buf[(h.start+h.n)%len(h.buf)] = c
	h.n++
	h.bytes += c.size
	for h.bytes > h.maxBytes && h.n > 1 {
		h.dropOldest()
	}
}

// grow doubles the ring (to at most limit entries), oldest change first.
func (h *history) grow() {
	nb := make([]change, min(max(2*len(h.buf), minHistoryRing), h.limit))
	for i := range h.n {
		nb[i] = h.buf[(h.start+i)%len(h.buf)]
	}
	h.buf, h.start = nb, 0
}

// dropOldest forgets the oldest change, letting its objects go.
func (h *history) dropOldest() {
	h.bytes -= h.buf[h.start].size
	h.buf[h.start] = change{}
	h.start = (h.start + 1) % len(h.buf)
	h.n--
	h.base++
}

// after calls f for every retained change with revision > rev, in order.
// The caller has checked rev >= h.base.
func (h *history) after(rev int64, f func(change)) {
	for i := int(rev - h.base); i < h.n; i++ {
		f(h.buf[(h.start+i)%len(h.buf)])
	}
}

// Watcher delivers events in revision order until stopped or closed.
type Watcher struct {
	s     *Store
	kind  string // "" for every kind
	ns    string // "" for every namespace
	sel   Selector
	after int64 // events at or below this revision are not delivered
	ch    chan Event
	// node is X when the watcher is of pods with spec.nodeName=X
	// (fanout indexes it by X), else "".
	node string

	closed bool // guarded by s.mu (write)

	mu  sync.Mutex
	err error
}

// Events is closed when the watcher stops; Err then says why (nil after Stop).
func (w *Watcher) Events() <-chan Event { return w.ch }

// Err returns why the watcher was closed: ErrWatchOverflow when it fell
// behind, ErrTooOld when the store was restored from a snapshot; nil while it
// is open or when it was closed by Stop first.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop closes the watcher. It is safe to call more than once, and from any
// goroutine. Events still buffered may be read until the channel ends.
func (w *Watcher) Stop() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.closeWatcher(w, nil)
}

// closeWatcher ends w with err; the caller holds s.mu for writing.
func (s *Store) closeWatcher(w *Watcher, err error) {
	if w.closed {
		return
	}
	w.closed = true
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	close(w.ch)
	delete(s.watchers, w)
	s.fan.remove(w)
}

// CloseWatchers ends every open watch with err: the store stops being
// updated (an agent that stops being a voter drops its replica) and
// watchers must go elsewhere. Later watches are still allowed.
func (s *Store) CloseWatchers(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		s.closeWatcher(w, err)
	}
}

// Watch returns a watcher of the changes to objects of kind ("" for every
// kind) in namespace ("" for every namespace) that match sel, after
// fromRevision. fromRevision 0 means from now. A revision older than the
// retained history fails with ErrTooOld: list again and watch from the list's
// revision. A revision ahead of the store is allowed: events up to it are
// skipped (a client that listed from a replica further ahead).
//
// Because 0 means "from now", a consumer that listed an empty, new store (at
// revision 0) cannot watch "after" that list without a race. The pattern that
// always works: Watch from 0 first, then List, and ignore events at or below
// the list's revision.
//
// The watcher's channel holds the replayed history plus Config.WatchBuffer
// further events; a watcher that falls further behind is closed with
// ErrWatchOverflow.
func (s *Store) Watch(kind, namespace string, fromRevision int64, sel Selector) (*Watcher, error) {
	return s.WatchBuffered(kind, namespace, fromRevision, sel, 0)
}

// WatchBuffered is Watch with a buffer of its own: buffer further events
// (0: Config.WatchBuffer; at most MaxWatchBuffer), for a consumer that
// reads in bursts, as the leader's controllers do.
func (s *Store) WatchBuffered(kind, namespace string, fromRevision int64, sel Selector, buffer int) (*Watcher, error) {
	if buffer < 0 || buffer > MaxWatchBuffer {
		return nil, fmt.Errorf("%w: watch buffer %d is outside [0, %d]", ErrInvalid, buffer, MaxWatchBuffer)
	}
	if buffer == 0 {
		buffer = s.cfg.WatchBuffer
	}
	if kind != "" {
		if _, err := checkScope(kind, namespace, sel); err != nil {
			return nil, err
		}
	}
	if fromRevision < 0 {
		return nil, fmt.Errorf("%w: watch from negative revision %d", ErrInvalid, fromRevision)
	}
	w := &Watcher{s: s, kind: kind, ns: namespace, sel: sel}
	if kind == "Pod" {
		w.node, _ = nodeNameEquals(sel.Fields)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if fromRevision == 0 {
		w.after = s.rev
	} else {
		if fromRevision < s.hist.base {
			return nil, fmt.Errorf("%w: revision %d is no longer retained; the oldest revision a watch can start from is %d (list again)",
				ErrTooOld, fromRevision, s.hist.base)
		}
		w.after = fromRevision
	}
	var replay []Event
	if w.after < s.rev {
		s.hist.after(w.after, func(c change) {
			if ev, ok := w.filter(c); ok {
				replay = append(replay, ev)
			}
		})
	}
	w.ch = make(chan Event, len(replay)+buffer)
	for _, ev := range replay {
		w.ch <- ev
	}
	s.watchers[w] = struct{}{}
	s.fan.add(w)
	return w, nil
}

// notify offers c to every watcher it may concern without blocking; the
// caller holds s.mu for writing.
func (s *Store) notify(c change) {
	s.fan.each(c, func(w *Watcher) {
		if notifyVisit != nil {
			notifyVisit(w)
		}
		ev, ok := w.filter(c)
		if !ok {
			return
		}
		select {
		case w.ch <- ev:
		default:
			s.closeWatcher(w, fmt.Errorf("%w: more than %d events undelivered at revision %d; list and watch again",
				ErrWatchOverflow, cap(w.ch), c.rev))
		}
	})
}

// notifyVisit, set by tests only, sees every watcher notify filters.
var notifyVisit func(*Watcher)

// fanout holds the open watchers so that a change is filtered only by the
// watchers it may concern. Every agent watches the pods of its own node
// (fieldSelector spec.nodeName=X): those watchers are indexed by X, and a
// change of a pod visits only the watchers of its node (and of its
// previous node, for an update that moved it), so a write costs the same
// with 3 agents or 3,000 (issue 14, watch fan-out). The other watchers
// see every change. Guarded by Store.mu.
type fanout struct {
	byNode map[string]map[*Watcher]struct{}
	rest   map[*Watcher]struct{}
}

func (f *fanout) add(w *Watcher) {
	if f.rest == nil {
		f.byNode, f.rest = map[string]map[*Watcher]struct{}{}, map[*Watcher]struct{}{}
	}
	if w.node == "" {
		f.rest[w] = struct{}{}
		return
	}
	set := f.byNode[w.node]
	if set == nil {
		set = map[*Watcher]struct{}{}
		f.byNode[w.node] = set
	}
	set[w] = struct{}{}
}

func (f *fanout) remove(w *Watcher) {
	if w.node == "" {
		delete(f.rest, w)
		return
	}
	if set := f.byNode[w.node]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(f.byNode, w.node)
		}
	}
}

// each calls visit for every watcher c may concern; visit may remove the
// watcher it is given.
func (f *fanout) each(c change, visit func(*Watcher)) {
	for w := range f.rest {
		visit(w)
	}
	if c.kind != "Pod" || len(f.byNode) == 0 {
		return
	}
	node := podNode(c.obj)
	for w := range f.byNode[node] {
		visit(w)
	}
	if c.typ == Modified {
		if prev := podNode(c.prev); prev != node {
			for w := range f.byNode[prev] {
				visit(w)
			}
		}
	}
}

// podNode is the node a pod is bound to, "" for none (or not a pod).
func podNode(obj api.Object) string {
	if p, ok := obj.(*api.Pod); ok && p != nil {
		return p.Spec.NodeName
	}
	return ""
}

// prevOf is the previous object of a MODIFIED change, nil for others.
func prevOf(c change) api.Object {
	if c.typ == Modified {
		return c.prev
	}
	return nil
}

// filter turns a change into the event this watcher sees, if any.
func (w *Watcher) filter(c change) (Event, bool) {
	if c.rev <= w.after || (w.kind != "" && w.kind != c.kind) {
		return Event{}, false
	}
	if w.ns != "" && c.obj.GetObjectMeta().Namespace != w.ns {
		return Event{}, false
	}
	if w.sel.empty() {
		return Event{Type: c.typ, Object: c.obj, Revision: c.rev, Prev: prevOf(c)}, true
	}
	now := w.sel.matches(c.obj)
	if c.typ != Modified {
		return Event{Type: c.typ, Object: c.obj, Revision: c.rev}, now
	}
	was := w.sel.matches(c.prev)
	switch {
	case now && was:
		return Event{Type: Modified, Object: c.obj, Revision: c.rev, Prev: c.prev}, true
	case now:
		return Event{Type: Added, Object: c.obj, Revision: c.rev}, true
	case was:
		// The object left the selection: deliver its last matching state,
		// stamped with the revision at which it left, as Kubernetes does.
		gone := shallowCopy(c.prev)
		gone.GetObjectMeta().ResourceVersion = strconv.FormatInt(c.rev, 10)
		return Event{Type: Deleted, Object: gone, Revision: c.rev}, true
	}
	return Event{}, false
}
