package apiserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// watchLine is one line of a watch stream.
type watchLine struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// serveWatch streams changes as JSON lines, one flush per event.
//
// With resourceVersion N > 0 the stream holds every change after N. Without
// one (or with "0") it starts with a synthetic ADDED event for each object
// that exists now, then every later change; sendInitialEvents=true asks for
// those with any resourceVersion and, with allowWatchBookmarks, ends them
// with a BOOKMARK annotated k8s.io/initial-events-end; sendInitialEvents=false
// asks for none. allowWatchBookmarks=true adds a BOOKMARK every
// watchBookmarkInterval and one before the stream ends at its timeout. The
// stream ends at timeoutSeconds, when the client goes away, when the server
// closes, or with a final ERROR event (a 410 Status) if the watcher fell
// behind or its resourceVersion is older than the history kept.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, t target, sel store.Selector) {
	q := r.URL.Query()
	timeout := s.cfg.MaxWatchTimeout
	if v := q.Get("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		max := int64(s.cfg.MaxWatchTimeout / time.Second)
		if err != nil || n < 0 || n > max {
			s.WriteError(w, r, api.NewBadRequest("timeoutSeconds: %q must be an integer from 0 to %d", v, max))
			return
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	opts, serr := parseWatchOptions(r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	// With as=Table every event carries a one-row Table; the first one
	// also carries the column definitions. Tables get no bookmarks.
	tb, serr := s.newTabler(r, t)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	if tb != nil {
		if opts.initialEnd {
			s.WriteError(w, r, api.NewBadRequest("sendInitialEvents: not supported with as=Table (its end is a bookmark, and tables get none)"))
			return
		}
		opts.bookmarks = false
	}
	var from int64
	var initial []api.Object
	if opts.initial {
		lo := listOptions{rv: opts.rv, rvNum: opts.from}
		objs, rev, serr := s.listObjects(r, t, sel, lo)
		if serr != nil {
			s.WriteError(w, r, serr)
			return
		}
		from, initial = rev, objs
	} else {
		from = opts.from
		if from == 0 {
			// Start from now, after the committed state.
			if err := s.barrier(r); err != nil {
				s.WriteError(w, r, s.ToStatus(err, t.info, ""))
				return
			}
		}
	}
	watcher, err := s.cfg.Reader.Watch(t.info.Kind, t.namespace, from, sel)
	var gone *api.Status
	if errors.Is(err, store.ErrTooOld) {
		// As Kubernetes: the watch starts, and its only event is a 410
		// that sends a reflector back to list.
		st := api.NewGone("too old resource version: " + err.Error()).Status()
		gone = &st
	} else if err != nil {
		s.WriteError(w, r, s.ToStatus(err, t.info, ""))
		return
	} else {
		defer watcher.Stop()
	}

	firstRow := true
	asTable := func(obj api.Object) any {
		if tb == nil {
			return obj
		}
		out := tb.table([]api.Object{obj}, obj.GetObjectMeta().ResourceVersion, firstRow)
		firstRow = false
		return out
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a server-wide WriteTimeout must not cut the stream
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	// write encodes one event; send also flushes it.
	write := func(typ string, obj any) bool {
		// A client that stays connected but stops reading must not pin
		// this handler: each event gets a bounded time to leave.
		_ = rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
		return enc.Encode(watchLine{Type: typ, Object: obj}) == nil
	}
	send := func(typ string, obj any) bool {
		return write(typ, obj) && rc.Flush() == nil
	}
	// writeEvent writes a live event; plain JSON lines are encoded once
	// for every watch that sends them (server_watch_enc.go).
	writeEvent := func(ev store.Event) bool {
		if tb != nil {
			return write(string(ev.Type), asTable(eventObject(ev)))
		}
		line, err := s.lines.eventLine(t.info, ev)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
		_, err = w.Write(line)
		return err == nil
	}
	if gone != nil {
		send(api.WatchEventError, gone)
		return
	}
	last := from // every change up to last has been sent
	bookmark := func(initialEnd bool) bool {
		if rv, ok := s.cfg.Reader.(interface{ Revision() int64 }); ok {
			// Send what the watcher holds first: the bookmark then
			// covers every change up to the store's revision.
			rev := rv.Revision()
			for drained := false; !drained; {
				select {
				case ev, ok := <-watcher.Events():
					if !ok {
						return true // the loop below sees the end
					}
					if !writeEvent(ev) || rc.Flush() != nil {
						return false
					}
					last = max(last, ev.Revision)
				default:
					drained = true
				}
			}
			last = max(last, rev)
		}
		return send(watchEventBookmark, bookmarkObject(t.info, last, initialEnd))
	}
	// The initial events leave in one flush (a flush per event took half
	// the time of 10,000 of them).
	for _, o := range initial {
		_ = rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
		if enc.Encode(watchLine{Type: string(store.Added), Object: asTable(withTypeMeta(o))}) != nil {
			return
		}
	}
	if len(initial) > 0 && rc.Flush() != nil {
		return
	}
	if opts.initial && opts.initialEnd && opts.bookmarks {
		if !send(watchEventBookmark, bookmarkObject(t.info, last, true)) {
			return
		}
	} else if len(initial) == 0 {
		// Send the headers now so that the client knows the watch started.
		if rc.Flush() != nil {
			return
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var tick <-chan time.Time
	if opts.bookmarks {
		ticker := time.NewTicker(watchBookmarkInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-timer.C:
			if opts.bookmarks {
				bookmark(false)
			}
			return
		case <-tick:
			if !bookmark(false) {
				return
			}
		case ev, ok := <-watcher.Events():
			if !ok {
				if werr := watcher.Err(); werr != nil {
					st := api.NewGone("the watch fell behind and was closed (" + werr.Error() + "); list again and watch from the list's resourceVersion").Status()
					send(api.WatchEventError, st)
				}
				return
			}
			if !writeEvent(ev) {
				return
			}
			last = max(last, ev.Revision)
			// Events that are already waiting leave in the same
			// flush: one write and TLS record for the lot rather than
			// one each, which is what a watcher that fell behind (a
			// busy agent serving many watches) needs to catch up. A
			// closed channel is left for the loop above to see.
		batch:
			for range maxWatchBatch - 1 {
				select {
				case ev, ok := <-watcher.Events():
					if !ok {
						break batch
					}
					if !writeEvent(ev) {
						return
					}
					last = max(last, ev.Revision)
				default:
					break batch
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// maxWatchBatch bounds the events one flush of a watch carries.
const maxWatchBatch = 64

// eventObject is the object a watch event carries; a deleted object is
// stamped with the revision of its deletion, so that a client resuming from
// the last resourceVersion it saw does not see the delete twice.
func eventObject(ev store.Event) api.Object {
	obj := withTypeMeta(ev.Object)
	rv := strconv.FormatInt(ev.Revision, 10)
	if obj.GetObjectMeta().ResourceVersion != rv && ev.Revision != 0 {
		if obj == ev.Object {
			obj = obj.DeepCopyObject()
		}
		obj.GetObjectMeta().ResourceVersion = rv
	}
	return obj
}

// watchWriteTimeout bounds the write of one watch event to a slow client.
const watchWriteTimeout = 30 * time.Second
