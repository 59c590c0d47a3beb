package apiserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// watchBookmarkInterval is how often a watch with allowWatchBookmarks
// sends a BOOKMARK (a variable so that tests can shorten it).
var watchBookmarkInterval = time.Minute

const (
	// watchEventBookmark is the type of a bookmark event: an object with
	// only its kind and metadata.resourceVersion, telling the client that
	// every change up to that revision has been sent.
	watchEventBookmark = "BOOKMARK"
	// initialEventsEndAnnotation marks the bookmark that ends the
	// initial events of a watch with sendInitialEvents=true.
	initialEventsEndAnnotation = "k8s.io/initial-events-end"
)

// watchOptions are the parameters of a watch, checked.
type watchOptions struct {
	rv         string
	from       int64 // the resourceVersion as a number; 0 for "" and "0"
	initial    bool  // start with an ADDED event for each current object
	initialEnd bool  // sendInitialEvents=true: mark the end of those
	bookmarks  bool
}

func parseWatchOptions(r *http.Request) (watchOptions, *api.StatusError) {
	var o watchOptions
	q := r.URL.Query()
	o.rv = q.Get("resourceVersion")
	if o.rv != "" {
		n, err := strconv.ParseInt(o.rv, 10, 64)
		if err != nil || n < 0 {
			return o, api.NewBadRequest("resourceVersion: %q is not a non-negative integer", o.rv)
		}
		o.from = n
	}
	b, serr := queryBool(r, "allowWatchBookmarks")
	if serr != nil {
		return o, serr
	}
	o.bookmarks = b
	// Without sendInitialEvents, Kubernetes' legacy rule: initial events
	// exactly when no revision (or "0") is given.
	o.initial = o.from == 0
	match := q.Get("resourceVersionMatch")
	if v := q.Get("sendInitialEvents"); v != "" {
		send, serr := queryBool(r, "sendInitialEvents")
		if serr != nil {
			return o, serr
		}
		if match != "NotOlderThan" {
			return o, api.NewBadRequest("sendInitialEvents: resourceVersionMatch must be NotOlderThan with it, got %q", match)
		}
		if send && !o.bookmarks {
			return o, api.NewBadRequest("sendInitialEvents: allowWatchBookmarks=true is required with sendInitialEvents=true")
		}
		o.initial, o.initialEnd = send, send
	} else if match != "" {
		return o, api.NewBadRequest("resourceVersionMatch: %q is not allowed on a watch without sendInitialEvents", match)
	}
	return o, nil
}

// bookmarkObject is the object of a BOOKMARK event: an empty object of the
// kind with only its resourceVersion (and, at the end of the initial
// events, the annotation saying so).
func bookmarkObject(info api.KindInfo, rev int64, initialEnd bool) api.Object {
	obj := info.New()
	api.SetTypeMeta(obj)
	m := obj.GetObjectMeta()
	m.ResourceVersion = strconv.FormatInt(rev, 10)
	if initialEnd {
		m.Annotations = map[string]string{initialEventsEndAnnotation: "true"}
	}
	return obj
}
