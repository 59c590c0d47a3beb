package streams

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/spdystream"
)

// BenchmarkPortForwardTunnel: bytes from a pod's port to the client
// through the WebSocket-tunnelled SPDY stream, on loopback (b.N bytes in
// 32 KiB writes; see MB/s).
//
//	go test -run - -bench PortForwardTunnel -benchtime 268435456x ./agent/streams  (b.N: bytes)
func BenchmarkPortForwardTunnel(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	total := int64(b.N)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 32<<10)
		for left := total; left > 0; left -= int64(len(buf)) {
			n := min(int64(len(buf)), left)
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ServePortForward(r.Context(), w, r, func(ctx context.Context, port uint16) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		})
	}))
	defer srv.Close()
	d := websocket.Dialer{Subprotocols: []string{TunnelProtocol}, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/pf", nil)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := spdystream.NewConnection(&tunnelConn{ws: ws}, false)
	if err != nil {
		b.Fatal(err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	defer sc.Close()
	h := http.Header{"Streamtype": {"error"}, "Port": {"80"}, "Requestid": {"1"}}
	es, _ := sc.CreateStream(h, nil, false)
	es.Wait()
	h.Set("Streamtype", "data")
	ds, _ := sc.CreateStream(h, nil, false)
	ds.Wait()
	b.SetBytes(1)
	b.ResetTimer()
	n, err := io.Copy(io.Discard, ds)
	b.StopTimer()
	if n != total {
		b.Fatalf("got %d bytes, want %d: %v", n, total, err)
	}
}
