package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/spdystream"

	"github.com/shoal-dev/shoal/api"
)

// Port-forward protocol names and stream headers.
const (
	PortForwardProtocol = "portforward.k8s.io"
	// TunnelProtocol is the WebSocket subprotocol that carries SPDY.
	TunnelProtocol = "SPDY/3.1+" + PortForwardProtocol

	headerStreamType = "streamType"
	headerPort       = "port"
	headerRequestID  = "requestID"
	streamTypeData   = "data"
	streamTypeError  = "error"
)

// Limits of a port-forward connection.
const (
	// PairTimeout is how long the second stream of a request (data or
	// error) may come after the first.
	PairTimeout = 30 * time.Second
	// IdleTimeout closes a port-forward connection without any frame for
	// that long (kubectl pings every 10 s on a tunnel).
	IdleTimeout = 4 * time.Hour
	// MaxPending bounds the requests whose pair is incomplete.
	MaxPending = 256
	// DialTimeout bounds the dial of the pod's port.
	DialTimeout = 10 * time.Second
)

// MaxForwards bounds the connections one port-forward forwards at once; a
// request beyond it is refused on its error stream. A variable for tests.
var MaxForwards = 1024

// PortDialer opens a connection to port of the pod.
type PortDialer func(ctx context.Context, port uint16) (net.Conn, error)

// IsPortForwardUpgrade reports whether r asks for one of the port-forward
// upgrades this package serves: a WebSocket offering TunnelProtocol, or
// SPDY/3.1 with X-Stream-Protocol-Version portforward.k8s.io.
func IsPortForwardUpgrade(r *http.Request) bool {
	if websocket.IsWebSocketUpgrade(r) {
		return slices.Contains(websocket.Subprotocols(r), TunnelProtocol)
	}
	return isSPDYUpgrade(r)
}

func isSPDYUpgrade(r *http.Request) bool {
	return slices.Contains(spdyOffered(r), PortForwardProtocol)
}

var tunnelUpgrader = websocket.Upgrader{
	Subprotocols:    []string{TunnelProtocol},
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
}

// ServePortForward upgrades r (see IsPortForwardUpgrade) and forwards each
// requested connection to dial(port) until the client goes away or ctx
// ends. It answers the request itself on every path.
func ServePortForward(ctx context.Context, w http.ResponseWriter, r *http.Request, dial PortDialer) {
	var conn net.Conn
	switch {
	case websocket.IsWebSocketUpgrade(r):
		if !slices.Contains(websocket.Subprotocols(r), TunnelProtocol) {
			writeStatus(w, api.NewBadRequest("port-forward over WebSocket needs the subprotocol %s", TunnelProtocol).Status())
			return
		}
		ws, err := tunnelUpgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conn = &tunnelConn{ws: ws}
	case isSPDYUpgrade(r):
		c, err := upgradeSPDY(w, r, PortForwardProtocol)
		if err != nil {
			return
		}
		conn = c
	default:
		writeStatus(w, api.NewBadRequest("port-forward needs an upgrade: WebSocket with subprotocol %s, or %s with X-Stream-Protocol-Version %s",
			TunnelProtocol, spdyUpgrade, PortForwardProtocol).Status())
		return
	}
	servePortForwardConn(ctx, conn, dial)
}

// servePortForwardConn runs the SPDY side of a port-forward on conn.
func servePortForwardConn(ctx context.Context, conn net.Conn, dial PortDialer) {
	sc, err := spdystream.NewConnection(conn, true)
	if err != nil {
		conn.Close()
		return
	}
	sc.SetIdleTimeout(IdleTimeout)
	h := &pfHandler{ctx: ctx, dial: dial, pairs: map[string]*pfPair{}, gone: make(chan struct{})}
	go sc.Serve(h.newStream)
	select {
	case <-sc.CloseChan():
	case <-ctx.Done():
	}
	h.mu.Lock()
	h.closed = true // no forward starts after this: wg.Add never races Wait
	h.mu.Unlock()
	close(h.gone)
	sc.Close()
	conn.Close()
	h.wg.Wait()
}

type pfHandler struct {
	ctx  context.Context
	dial PortDialer
	wg   sync.WaitGroup
	// gone is closed when the connection has ended: every forward stops.
	gone chan struct{}

	mu     sync.Mutex
	pairs  map[string]*pfPair
	active int  // forwards running
	closed bool // the connection ended: no new forward
}

type pfPair struct {
	data, errs *spdystream.Stream
	port       uint16
	timer      *time.Timer
}

// newStream takes one stream the client opened: it checks its headers,
// accepts it, and starts forwarding once both streams of its request are
// there.
func (h *pfHandler) newStream(st *spdystream.Stream) {
	hdr := st.Headers()
	port, err := strconv.ParseUint(hdr.Get(headerPort), 10, 16)
	typ := hdr.Get(headerStreamType)
	id := hdr.Get(headerRequestID)
	switch {
	case err != nil || port == 0:
		_ = st.Refuse()
		return
	case typ != streamTypeData && typ != streamTypeError:
		_ = st.Refuse()
		return
	case id == "":
		// Clients before request IDs: the error stream comes first, its
		// data stream two IDs later.
		n := st.Identifier()
		if typ == streamTypeData {
			n -= 2
		}
		id = strconv.FormatUint(uint64(n), 10)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = st.Refuse()
		return
	}
	p := h.pairs[id]
	if p == nil {
		if len(h.pairs) >= MaxPending {
			h.mu.Unlock()
			_ = st.Refuse()
			return
		}
		p = &pfPair{port: uint16(port)}
		h.pairs[id] = p
		p.timer = time.AfterFunc(PairTimeout, func() { h.expire(id, p) })
	}
	dup := (typ == streamTypeData && p.data != nil) || (typ == streamTypeError && p.errs != nil)
	if dup || p.port != uint16(port) {
		h.mu.Unlock()
		_ = st.Refuse()
		return
	}
	if typ == streamTypeData {
		p.data = st
	} else {
		p.errs = st
	}
	complete := p.data != nil && p.errs != nil
	full := false
	if complete {
		delete(h.pairs, id)
		p.timer.Stop()
		full = h.active >= MaxForwards
		if !full {
			h.active++
			h.wg.Add(1)
		}
	}
	h.mu.Unlock()
	_ = st.SendReply(http.Header{}, false)
	switch {
	case complete && full:
		_, _ = fmt.Fprintf(p.errs, "error forwarding port %d: %d connections are forwarded already (the limit)", p.port, MaxForwards)
		_ = p.errs.Close()
		_ = p.data.Close()
	case complete:
		go func() {
			defer h.wg.Done()
			defer func() {
				h.mu.Lock()
				h.active--
				h.mu.Unlock()
			}()
			h.forward(p)
		}()
	}
}

// expire drops a request whose second stream never came.
func (h *pfHandler) expire(id string, p *pfPair) {
	h.mu.Lock()
	if h.pairs[id] != p {
		h.mu.Unlock()
		return
	}
	delete(h.pairs, id)
	h.mu.Unlock()
	for _, st := range []*spdystream.Stream{p.data, p.errs} {
		if st != nil {
			_ = st.Reset()
		}
	}
}

// forward copies between the data stream and a connection to the pod's
// port; a failure to dial goes to the error stream, as text.
func (h *pfHandler) forward(p *pfPair) {
	defer p.errs.Close()
	ctx, cancel := context.WithTimeout(h.ctx, DialTimeout)
	c, err := h.dial(ctx, p.port)
	cancel()
	if err != nil {
		_, _ = fmt.Fprintf(p.errs, "error forwarding port %d: %v", p.port, err)
		_ = p.data.Close()
		return
	}
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-h.gone:
			c.Close()
		case <-stop:
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, p.data)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	_, err = io.Copy(p.data, c)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		_, _ = fmt.Fprintf(p.errs, "error forwarding port %d: %v", p.port, err)
	}
	_ = p.data.Close()
	select {
	case <-done:
	case <-h.gone:
	}
}

// tunnelConn is a WebSocket carrying a byte stream in binary messages, as
// a net.Conn (the SPDY connection runs on it).
type tunnelConn struct {
	ws  *websocket.Conn
	cur io.Reader
	wmu sync.Mutex
}

func (t *tunnelConn) Read(p []byte) (int, error) {
	for {
		if t.cur == nil {
			typ, r, err := t.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("port-forward tunnel: a text message")
			}
			t.cur = r
		}
		n, err := t.cur.Read(p)
		if err == io.EOF {
			t.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (t *tunnelConn) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_ = t.ws.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if err := t.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *tunnelConn) Close() error {
	_ = t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return t.ws.Close()
}

func (t *tunnelConn) LocalAddr() net.Addr  { return t.ws.LocalAddr() }
func (t *tunnelConn) RemoteAddr() net.Addr { return t.ws.RemoteAddr() }
func (t *tunnelConn) SetDeadline(d time.Time) error {
	return errors.Join(t.ws.SetReadDeadline(d), t.ws.SetWriteDeadline(d))
}
func (t *tunnelConn) SetReadDeadline(d time.Time) error  { return t.ws.SetReadDeadline(d) }
func (t *tunnelConn) SetWriteDeadline(d time.Time) error { return t.ws.SetWriteDeadline(d) }
