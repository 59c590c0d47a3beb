package streams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoal-dev/shoal/api"
)

// commandServer runs run on each session it upgrades; run returns the
// exit code.
func commandServer(t *testing.T, run func(s Session, o CommandOptions) int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := ParseCommandOptions(r, true)
		if err != nil {
			writeStatus(w, api.NewBadRequest("%v", err).Status())
			return
		}
		s, err := UpgradeCommand(w, r, o)
		if err != nil {
			return
		}
		_ = s.Finish(ExitStatus(run(s, o)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func dialCommand(t *testing.T, srv *httptest.Server, query string, protocols ...string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 30 * time.Second}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/exec?"+query, nil)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial: %v %s", err, body)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll collects every channel's data until the server closes.
func readAll(t *testing.T, c *websocket.Conn) map[byte]*bytes.Buffer {
	t.Helper()
	got := map[byte]*bytes.Buffer{}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("read: %v", err)
			}
			return got
		}
		if typ != websocket.BinaryMessage || len(msg) == 0 {
			t.Fatalf("message of type %d, %d bytes", typ, len(msg))
		}
		if got[msg[0]] == nil {
			got[msg[0]] = &bytes.Buffer{}
		}
		got[msg[0]].Write(msg[1:])
	}
}

func send(t *testing.T, c *websocket.Conn, ch byte, data string) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...)); err != nil {
		t.Fatal(err)
	}
}

func statusOf(t *testing.T, b *bytes.Buffer) api.Status {
	t.Helper()
	var st api.Status
	if b == nil {
		t.Fatal("no message on the error channel")
	}
	if err := json.Unmarshal(b.Bytes(), &st); err != nil {
		t.Fatalf("error channel %q: %v", b, err)
	}
	return st
}

// TestCommandV5StdinCloseAndExitCode: stdin data on channel 0 reaches the
// command, the v5 close signal (255, 0) ends its stdin, stdout and stderr
// come on channels 1 and 2, and the exit code in the Status on channel 3
// in the shape kubectl reads.
func TestCommandV5StdinCloseAndExitCode(t *testing.T) {
	srv := commandServer(t, catWarnExit7)
	c := dialCommand(t, srv, "command=cat&stdin=true&stdout=true&stderr=true", ProtocolV5)
	if c.Subprotocol() != ProtocolV5 {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	send(t, c, ChanStdin, "hello ")
	send(t, c, ChanStdin, "world")
	send(t, c, ChanClose, string([]byte{ChanStdin}))
	got := readAll(t, c)
	if got[ChanStdout].String() != "got hello world" || got[ChanStderr].String() != "warn" {
		t.Fatalf("stdout %q stderr %q", got[ChanStdout], got[ChanStderr])
	}
	checkExit7(t, statusOf(t, got[ChanError]))
}

// catWarnExit7 prints "got " and its stdin on stdout, "warn" on stderr,
// and exits with 7.
func catWarnExit7(s Session, o CommandOptions) int {
	b, _ := io.ReadAll(s.Stdin())
	fmt.Fprintf(s.Stdout(), "got %s", b)
	fmt.Fprint(s.Stderr(), "warn")
	return 7
}

// checkExit7 checks the Status of exit code 7 as kubectl reads it.
func checkExit7(t *testing.T, st api.Status) {
	t.Helper()
	if st.Status != api.StatusFailure || st.Reason != ReasonNonZeroExitCode || st.Details == nil ||
		len(st.Details.Causes) != 1 || st.Details.Causes[0].Type != CauseExitCode || st.Details.Causes[0].Message != "7" {
		t.Fatalf("status %+v", st)
	}
}

// TestCommandV4Success: v4 (no close signal) and exit code 0 as Success.
func TestCommandV4Success(t *testing.T) {
	srv := commandServer(t, func(s Session, o CommandOptions) int {
		if s.Stdin() != nil {
			t.Error("stdin without stdin=true")
		}
		fmt.Fprint(s.Stdout(), "ok")
		return 0
	})
	c := dialCommand(t, srv, "command=true&stdout=true", ProtocolV4, "channel.k8s.io")
	if c.Subprotocol() != ProtocolV4 {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	got := readAll(t, c)
	if got[ChanStdout].String() != "ok" || got[ChanStderr] != nil {
		t.Fatalf("got %v", got)
	}
	if st := statusOf(t, got[ChanError]); st.Status != api.StatusSuccess || st.Details != nil {
		t.Fatalf("status %+v", st)
	}
}

// TestCommandResize: with tty, resize events on channel 4 (JSON, as
// kubectl sends them, several per message or split across messages)
// arrive in order.
func TestCommandResize(t *testing.T) {
	srv := commandServer(t, func(s Session, o CommandOptions) int {
		if !o.TTY {
			t.Error("tty not parsed")
		}
		for i := 0; i < 3; i++ {
			sz, ok := <-s.Resize()
			if !ok {
				t.Error("resize closed early")
				return 1
			}
			fmt.Fprintf(s.Stdout(), "%dx%d;", sz.Width, sz.Height)
		}
		return 0
	})
	c := dialCommand(t, srv, "command=sh&stdin=true&stdout=true&tty=true", ProtocolV5)
	send(t, c, ChanResize, `{"Width":80,"Height":24}`)
	send(t, c, ChanResize, `{"Width":100,`)
	send(t, c, ChanResize, `"Height":30}{"Width":1,"Height":2}`)
	got := readAll(t, c)
	if got[ChanStdout].String() != "80x24;100x30;1x2;" {
		t.Fatalf("stdout %q", got[ChanStdout])
	}
}

// TestCommandRefusals: bad options and unserved subprotocols get a 400
// naming the parameter or the protocols, before any upgrade.
func TestCommandRefusals(t *testing.T) {
	srv := commandServer(t, func(s Session, o CommandOptions) int { return 0 })
	for _, tc := range []struct {
		query, protocol, want string
	}{
		{"stdout=true", ProtocolV5, "query parameter command"},
		{"command=ls", ProtocolV5, "stdin, stdout, stderr"},
		{"command=ls&stdout=yes-please", ProtocolV5, "query parameter stdout"},
		{"command=ls&stdout=true&stderr=true&tty=true", ProtocolV5, "tty and stderr"},
		{"command=ls&stdout=true", "base64.channel.k8s.io", "include neither"},
	} {
		d := websocket.Dialer{Subprotocols: []string{tc.protocol}}
		_, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/exec?"+tc.query, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: err %v resp %v, want 400", tc.query, err, resp)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %s, want it to name %q", tc.query, b, tc.want)
		}
	}
}

// TestCommandClientGone: a client that goes away ends the session: Gone
// closes, stdin reads EOF.
func TestCommandClientGone(t *testing.T) {
	done := make(chan string, 1)
	srv := commandServer(t, func(s Session, o CommandOptions) int {
		b, err := io.ReadAll(s.Stdin())
		<-s.Gone()
		done <- fmt.Sprintf("%s %v", b, err)
		return 0
	})
	c := dialCommand(t, srv, "command=cat&stdin=true&stdout=true", ProtocolV5)
	send(t, c, ChanStdin, "partial")
	c.Close()
	select {
	case got := <-done:
		if got != "partial <nil>" {
			t.Fatalf("got %q", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the session did not see the client go")
	}
}
