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
// that exists now, then every later change. The stream ends at
// timeoutSeconds, when the client goes away, when the server closes, or
// with a final ERROR event (a 410 Status) if the watcher fell behind.
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
	// With as=Table every event carries a one-row Table; the first one
	// also carries the column definitions.
	tb, serr := s.newTabler(r, t)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	var from int64
	var initial []api.Object
	if v := q.Get("resourceVersion"); v != "" && v != "0" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.WriteError(w, r, api.NewBadRequest("resourceVersion: %q is not a non-negative integer", v))
			return
		}
		from = n
	} else {
		if err := s.barrier(r); err != nil {
			s.WriteError(w, r, s.ToStatus(err, t.info, ""))
			return
		}
		objs, rev, err := s.cfg.Reader.List(t.info.Kind, t.namespace, sel)
		if err != nil {
			s.WriteError(w, r, s.ToStatus(err, t.info, ""))
			return
		}
		from, initial = rev, objs
	}
	watcher, err := s.cfg.Reader.Watch(t.info.Kind, t.namespace, from, sel)
	if err != nil {
		if errors.Is(err, store.ErrTooOld) {
			s.WriteError(w, r, api.NewGone("too old resource version: "+err.Error()))
			return
		}
		s.WriteError(w, r, s.ToStatus(err, t.info, ""))
		return
	}
	defer watcher.Stop()

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
	send := func(typ string, obj any) bool {
		// A client that stays connected but stops reading must not pin
		// this handler: each event gets a bounded time to leave.
		_ = rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
		if err := enc.Encode(watchLine{Type: typ, Object: obj}); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for _, o := range initial {
		if !send(string(store.Added), asTable(withTypeMeta(o))) {
			return
		}
	}
	if len(initial) == 0 {
		// Send the headers now so that the client knows the watch started.
		if rc.Flush() != nil {
			return
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-timer.C:
			return
		case ev, ok := <-watcher.Events():
			if !ok {
				if werr := watcher.Err(); werr != nil {
					st := api.NewGone("the watch fell behind and was closed (" + werr.Error() + "); list again and watch from the list's resourceVersion").Status()
					send(api.WatchEventError, st)
				}
				return
			}
			if !send(string(ev.Type), asTable(eventObject(ev))) {
				return
			}
		}
	}
}

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
