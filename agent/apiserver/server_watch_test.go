package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

type wireEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

func (ev wireEvent) meta(t testing.TB) api.ObjectMeta {
	t.Helper()
	var o struct {
		Metadata api.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(ev.Object, &o); err != nil {
		t.Fatalf("event object: %v", err)
	}
	return o.Metadata
}

// watchStream reads a watch response line by line in the background.
type watchStream struct {
	cancel context.CancelFunc
	events chan wireEvent
	done   chan error // receives the read error (io.EOF on a clean end)
}

// openWatch starts a watch; it fails the test unless the answer is 200.
func (e *env) openWatch(t testing.TB, path string) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+path, nil)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("watch %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("watch Content-Type %q", ct)
	}
	ws := &watchStream{cancel: cancel, events: make(chan wireEvent, 1000), done: make(chan error, 1)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			var ev wireEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ws.done <- fmt.Errorf("line %q: %w", sc.Bytes(), err)
				return
			}
			ws.events <- ev
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		ws.done <- err
	}()
	return ws
}

func (ws *watchStream) next(t testing.TB) wireEvent {
	t.Helper()
	select {
	case ev := <-ws.events:
		return ev
	case err := <-ws.done:
		// The reader queues every event before it reports the end, and
		// select picks among ready cases at random: an event may still wait.
		select {
		case ev := <-ws.events:
			ws.done <- err
			return ev
		default:
		}
		t.Fatalf("watch ended before the next event: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a watch event")
	}
	return wireEvent{}
}

// waitEnd waits for the stream to end and returns the events still unread.
func (ws *watchStream) waitEnd(t testing.TB) []wireEvent {
	t.Helper()
	select {
	case err := <-ws.done:
		if err != io.EOF {
			t.Errorf("stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the watch to end")
	}
	var rest []wireEvent
	for {
		select {
		case ev := <-ws.events:
			rest = append(rest, ev)
		default:
			return rest
		}
	}
}

// waitStopped waits until the server has stopped the watcher.
func waitStopped(t testing.TB, w *store.Watcher) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				if err := w.Err(); err != nil {
					t.Errorf("watcher closed with %v, want a plain stop", err)
				}
				return
			}
		case <-deadline:
			t.Fatal("the server did not stop the store watcher")
		}
	}
}

func TestListThenWatchSeesEveryChangeOnce(t *testing.T) {
	e := newEnv(t)
	base := "/api/v1/namespaces/default/configmaps"
	for i := range 5 {
		mustCode(t, e.post(base, configMapJSON(fmt.Sprintf("c%d", i), nil)), 201)
	}
	list := decode[struct {
		Metadata api.ListMeta `json:"metadata"`
	}](t, mustCode(t, e.get(base), 200))
	var listRV int64
	fmt.Sscan(list.Metadata.ResourceVersion, &listRV)

	// Changes made between the list and the watch, and while it runs.
	type change struct{ typ, name string }
	var want []change
	var mu sync.Mutex
	do := func(typ, name string) {
		var r response
		switch typ {
		case "ADDED":
			r = e.post(base, configMapJSON(name, nil))
		case "MODIFIED":
			r = e.put(base+"/"+name, configMapJSON(name, map[string]string{"v": fmt.Sprint(time.Now().UnixNano())}))
		case "DELETED":
			r = e.del(base + "/" + name)
		}
		if r.code/100 != 2 {
			t.Errorf("%s %s: %d %s", typ, name, r.code, r.body)
		}
		mu.Lock()
		want = append(want, change{typ, name})
		mu.Unlock()
	}
	do("MODIFIED", "c0")
	do("DELETED", "c1")
	do("ADDED", "d0")
	ws := e.openWatch(t, base+"?watch=true&resourceVersion="+list.Metadata.ResourceVersion)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < 10; i++ {
			do("ADDED", fmt.Sprintf("d%d", i))
			do("MODIFIED", fmt.Sprintf("d%d", i-1))
		}
		do("DELETED", "c2")
	}()
	<-done
	for i, w := range want {
		ev := ws.next(t)
		m := ev.meta(t)
		if ev.Type != w.typ || m.Name != w.name || m.ResourceVersion != fmt.Sprint(listRV+int64(i)+1) {
			t.Fatalf("event %d: %s %s rv %s, want %s %s rv %d", i, ev.Type, m.Name, m.ResourceVersion, w.typ, w.name, listRV+int64(i)+1)
		}
	}
	// Nothing was delivered twice: the next event is the next change.
	do("ADDED", "last")
	if ev := ws.next(t); ev.Type != "ADDED" || ev.meta(t).Name != "last" {
		t.Fatalf("after the expected events: %s %s", ev.Type, ev.meta(t).Name)
	}
}

func TestWatchWithoutResourceVersionStartsWithCurrentObjects(t *testing.T) {
	e := newEnv(t)
	base := "/api/v1/namespaces/default/pods"
	mustCode(t, e.post(base, fmt.Sprintf(podJSON, "a", "web")), 201)
	mustCode(t, e.post(base, fmt.Sprintf(podJSON, "b", "db")), 201)
	mustCode(t, e.post(base, fmt.Sprintf(podJSON, "c", "web")), 201)
	for _, q := range []string{"?watch=1&labelSelector=app%3Dweb", "?watch=true&resourceVersion=0&labelSelector=app%3Dweb"} {
		ws := e.openWatch(t, base+q)
		for _, name := range []string{"a", "c"} {
			if ev := ws.next(t); ev.Type != "ADDED" || ev.meta(t).Name != name {
				t.Fatalf("%s: initial event %s %s, want ADDED %s", q, ev.Type, ev.meta(t).Name, name)
			}
		}
		ws.cancel()
	}
	ws := e.openWatch(t, base+"?watch=true&labelSelector=app%3Dweb")
	ws.next(t)
	ws.next(t)
	mustCode(t, e.post(base, fmt.Sprintf(podJSON, "d", "db")), 201) // filtered out
	mustCode(t, e.post(base, fmt.Sprintf(podJSON, "e", "web")), 201)
	if ev := ws.next(t); ev.Type != "ADDED" || ev.meta(t).Name != "e" {
		t.Fatalf("got %s %s, want ADDED e", ev.Type, ev.meta(t).Name)
	}
	mustCode(t, e.del(base+"/e"), 200)
	ev := ws.next(t)
	if ev.Type != "DELETED" || ev.meta(t).Name != "e" {
		t.Fatalf("got %s %s, want DELETED e", ev.Type, ev.meta(t).Name)
	}
	if !strings.Contains(string(ev.Object), `"kind":"Pod"`) {
		t.Errorf("event object lacks its kind: %s", ev.Object)
	}
}

func TestWatchTooOldIsGone(t *testing.T) {
	e := newEnv(t, func(c *store.Config, _ *ServerConfig) { c.HistorySize = 5 })
	for i := range 20 {
		mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON(fmt.Sprintf("c%d", i), nil)), 201)
	}
	// As Kubernetes: the watch starts and its only event is a 410 Status.
	ws := e.openWatch(t, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2")
	ev := ws.next(t)
	var st api.Status
	if err := json.Unmarshal(ev.Object, &st); err != nil || ev.Type != "ERROR" || st.Code != 410 ||
		st.Reason != api.ReasonExpired || !strings.Contains(st.Message, "too old resource version") {
		t.Errorf("%s %s", ev.Type, ev.Object)
	}
	ws.waitEnd(t)
	if len(e.rec.all()) != 0 {
		t.Errorf("a watcher was created for a refused watch")
	}
}

func TestWatchBadParameters(t *testing.T) {
	e := newEnv(t, func(_ *store.Config, c *ServerConfig) { c.MaxWatchTimeout = time.Minute })
	base := "/api/v1/namespaces/default/configmaps?watch=true"
	for q, mention := range map[string]string{
		"&timeoutSeconds=-1":    "timeoutSeconds",
		"&timeoutSeconds=abc":   "timeoutSeconds",
		"&timeoutSeconds=61":    "from 0 to 60",
		"&resourceVersion=abc":  "resourceVersion",
		"&resourceVersion=-4":   "resourceVersion",
		"&labelSelector=%3D%3D": "labelSelector",
	} {
		st := mustCode(t, e.get(base+q), 400).status(t)
		if !strings.Contains(st.Message, mention) {
			t.Errorf("%s: message %q does not mention %q", q, st.Message, mention)
		}
	}
	// The limit itself is accepted.
	ws := e.openWatch(t, base+"&timeoutSeconds=60")
	ws.cancel()
}

func TestWatchTimeoutEndsStreamAndStopsWatcher(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	ws := e.openWatch(t, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1")
	if rest := ws.waitEnd(t); len(rest) != 0 {
		t.Errorf("unexpected events %v", rest)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("stream ended after %v, before its timeout", d)
	}
	ws2 := e.rec.all()
	if len(ws2) != 1 {
		t.Fatalf("%d watchers", len(ws2))
	}
	waitStopped(t, ws2[0])
}

func TestWatchDisconnectStopsWatcher(t *testing.T) {
	e := newEnv(t)
	ws := e.openWatch(t, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1")
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("a", nil)), 201)
	ws.next(t)
	ws.cancel()
	waitStopped(t, e.rec.all()[0])
}

func TestServerCloseEndsWatches(t *testing.T) {
	e := newEnv(t)
	ws := e.openWatch(t, "/api/v1/namespaces/default/configmaps?watch=true")
	e.srv.Close()
	ws.waitEnd(t)
	waitStopped(t, e.rec.all()[0])
}

// blockingWriter is a ResponseWriter whose first body write waits for a
// release, so that a watch falls behind while the test makes changes.
type blockingWriter struct {
	header  http.Header
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.entered)
		<-w.release
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestWatchOverflowEndsWithErrorEvent(t *testing.T) {
	e := newEnv(t, func(c *store.Config, _ *ServerConfig) { c.WatchBuffer = 3 })
	bw := &blockingWriter{header: http.Header{}, entered: make(chan struct{}), release: make(chan struct{})}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1", nil)
	served := make(chan struct{})
	go func() {
		defer close(served)
		e.srv.Handler().ServeHTTP(bw, req)
	}()
	// The first event gets the writer stuck; the next ones pile up in the
	// watcher until it overflows.
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("first", nil)), 201)
	select {
	case <-bw.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch never wrote")
	}
	for i := range 10 {
		mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON(fmt.Sprintf("c%d", i), nil)), 201)
	}
	close(bw.release)
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end after overflowing")
	}
	lines := strings.Split(strings.TrimSpace(bw.buf.String()), "\n")
	var last wireEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Type != "ERROR" {
		t.Fatalf("last line %s, want an ERROR event", lines[len(lines)-1])
	}
	var st api.Status
	if err := json.Unmarshal(last.Object, &st); err != nil || st.Code != 410 || st.Reason != api.ReasonExpired || st.Kind != "Status" {
		t.Errorf("ERROR object: %s", last.Object)
	}
	// The watcher's channel holds the buffer plus the history it replayed:
	// when the handler's goroutine registers the watch only after "first"
	// was committed (a loaded machine), "first" is replayed and the
	// channel is one larger.
	if n := len(lines) - 1; n < 1 || n > 1+3+1 {
		t.Errorf("%d events before the error; want the stuck one plus at most the buffer and the one replayed", n)
	}
}

func TestEventObjectStampsDeletionRevision(t *testing.T) {
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "x", ResourceVersion: "4"}}
	got := eventObject(store.Event{Type: store.Deleted, Object: cm, Revision: 9})
	if got.GetObjectMeta().ResourceVersion != "9" || cm.ResourceVersion != "4" {
		t.Errorf("stamped %q, original now %q", got.GetObjectMeta().ResourceVersion, cm.ResourceVersion)
	}
	if got.GetTypeMeta().Kind != "ConfigMap" {
		t.Errorf("type meta not filled: %+v", got.GetTypeMeta())
	}
}

// flushCounter is a ResponseWriter that records what is written and counts
// the flushes.
type flushCounter struct {
	header  http.Header
	mu      sync.Mutex
	buf     bytes.Buffer
	flushes int
}

func (w *flushCounter) Header() http.Header { return w.header }
func (w *flushCounter) WriteHeader(int)     {}
func (w *flushCounter) Flush() {
	w.mu.Lock()
	w.flushes++
	w.mu.Unlock()
}
func (w *flushCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Events already waiting in the watcher leave in one flush, not one
// each: a watch that fell behind (an agent serving many watches under
// load, issue 14) catches up with one write instead of one per event.
func TestWatchPendingEventsShareAFlush(t *testing.T) {
	e := newEnv(t)
	first := mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("c0", nil)), 201)
	var m struct {
		Metadata api.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(first.body), &m); err != nil {
		t.Fatal(err)
	}
	const more = 30
	for i := 1; i <= more; i++ {
		mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON(fmt.Sprintf("c%d", i), nil)), 201)
	}
	// From c0's revision: the other 30 are replayed into the watcher at
	// once; the stream ends at its 1 s timeout.
	w := &flushCounter{header: http.Header{}}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&resourceVersion="+m.Metadata.ResourceVersion, nil)
	served := make(chan struct{})
	go func() {
		defer close(served)
		e.srv.Handler().ServeHTTP(w, req)
	}()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end at its timeout")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(w.buf.String()), "\n")
	if len(lines) != more {
		t.Fatalf("%d events, want %d", len(lines), more)
	}
	for i, l := range lines {
		var ev wireEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		if name := ev.meta(t).Name; ev.Type != "ADDED" || name != fmt.Sprintf("c%d", i+1) {
			t.Fatalf("event %d: %s %s, want ADDED c%d", i, ev.Type, name, i+1)
		}
	}
	// The headers' flush, then the 30 events in one flush.
	if w.flushes > 3 {
		t.Errorf("%d flushes for %d waiting events, want at most 3", w.flushes, more)
	}
}
