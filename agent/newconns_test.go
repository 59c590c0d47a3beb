package agent

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// A client that dialed the API and never sent a request must not hold the
// graceful stop: before newConns, Shutdown waited for such a connection
// until it was five seconds old and failed its own 2 s deadline here.
func TestShutdownClosesConnectionsWithoutRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fresh := &newConns{}
	srv := &http.Server{Handler: http.NotFoundHandler(), ConnState: fresh.track}
	srv.RegisterOnShutdown(fresh.closeAll)
	go srv.Serve(ln)
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Poll (bounded) until the server has accepted it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fresh.mu.Lock()
		n := len(fresh.conns)
		fresh.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never tracked the new connection (%d tracked)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a connection that sent no request: %v", err)
	}
}

// TestNewConnReportedAfterCloseAllIsClosed: the accept loop can report a
// connection after the shutdown hook ran (the hooks run in goroutines
// while the listener's last Accept is still being handled); that one is
// closed too, not left for net/http to count busy for five seconds.
func TestNewConnReportedAfterCloseAllIsClosed(t *testing.T) {
	fresh := &newConns{}
	fresh.closeAll()
	server, client := net.Pipe()
	defer client.Close()
	conn := &closeRecorder{Conn: server}
	fresh.track(conn, http.StateNew)
	if !conn.closed.Load() {
		t.Fatal("a connection reported after closeAll was left open")
	}
	if len(fresh.conns) != 0 {
		t.Fatalf("%d connections kept after closeAll", len(fresh.conns))
	}
}

type closeRecorder struct {
	net.Conn
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}
