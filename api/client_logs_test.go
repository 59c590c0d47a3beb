package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestLogsQuery: the client sends every log option as the query
// parameter the API reads (sinceSeconds rounded up to whole seconds).
func TestLogsQuery(t *testing.T) {
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path + "?" + r.URL.RawQuery
		w.Write([]byte("line\n"))
	}))
	defer ts.Close()
	c := NewClient(ts.URL)
	tail, limit := int64(0), int64(10)
	var out bytes.Buffer
	err := c.Logs(context.Background(), "ns", "web", LogOptions{
		Container: "app", Follow: true, Previous: true, TailLines: &tail, LimitBytes: &limit, Since: 1500 * time.Millisecond,
	}, &out)
	if err != nil || out.String() != "line\n" {
		t.Fatalf("logs: %v %q", err, out.String())
	}
	want := "/api/v1/namespaces/ns/pods/web/log?container=app&follow=true&limitBytes=10&previous=true&sinceSeconds=2&tailLines=0"
	if q := <-got; q != want {
		t.Fatalf("request %s, want %s", q, want)
	}
}
