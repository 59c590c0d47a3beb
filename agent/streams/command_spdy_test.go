package streams

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/spdystream"
)

// spdyClient is a remote command client over SPDY/3.1 as kubectl < 1.30
// speaks it: the upgrade, then one stream per standard stream.
type spdyClient struct {
	protocol string
	sc       *spdystream.Connection
	streams  map[string]*spdystream.Stream
}

// dialSPDYCommand upgrades query on srv offering protocols, and opens the
// streams named in types (the error stream first, as clients do).
func dialSPDYCommand(t *testing.T, srv *httptest.Server, query string, protocols []string, types ...string) *spdyClient {
	t.Helper()
	c, resp := upgradeSPDYRequest(t, srv, query, protocols)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upgrade: %d %s", resp.StatusCode, b)
	}
	sc, err := spdystream.NewConnection(c, false)
	if err != nil {
		t.Fatal(err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	t.Cleanup(func() { sc.Close() })
	cl := &spdyClient{protocol: resp.Header.Get("X-Stream-Protocol-Version"), sc: sc, streams: map[string]*spdystream.Stream{}}
	for _, typ := range types {
		h := http.Header{}
		h.Set("streamType", typ)
		st, err := sc.CreateStream(h, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.WaitTimeout(60 * time.Second); err != nil {
			t.Fatalf("stream %s: %v", typ, err)
		}
		cl.streams[typ] = st
	}
	return cl
}

// upgradeSPDYRequest sends a remote command's upgrade to SPDY/3.1 offering
// protocols, and returns the connection and the answer.
func upgradeSPDYRequest(t *testing.T, srv *httptest.Server, query string, protocols []string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "POST /exec?" + query + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
	for _, p := range protocols {
		req += "X-Stream-Protocol-Version: " + p + "\r\n"
	}
	io.WriteString(c, req+"Content-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, resp
}

// readStreams reads each named stream to its end, concurrently.
func (c *spdyClient) readStreams(t *testing.T, types ...string) map[string]string {
	t.Helper()
	type res struct{ typ, data string }
	ch := make(chan res, len(types))
	for _, typ := range types {
		go func() {
			b, _ := io.ReadAll(c.streams[typ])
			ch <- res{typ, string(b)}
		}()
	}
	out := map[string]string{}
	deadline := time.After(60 * time.Second)
	for range types {
		select {
		case r := <-ch:
			out[r.typ] = r.data
		case <-deadline:
			t.Fatalf("streams not ended within 60 s; got %v", out)
		}
	}
	return out
}

// TestCommandSPDYV4: stdin reaches the command and ends with the client's
// half-close, stdout and stderr come on their streams, and the exit code
// comes as a Status in JSON on the error stream, as kubectl 1.20 reads it.
func TestCommandSPDYV4(t *testing.T) {
	srv := commandServer(t, catWarnExit7)
	c := dialSPDYCommand(t, srv, "command=cat&stdin=true&stdout=true&stderr=true",
		[]string{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"},
		"error", "stdin", "stdout", "stderr")
	if c.protocol != "v4.channel.k8s.io" {
		t.Fatalf("protocol %q", c.protocol)
	}
	c.streams["stdin"].Write([]byte("hello "))
	c.streams["stdin"].Write([]byte("world"))
	c.streams["stdin"].Close()
	got := c.readStreams(t, "stdout", "stderr", "error")
	if got["stdout"] != "got hello world" || got["stderr"] != "warn" {
		t.Fatalf("got %q", got)
	}
	checkExit7(t, statusOf(t, bytes.NewBufferString(got["error"])))
}

// TestCommandSPDYResizeAndV2: v3 with a terminal opens a resize stream
// whose JSON sizes reach the command; v2 has no resize stream and writes
// only a failure's message on the error stream (nothing on success).
func TestCommandSPDYResizeAndV2(t *testing.T) {
	srv := commandServer(t, func(s Session, o CommandOptions) int {
		for sz := range s.Resize() {
			fmt.Fprintf(s.Stdout(), "%dx%d;", sz.Width, sz.Height)
			if sz.Width == 1 {
				break
			}
		}
		if o.Command[0] == "fail" {
			return 2
		}
		return 0
	})
	c := dialSPDYCommand(t, srv, "command=sh&stdin=true&stdout=true&tty=true", []string{"v3.channel.k8s.io"},
		"error", "stdin", "stdout", "resize")
	io.WriteString(c.streams["resize"], `{"Width":80,"Height":24}`)
	io.WriteString(c.streams["resize"], `{"Width":1,"Height":2}`)
	if got := c.readStreams(t, "stdout", "error"); got["stdout"] != "80x24;1x2;" || got["error"] != "" {
		t.Fatalf("v3: got %q", got)
	}

	c = dialSPDYCommand(t, srv, "command=fail&stdout=true&tty=true", []string{"v2.channel.k8s.io"}, "error", "stdout")
	got := c.readStreams(t, "stdout", "error")
	if got["stdout"] != "" || !strings.Contains(got["error"], "exit code: exit status 2") {
		t.Fatalf("v2: got %q", got)
	}
}

// TestCommandSPDYRefusals: a protocol not served is refused before the
// upgrade with a 400 naming the ones served; a stream the query did not
// announce is refused.
func TestCommandSPDYRefusals(t *testing.T) {
	srv := commandServer(t, func(s Session, o CommandOptions) int { return 0 })
	_, resp := upgradeSPDYRequest(t, srv, "command=ls&stdout=true", []string{"channel.k8s.io"})
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "v4.channel.k8s.io") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}

	c := dialSPDYCommand(t, srv, "command=ls&stdout=true", []string{"v4.channel.k8s.io"}, "error", "stdout")
	h := http.Header{}
	h.Set("streamType", "stdin")
	st, err := c.sc.CreateStream(h, nil, false)
	if err == nil {
		err = st.WaitTimeout(60 * time.Second)
	}
	if err == nil {
		t.Fatal("an unannounced stdin stream was accepted")
	}
}
