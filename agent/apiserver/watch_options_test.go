package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWatchSendInitialEventsEndsWithBookmark: the streaming list client-go
// asks for: ADDED per object, then a BOOKMARK annotated as the end of them
// at the list's revision, then changes, then periodic bookmarks that carry
// the store's revision.
func TestWatchSendInitialEventsEndsWithBookmark(t *testing.T) {
	old := watchBookmarkInterval
	watchBookmarkInterval = 50 * time.Millisecond
	t.Cleanup(func() { watchBookmarkInterval = old })
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/configmaps"
	for i := range 3 {
		mustCode(t, e.post(base, configMapJSON(fmt.Sprintf("c%d", i), nil)), 201)
	}
	ws := e.openWatch(t, base+"?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
	for i := range 3 {
		if ev := ws.next(t); ev.Type != "ADDED" || ev.meta(t).Name != fmt.Sprintf("c%d", i) {
			t.Fatalf("event %d: %s %s", i, ev.Type, ev.Object)
		}
	}
	ev := ws.next(t)
	if m := ev.meta(t); ev.Type != "BOOKMARK" || m.Annotations[initialEventsEndAnnotation] != "true" ||
		m.ResourceVersion != fmt.Sprint(e.st.Revision()) || !strings.Contains(string(ev.Object), `"kind":"ConfigMap"`) {
		t.Fatalf("want the initial-events-end bookmark, got %s %s", ev.Type, ev.Object)
	}
	mustCode(t, e.post(base, configMapJSON("later", nil)), 201)
	if ev := ws.next(t); ev.Type != "ADDED" || ev.meta(t).Name != "later" {
		t.Fatalf("%s %s", ev.Type, ev.Object)
	}
	// A change of another kind moves the store on; the next bookmark says so.
	mustCode(t, e.post("/api/v1/namespaces/default/services",
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":80}]}}`), 201)
	want := fmt.Sprint(e.st.Revision())
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev := ws.next(t)
		if ev.Type != "BOOKMARK" {
			t.Fatalf("%s %s", ev.Type, ev.Object)
		}
		if ev.meta(t).ResourceVersion == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bookmark at %s; last %s", want, ev.Object)
		}
	}
}

func TestWatchInitialEventsParameters(t *testing.T) {
	e := newEnv(t)
	base := "/api/v1/namespaces/default/configmaps?watch=true"
	for q, mention := range map[string]string{
		"&sendInitialEvents=true&allowWatchBookmarks=true":                                                     "resourceVersionMatch",
		"&sendInitialEvents=true&resourceVersionMatch=NotOlderThan":                                            "allowWatchBookmarks",
		"&resourceVersionMatch=NotOlderThan":                                                                   "resourceVersionMatch",
		"&allowWatchBookmarks=maybe":                                                                           "allowWatchBookmarks",
		"&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=x": "resourceVersion",
	} {
		st := mustCode(t, e.get(base+q), 400).status(t)
		if !strings.Contains(st.Message, mention) {
			t.Errorf("%q: %q does not name %s", q, st.Message, mention)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+base+"&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", nil)
	req.Header.Set("Accept", "application/json;as=Table;g=meta.k8s.io;v=v1")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("sendInitialEvents with as=Table: HTTP %d, want 400", resp.StatusCode)
	}
	// sendInitialEvents=false with no resourceVersion: changes from now only.
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("before", nil)), 201)
	ws := e.openWatch(t, base+"&sendInitialEvents=false&resourceVersionMatch=NotOlderThan")
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("after", nil)), 201)
	if ev := ws.next(t); ev.Type != "ADDED" || ev.meta(t).Name != "after" {
		t.Fatalf("%s %s", ev.Type, ev.Object)
	}
}
