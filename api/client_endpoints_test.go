package api

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingAgent is a minimal API that stores nothing: it answers every
// POST 201 with the object sent and every GET 200 with a ConfigMap, and
// counts the writes it received.
type countingAgent struct {
	ts     *httptest.Server
	writes atomic.Int64
	reads  atomic.Int64
}

func newCountingAgent(t *testing.T) *countingAgent {
	t.Helper()
	a := &countingAgent{}
	a.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body) // before answering, as the API server does
			if err != nil {
				return
			}
			a.writes.Add(1)
			w.WriteHeader(http.StatusCreated)
			w.Write(b)
			return
		}
		a.reads.Add(1)
		io.WriteString(w, `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","namespace":"default"}}`)
	}))
	t.Cleanup(a.ts.Close)
	return a
}

// deadURL is an address where nothing listens: connections are refused.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// hangUpURL is an agent that reads each request whole, then drops the
// connection without an answer: what it received may have been applied.
func hangUpURL(t *testing.T, received *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
				io.Copy(io.Discard, req.Body)
				received.Add(1)
			}
			conn.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

func testConfigMap(name string) *ConfigMap {
	cm := &ConfigMap{ObjectMeta: ObjectMeta{Name: name, Namespace: "default"}}
	SetTypeMeta(cm)
	return cm
}

func TestSplitEndpoints(t *testing.T) {
	got := splitEndpoints(" http://a:7070/, http://b:7070,,")
	if want := []string{"http://a:7070", "http://b:7070"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := NewClient("http://a:7070").Endpoints(); !reflect.DeepEqual(got, []string{"http://a:7070"}) {
		t.Errorf("one endpoint: %q", got)
	}
}

func TestParseEndpoints(t *testing.T) {
	got, err := ParseEndpoints("10.0.0.1:7070, https://b:7070/ ,")
	if want := []string{"https://10.0.0.1:7070", "https://b:7070"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q %v, want %q", got, err, want)
	}
	for in, want := range map[string]string{
		"":                            "no address",
		"a:1,ftp://b:2":               `address 2 of 2 ("ftp://b:2"): scheme "ftp"`,
		"http://":                     "address 1 of 1",
		"http://a:1/api":              "without a path",
		"a:1,http://b:2?x=1":          "address 2 of 2",
		"http://a:1,http://[::1:7070": "address 2 of 2",
	} {
		if _, err := ParseEndpoints(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}

// TestClientMovesPastADeadAgent: the first agent of the list is down; the
// client uses the second, sends the write once, and starts there next time.
func TestClientMovesPastADeadAgent(t *testing.T) {
	live := newCountingAgent(t)
	dead := deadURL(t)
	c := NewClient(dead+","+live.ts.URL, WithRequestTimeout(10*time.Second))
	ctx := context.Background()
	start := time.Now()
	if _, err := c.Create(ctx, testConfigMap("a")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the create took %v", took)
	}
	if n := live.writes.Load(); n != 1 {
		t.Errorf("the live agent received %d writes, want 1", n)
	}
	if got := c.Endpoints(); got[0] != live.ts.URL {
		t.Errorf("endpoints %q: the live agent should come first now", got)
	}
	if _, err := c.Get(ctx, "ConfigMap", "default", "a"); err != nil {
		t.Fatal(err)
	}
	// With every agent down the error names them all.
	c = NewClient(dead+","+deadURL(t), WithRequestTimeout(10*time.Second))
	if _, err := c.Get(ctx, "ConfigMap", "default", "a"); err == nil || !strings.Contains(err.Error(), "no agent answered") {
		t.Errorf("all dead: %v", err)
	}
}

// TestClientNeverResendsASentWrite: an agent takes a write and drops the
// connection: the write may have been applied, so the client does not
// send it to the next agent; it answers 504 Timeout. A read is safe to
// send again and goes to the next agent.
func TestClientNeverResendsASentWrite(t *testing.T) {
	live := newCountingAgent(t)
	var received atomic.Int64
	c := NewClient(hangUpURL(t, &received)+","+live.ts.URL, WithRequestTimeout(10*time.Second))
	ctx := context.Background()
	_, err := c.Create(ctx, testConfigMap("a"))
	if ReasonForError(err) != ReasonTimeout || !strings.Contains(err.Error(), "may have been applied") {
		t.Errorf("create: %v, want a 504 Timeout saying the write may have been applied", err)
	}
	if received.Load() != 1 || live.writes.Load() != 0 {
		t.Errorf("the write reached the first agent %d times and the second %d times, want 1 and 0", received.Load(), live.writes.Load())
	}
	// The next request starts at the next agent.
	if got := c.Endpoints(); got[0] != live.ts.URL {
		t.Errorf("endpoints %q: the agent that failed should come last", got)
	}
	c = NewClient(hangUpURL(t, &received)+","+live.ts.URL, WithRequestTimeout(10*time.Second))
	if _, err := c.Get(ctx, "ConfigMap", "default", "a"); err != nil {
		t.Errorf("read: %v", err)
	}
	if live.reads.Load() != 1 {
		t.Errorf("the live agent served %d reads, want 1", live.reads.Load())
	}
}

// TestClientMovesPastA503: 503 means not applied; the next agent may do
// better (the first is cut off from the leader).
func TestClientMovesPastA503(t *testing.T) {
	live := newCountingAgent(t)
	var unavailable atomic.Int64
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unavailable.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no leader","reason":"ServiceUnavailable","code":503}`)
	}))
	t.Cleanup(cut.Close)
	c := NewClient(cut.URL+","+live.ts.URL, WithRequestTimeout(10*time.Second))
	if _, err := c.Create(context.Background(), testConfigMap("a")); err != nil {
		t.Fatal(err)
	}
	if unavailable.Load() != 1 || live.writes.Load() != 1 {
		t.Errorf("503s %d, writes applied %d; want 1 and 1", unavailable.Load(), live.writes.Load())
	}
	// Alone, the 503 is the answer.
	c = NewClient(cut.URL, WithRequestTimeout(10*time.Second))
	if _, err := c.Create(context.Background(), testConfigMap("b")); !IsServiceUnavailable(err) {
		t.Errorf("single agent: %v", err)
	}
}

// TestClientWriteToADyingAgent: an agent takes the request's headers and
// dies before reading its body (killed while the connection was open).
// The body never left (it waits for "100 Continue"), so the write is
// certainly not applied and goes to the next agent, once.
func TestClientWriteToADyingAgent(t *testing.T) {
	live := newCountingAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var expected atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil && req.Header.Get("Expect") == "100-continue" {
				expected.Add(1)
			}
			conn.Close() // headers read, body never asked for
		}
	}()
	c := NewClient("http://"+ln.Addr().String()+","+live.ts.URL, WithRequestTimeout(10*time.Second))
	if _, err := c.Create(context.Background(), testConfigMap("a")); err != nil {
		t.Fatalf("create: %v", err)
	}
	if expected.Load() != 1 || live.writes.Load() != 1 {
		t.Errorf("the dying agent saw %d requests asking to continue, the live one applied %d writes; want 1 and 1", expected.Load(), live.writes.Load())
	}
}
