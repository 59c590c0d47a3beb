package streams

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/spdystream"
)

// echoServer answers each connection with "echo:" and what it read, until
// the client half-closes.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("echo:"), b...))
			}()
		}
	}()
	return ln
}

// pfServer forwards port 8080 to echo, and refuses every other port.
func pfServer(t *testing.T, echo net.Listener) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServePortForward(r.Context(), w, r, func(ctx context.Context, port uint16) (net.Conn, error) {
			if port != 8080 {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", "127.0.0.1:1") // refused
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", echo.Addr().String())
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// forwardOnce opens one request's error and data streams for port, sends
// msg, half-closes, and returns what came back on each.
func forwardOnce(t *testing.T, sc *spdystream.Connection, id, port int, msg string) (data, errs string) {
	t.Helper()
	h := http.Header{}
	h.Set("streamType", "error")
	h.Set("port", strconv.Itoa(port))
	h.Set("requestID", strconv.Itoa(id))
	es, err := sc.CreateStream(h, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := es.Wait(); err != nil {
		t.Fatal(err)
	}
	es.Close()
	h.Set("streamType", "data")
	ds, err := sc.CreateStream(h, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Wait(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(es)
		errc <- string(b)
	}()
	if _, err := ds.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	ds.Close()
	b, _ := io.ReadAll(ds)
	select {
	case e := <-errc:
		return string(b), e
	case <-time.After(60 * time.Second):
		t.Fatal("the error stream never ended")
	}
	return "", ""
}

func checkForwarding(t *testing.T, conn net.Conn) {
	t.Helper()
	sc, err := spdystream.NewConnection(conn, false)
	if err != nil {
		t.Fatal(err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	defer sc.Close()
	for i := 0; i < 3; i++ {
		data, errs := forwardOnce(t, sc, i, 8080, "ping"+strconv.Itoa(i))
		if data != "echo:ping"+strconv.Itoa(i) || errs != "" {
			t.Fatalf("request %d: data %q error %q", i, data, errs)
		}
	}
	data, errs := forwardOnce(t, sc, 9, 9090, "x")
	if data != "" || !strings.Contains(errs, "error forwarding port 9090") {
		t.Fatalf("refused port: data %q error %q", data, errs)
	}
}

// TestPortForwardTunnel: SPDY streams tunnelled through a WebSocket, as
// kubectl ≥ 1.30 does: several requests on one connection, and a failed
// dial reported on the request's error stream.
func TestPortForwardTunnel(t *testing.T) {
	srv := pfServer(t, echoServer(t))
	d := websocket.Dialer{Subprotocols: []string{TunnelProtocol}, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/portforward", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Subprotocol() != TunnelProtocol {
		t.Fatalf("subprotocol %q", ws.Subprotocol())
	}
	checkForwarding(t, &tunnelConn{ws: ws})
}

// TestPortForwardSPDYUpgrade: the same over a connection upgraded to
// SPDY/3.1, as older kubectl does.
func TestPortForwardSPDYUpgrade(t *testing.T) {
	srv := pfServer(t, echoServer(t))
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /portforward HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Stream-Protocol-Version") != PortForwardProtocol {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	if br.Buffered() > 0 {
		t.Fatal("bytes after the 101")
	}
	checkForwarding(t, c)
}

// TestPortForwardRefusesPlainRequests: without an upgrade, a 400 that
// says which.
func TestPortForwardRefusesPlainRequests(t *testing.T) {
	srv := pfServer(t, echoServer(t))
	resp, err := http.Post(srv.URL+"/portforward", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), TunnelProtocol) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// TestPortForwardLimit: past MaxForwards connections at once, a request
// is refused on its error stream, and served again once one ends.
func TestPortForwardLimit(t *testing.T) {
	defer func(n int) { MaxForwards = n }(MaxForwards)
	MaxForwards = 1
	srv := pfServer(t, echoServer(t))
	d := websocket.Dialer{Subprotocols: []string{TunnelProtocol}, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/portforward", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := spdystream.NewConnection(&tunnelConn{ws: ws}, false)
	if err != nil {
		t.Fatal(err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	defer sc.Close()
	// The first forward stays open: its client has not half-closed.
	h := http.Header{"Streamtype": {"error"}, "Port": {"8080"}, "Requestid": {"100"}}
	es, err := sc.CreateStream(h, nil, false)
	if err != nil || es.Wait() != nil {
		t.Fatal(err)
	}
	h.Set("Streamtype", "data")
	ds, err := sc.CreateStream(h, nil, false)
	if err != nil || ds.Wait() != nil {
		t.Fatal(err)
	}
	ds.Write([]byte("held"))
	if data, errs := forwardOnce(t, sc, 1, 8080, "x"); data != "" || !strings.Contains(errs, "the limit") {
		t.Fatalf("over the limit: data %q error %q", data, errs)
	}
	ds.Close()
	if b, _ := io.ReadAll(ds); string(b) != "echo:held" {
		t.Fatalf("held forward: %q", b)
	}
	es.Close()
	io.ReadAll(es)
	deadline := time.Now().Add(60 * time.Second)
	for id := 2; ; id++ {
		data, errs := forwardOnce(t, sc, id, 8080, "y")
		if data == "echo:y" && errs == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the held forward ended: data %q error %q", data, errs)
		}
	}
}

// TestPortForwardEndsWithClient: when the client goes away, the handler
// returns, forwards included (the pod connection is left open by the pod).
func TestPortForwardEndsWithClient(t *testing.T) {
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
			defer c.Close() // never closes on its own: the forward must
		}
	}()
	ended := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		ServePortForward(r.Context(), w, r, func(ctx context.Context, port uint16) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		})
	}))
	defer srv.Close()
	d := websocket.Dialer{Subprotocols: []string{TunnelProtocol}, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/pf", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := spdystream.NewConnection(&tunnelConn{ws: ws}, false)
	if err != nil {
		t.Fatal(err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	h := http.Header{"Streamtype": {"error"}, "Port": {"80"}, "Requestid": {"1"}}
	es, _ := sc.CreateStream(h, nil, false)
	es.Wait()
	h.Set("Streamtype", "data")
	ds, _ := sc.CreateStream(h, nil, false)
	ds.Wait()
	ws.Close()
	select {
	case <-ended:
	case <-time.After(60 * time.Second):
		t.Fatal("the port-forward handler did not end with its client")
	}
}
