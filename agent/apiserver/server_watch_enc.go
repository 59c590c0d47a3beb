package apiserver

import (
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Every watch of the same objects sends the same line for a change: with
// 300 watches of all pods the leader spent a fifth of its CPU encoding each
// event once per watcher (issue 14, watch fan-out). watchLines encodes the
// plain JSON line of an event once and hands the same bytes to every watch
// that sends it.
//
// A line is identified by the change's revision and the event type: the
// store numbers every change, and at one revision a watch sees either the
// new object (ADDED, MODIFIED, or DELETED for a real delete) or, for an
// update that left its selection, the previous one (DELETED); the two never
// share a type. The key also carries the kind and the object's identity so
// that a line cannot be handed to a watch of another object even if a
// revision were reused.
//
// Only plain JSON events are shared. Table rows (as=Table) are not: a
// row's AGE is computed at the time it is encoded and a Service's
// ENDPOINTS column from the endpoints at that time, so sharing them would
// change what a watch sees. Bookmarks and the initial ADDED events of a
// watch without a resourceVersion are encoded per watch too (a bookmark
// carries the watch's own revision; initial events are a list, and caching
// them would push out the lines the live watches share).

// watchLineKey names one encoded event line.
type watchLineKey struct {
	group, kind    string
	namespace, uid string
	name           string
	objRV          string // the object's own resourceVersion, before stamping
	rev            int64
	typ            store.EventType
}

// sharedLine is one encoded event; ready is closed once line/err are set.
type sharedLine struct {
	ready chan struct{}
	line  []byte // the JSON event and its newline; never modified
	err   error
	held  bool // its bytes are counted in watchLines.bytes (guarded by watchLines.mu)
}

// Limits of the shared lines: the last maxSharedLines events, at most
// maxSharedBytes of encoded JSON; the oldest go first. A watch that is
// further behind encodes its own line.
const (
	maxSharedLines = 4096
	maxSharedBytes = 8 << 20
)

// watchLines is a bounded FIFO of encoded event lines, usable at its zero
// value and safe for concurrent use.
type watchLines struct {
	mu    sync.Mutex
	m     map[watchLineKey]*sharedLine
	order []watchLineKey // ring of the keys in m, oldest at head
	head  int
	bytes int
	// encodes counts the events encoded (tests read it).
	encodes atomic.Int64
}

// eventLine returns the JSON line (with its newline) a plain watch sends for
// ev on a watch of kind info. Watches sending the same event concurrently
// wait for one encoding.
func (c *watchLines) eventLine(info api.KindInfo, ev store.Event) ([]byte, error) {
	if ev.Revision == 0 || ev.Object == nil {
		return c.encode(ev)
	}
	meta := ev.Object.GetObjectMeta()
	k := watchLineKey{group: info.Group, kind: info.Kind, namespace: meta.Namespace, uid: meta.UID,
		name: meta.Name, objRV: meta.ResourceVersion, rev: ev.Revision, typ: ev.Type}
	c.mu.Lock()
	if e, ok := c.m[k]; ok {
		c.mu.Unlock()
		<-e.ready
		return e.line, e.err
	}
	e := &sharedLine{ready: make(chan struct{})}
	c.add(k, e)
	c.mu.Unlock()

	e.line, e.err = c.encode(ev)
	close(e.ready)
	if e.err == nil {
		c.mu.Lock()
		if c.m[k] == e { // not pushed out while it was encoded
			e.held = true
			c.bytes += len(e.line)
			for c.bytes > maxSharedBytes && len(c.m) > 0 {
				c.evictOldest()
			}
		}
		c.mu.Unlock()
	}
	return e.line, e.err
}

// encode is the one place a watch event line is encoded.
func (c *watchLines) encode(ev store.Event) ([]byte, error) {
	c.encodes.Add(1)
	return encodeWatchLine(string(ev.Type), eventObject(ev))
}

// encodeWatchLine is what json.Encoder.Encode writes for one event.
func encodeWatchLine(typ string, obj any) ([]byte, error) {
	b, err := json.Marshal(watchLine{Type: typ, Object: obj})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// add puts e under k, pushing out the oldest line when full; c.mu is held.
func (c *watchLines) add(k watchLineKey, e *sharedLine) {
	if c.m == nil {
		c.m = make(map[watchLineKey]*sharedLine, maxSharedLines)
		c.order = make([]watchLineKey, maxSharedLines)
	}
	if len(c.m) == maxSharedLines {
		c.evictOldest()
	}
	c.order[(c.head+len(c.m))%maxSharedLines] = k
	c.m[k] = e
}

// evictOldest drops the oldest line; c.mu is held and c.m is not empty.
func (c *watchLines) evictOldest() {
	k := c.order[c.head]
	c.order[c.head] = watchLineKey{}
	c.head = (c.head + 1) % maxSharedLines
	if e := c.m[k]; e != nil && e.held {
		c.bytes -= len(e.line)
	}
	delete(c.m, k)
}

// stats returns the lines held, their bytes and the encodes so far.
func (c *watchLines) stats() (lines, bytes int, encodes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.bytes, c.encodes.Load()
}
