package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/spdystream"

	"github.com/shoal-dev/shoal/agent/streams"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// streamEnv is a node loop running pod "web" (container "app", on the
// fake runtime) behind the log, exec, attach and portforward handlers.
type streamEnv struct {
	h       *nodeHarness
	srv     *httptest.Server
	logPath string
	id      string
}

func newStreamEnv(t *testing.T, tweak func(*Config)) *streamEnv {
	return newStreamEnvWith(t, tweak, api.Container{Name: "app", Image: "reg/app:1"})
}

// newStreamEnvWith runs pod "web" with container c (named "app").
func newStreamEnvWith(t *testing.T, tweak func(*Config), c api.Container) *streamEnv {
	h := newNodeHarness(t, false, tweak)
	h.start()
	t.Cleanup(h.stop)
	h.pods.Replace([]*api.Pod{boundPod("web", "uid-web", c)})
	h.waitStatus("web", "Running", running)
	id := runtime.ContainerID("uid-web", "app", 0)
	e := &streamEnv{h: h, id: id, logPath: h.rt.spec(id).LogPath}
	if err := os.MkdirAll(filepath.Dir(e.logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	base := "/api/v1/namespaces/{ns}/pods/{name}/"
	mux.Handle(base+"log", h.loop.LogHandler())
	mux.Handle(base+"exec", h.loop.ExecHandler())
	mux.Handle(base+"attach", h.loop.AttachHandler())
	mux.Handle(base+"portforward", h.loop.PortForwardHandler())
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *streamEnv) get(t *testing.T, query string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/api/v1/namespaces/default/pods/web/log?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestLogOptions: tailLines, limitBytes, sinceSeconds (whole files), and
// a named 400 for every bad parameter.
func TestLogOptions(t *testing.T) {
	e := newStreamEnv(t, nil)
	os.WriteFile(e.logPath+".1", []byte("r1\nr2\n"), 0o644)
	os.WriteFile(e.logPath, []byte("a\nb\nc"), 0o644)
	for _, tc := range []struct{ query, want string }{
		{"", "r1\nr2\na\nb\nc"},
		{"tailLines=2", "b\nc"},
		{"tailLines=3", "a\nb\nc"},
		{"tailLines=4", "r2\na\nb\nc"},
		{"tailLines=100", "r1\nr2\na\nb\nc"},
		{"tailLines=0", ""},
		{"limitBytes=4", "r1\nr"},
		{"tailLines=2&limitBytes=1", "b"},
	} {
		if code, body, _ := e.get(t, tc.query); code != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.query, code, body, tc.want)
		}
	}
	// The attempt started before sinceTime; the rotated file was last
	// written before it, the file in progress after it: the first is
	// left out, the second kept whole, with a warning. A sinceTime after
	// every write gives nothing. sinceSeconds reaching before the
	// attempt's start gives everything.
	now := time.Now()
	old, later := now.Add(-time.Hour), now.Add(time.Hour)
	os.Chtimes(e.logPath+".1", old, old)
	os.Chtimes(e.logPath, later, later)
	code, body, hdr := e.get(t, "sinceTime="+now.Add(time.Minute).UTC().Format(time.RFC3339))
	if code != 200 || body != "a\nb\nc" || !strings.Contains(hdr.Get("Warning"), "sinceSeconds/sinceTime") {
		t.Errorf("sinceTime: %d %q %v", code, body, hdr)
	}
	if code, body, _ := e.get(t, "sinceTime="+now.Add(2*time.Hour).UTC().Format(time.RFC3339)); code != 200 || body != "" {
		t.Errorf("sinceTime after every write: %d %q", code, body)
	}
	if code, body, hdr := e.get(t, "sinceSeconds=3600"); code != 200 || body != "r1\nr2\na\nb\nc" || hdr.Get("Warning") != "" {
		t.Errorf("sinceSeconds before the start: %d %q %v", code, body, hdr)
	}
	for _, tc := range []struct{ query, want string }{
		{"tailLines=-1", "tailLines"},
		{"tailLines=x", "tailLines"},
		{"limitBytes=0", "limitBytes"},
		{"sinceSeconds=0", "sinceSeconds"},
		{"sinceTime=yesterday", "sinceTime"},
		{"sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z", "sinceSeconds and sinceTime"},
		{"follow=maybe", "follow"},
		{"previous=2", "previous"},
		{"timestamps=sometimes", "timestamps"},
	} {
		code, body, _ := e.get(t, tc.query)
		if code != 400 || !strings.Contains(body, "query parameter") || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want a 400 naming %s", tc.query, code, body, tc.want)
		}
	}
}

// TestLogRecordsTimestampsAndSince: a log written as records gives their
// text (partial records joined), with timestamps=true each line's time
// first, and sinceTime leaves out each older record, with no warning; a
// log of an older agent (raw lines) comes unstamped, with a warning.
func TestLogRecordsTimestampsAndSince(t *testing.T) {
	e := newStreamEnv(t, nil)
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	var b []byte
	b = runtime.AppendLogRecord(b, t0, runtime.StreamStdout, false, []byte("first"))
	b = runtime.AppendLogRecord(b, t0.Add(time.Second), runtime.StreamStderr, true, []byte("sec"))
	b = runtime.AppendLogRecord(b, t0.Add(2*time.Second), runtime.StreamStderr, false, []byte("ond"))
	b = runtime.AppendLogRecord(b, t0.Add(3*time.Second+5), runtime.StreamStdout, false, []byte("third line"))
	os.WriteFile(e.logPath, b, 0o644)
	for _, tc := range []struct{ query, want string }{
		{"", "first\nsecond\nthird line\n"},
		{"tailLines=1", "third line\n"},
		{"timestamps=true&tailLines=1", "2026-11-30T07:00:03.000000005Z third line\n"},
		{"timestamps=true&tailLines=3", "2026-11-30T07:00:01Z sec2026-11-30T07:00:02Z ond\n2026-11-30T07:00:03.000000005Z third line\n"},
		{"sinceTime=2026-11-30T07:00:02Z", "ond\nthird line\n"},
		{"sinceTime=2026-11-30T07:00:02Z&timestamps=true&limitBytes=24", "2026-11-30T07:00:02Z ond"},
	} {
		code, body, hdr := e.get(t, tc.query)
		if code != 200 || body != tc.want || hdr.Get("Warning") != "" {
			t.Errorf("%s: %d %q %v, want %q", tc.query, code, body, hdr.Get("Warning"), tc.want)
		}
	}
	os.WriteFile(e.logPath, []byte("raw line\n"), 0o644)
	if code, body, hdr := e.get(t, "timestamps=true"); code != 200 || body != "raw line\n" || !strings.Contains(hdr.Get("Warning"), "timestamps") {
		t.Errorf("raw log with timestamps: %d %q %v", code, body, hdr)
	}
}

// TestLogFollowEndsWithTheAttempt: follow streams what is appended and
// ends when the container's attempt ends.
func TestLogFollowEndsWithTheAttempt(t *testing.T) {
	e := newStreamEnv(t, nil)
	os.WriteFile(e.logPath, []byte("one\n"), 0o644)
	resp, err := http.Get(e.srv.URL + "/api/v1/namespaces/default/pods/web/log?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	f, _ := os.OpenFile(e.logPath, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("two\n")
	f.Close()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	e.h.rt.exit(e.id, 0, false)
	select {
	case b := <-got:
		if b != "one\ntwo\n" {
			t.Fatalf("followed %q", b)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("follow did not end with the container")
	}
}

func (e *streamEnv) dial(t *testing.T, sub, query string, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 30 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/api/v1/namespaces/default/pods/web/"+sub+"?"+query, nil)
}

// session reads every channel until the server closes the session.
func session(t *testing.T, c *websocket.Conn) map[byte]string {
	t.Helper()
	got := map[byte]string{}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("read: %v", err)
			}
			return got
		}
		if len(msg) > 0 {
			got[msg[0]] += string(msg[1:])
		}
	}
}

// TestExecOverWebSocket: stdin to the command, the v5 close of stdin, TTY
// resizes reaching the runtime, and exit codes in the closing Status.
func TestExecOverWebSocket(t *testing.T) {
	e := newStreamEnv(t, nil)
	c, _, err := e.dial(t, "exec", "command=cat&stdin=true&stdout=true&stderr=true", streams.ProtocolV5)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte("\x00hello"))
	c.WriteMessage(websocket.BinaryMessage, []byte{streams.ChanClose, streams.ChanStdin})
	got := session(t, c)
	if got[streams.ChanStdout] != "hello" || !strings.Contains(got[streams.ChanError], `"status":"Success"`) {
		t.Fatalf("cat: %q", got)
	}

	c, _, err = e.dial(t, "exec", "command=size&stdin=true&stdout=true&tty=true", streams.ProtocolV5)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte(``+"\x04"+`{"Width":120,"Height":40}`))
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "\x01size 120x40\n" {
		t.Fatalf("resize: %q %v", msg, err)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte{streams.ChanClose, streams.ChanStdin})
	session(t, c)

	c, _, err = e.dial(t, "exec", "command=exit&command=42&stdout=true", streams.ProtocolV4)
	if err != nil {
		t.Fatal(err)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(session(t, c)[streams.ChanError]), &st); err != nil || st.Reason != streams.ReasonNonZeroExitCode ||
		st.Details.Causes[0].Message != "42" {
		t.Fatalf("exit 42: %+v %v", st, err)
	}

	// Refusals before the upgrade: a missing container, a SPDY upgrade.
	if _, resp, err := e.dial(t, "exec", "command=ls&stdout=true&container=zzz", streams.ProtocolV5); err == nil || resp.StatusCode != 400 {
		t.Fatalf("container zzz: %v %v", err, resp)
	}
	// kubectl falls back to SPDY when the WebSocket upgrade failed and
	// shows that answer: what is wrong with the request, or which SPDY
	// protocols are served; the command never runs.
	spdy := func(query, want string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/namespaces/default/pods/web/exec?"+query, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "SPDY/3.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), want) {
			t.Errorf("SPDY exec %s: %d %s, want %q", query, resp.StatusCode, b, want)
		}
	}
	before := len(e.h.rt.Calls("exec"))
	spdy("command=ls&stdout=true", "v4.channel.k8s.io")
	spdy("command=ls&stdout=true&container=zzz", "container zzz is not valid")
	spdy("stdout=true", "query parameter command")
	if calls := e.h.rt.Calls("exec"); len(calls) != before {
		t.Fatalf("a command ran: %v", calls[before:])
	}
}

// TestAttachStreamsOutputUntilExit: attach sends what the container logs
// from now on, and the session ends when the container does.
func TestAttachStreamsOutputUntilExit(t *testing.T) {
	e := newStreamEnv(t, nil)
	os.WriteFile(e.logPath, []byte("before\n"), 0o644)
	if _, resp, err := e.dial(t, "attach", "stdin=true&stdout=true", streams.ProtocolV5); err == nil || resp.StatusCode != 400 {
		t.Fatalf("attach stdin: %v", err)
	}
	c, _, err := e.dial(t, "attach", "stdout=true&stderr=true", streams.ProtocolV5)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(e.logPath, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("after\n")
	f.Close()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "\x01after\n" {
		t.Fatalf("attach: %q %v", msg, err)
	}
	e.h.rt.exit(e.id, 0, false)
	if got := session(t, c); !strings.Contains(got[streams.ChanError], "Success") {
		t.Fatalf("end: %q", got)
	}
}

// echoAttach is a runtime whose containers answer attach by echoing
// their stdin in capitals and printing each terminal size.
type echoAttach struct{ *fakeRuntime }

func (e echoAttach) Attach(ctx context.Context, id string, a runtime.AttachIO) error {
	in := make(chan []byte)
	go func() {
		defer close(in)
		buf := make([]byte, 64)
		for a.Stdin != nil {
			n, err := a.Stdin.Read(buf)
			if n > 0 {
				in <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case b, ok := <-in:
			if !ok {
				return nil
			}
			a.Stdout.Write([]byte(strings.ToUpper(string(b))))
		case sz, ok := <-a.Resize:
			if ok {
				fmt.Fprintf(a.Stdout, "size %dx%d\n", sz.Width, sz.Height)
			} else {
				a.Resize = nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestAttachStdinAndTerminal: attach with stdin and tty reaches a
// container whose spec has stdin and tty: the session's input, its
// terminal sizes, and the end of stdin ending the session.
func TestAttachStdinAndTerminal(t *testing.T) {
	e := newStreamEnvWith(t, func(c *Config) { c.Runtime = echoAttach{c.Runtime.(*fakeRuntime)} },
		api.Container{Name: "app", Image: "reg/app:1", Stdin: true, TTY: true})
	c, _, err := e.dial(t, "attach", "stdin=true&stdout=true&tty=true", streams.ProtocolV5)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	c.WriteMessage(websocket.BinaryMessage, []byte("\x00typed"))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "\x01TYPED" {
		t.Fatalf("stdin: %q %v", msg, err)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte("\x04"+`{"Width":90,"Height":30}`))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "\x01size 90x30\n" {
		t.Fatalf("resize: %q %v", msg, err)
	}
	c.WriteMessage(websocket.BinaryMessage, []byte{streams.ChanClose, streams.ChanStdin})
	if got := session(t, c); !strings.Contains(got[streams.ChanError], "Success") {
		t.Fatalf("end: %q", got)
	}
}

// TestPortForwardDialsThePodIP: each forwarded connection dials the pod's
// IP through Config.ProbeDial.
func TestPortForwardDialsThePodIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi from pod"))
			c.Close()
		}
	}()
	dialed := make(chan string, 4)
	e := newStreamEnv(t, func(c *Config) {
		c.ProbeDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialed <- addr
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		}
	})
	st, _ := e.h.status.last("web")
	ws, _, err := e.dial(t, "portforward", "", streams.TunnelProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	sc, err := spdystream.NewConnection(newWSConn(ws), false)
	if err != nil {
		t.Fatal(err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	defer sc.Close()
	h := http.Header{"Streamtype": {"error"}, "Port": {"8080"}, "Requestid": {"0"}}
	es, err := sc.CreateStream(h, nil, false)
	if err != nil || es.Wait() != nil {
		t.Fatal(err)
	}
	h.Set("Streamtype", "data")
	ds, err := sc.CreateStream(h, nil, false)
	if err != nil || ds.Wait() != nil {
		t.Fatal(err)
	}
	ds.Close()
	out, _ := io.ReadAll(ds)
	if string(out) != "hi from pod" {
		t.Fatalf("forwarded %q", out)
	}
	if a := <-dialed; a != net.JoinHostPort(st.PodIP, "8080") {
		t.Fatalf("dialed %s, want the pod IP %s", a, st.PodIP)
	}
}

// wsConn carries a byte stream in a WebSocket's binary messages, as
// kubectl's tunnel does (the client side, for the test).
type wsConn struct {
	*websocket.Conn
	cur *io.Reader
}

func newWSConn(c *websocket.Conn) wsConn { return wsConn{c, new(io.Reader)} }

func (c wsConn) Read(p []byte) (int, error) {
	for {
		if *c.cur == nil {
			_, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			*c.cur = r
		}
		n, err := (*c.cur).Read(p)
		if err == io.EOF {
			*c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c wsConn) Write(p []byte) (int, error) {
	return len(p), c.WriteMessage(websocket.BinaryMessage, p)
}

func (c wsConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }
