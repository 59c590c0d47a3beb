package agent

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// newConns tracks the API listener's connections that have not begun a
// request yet (http.StateNew), so that shutdown can close them at once.
// net/http's Shutdown counts such a connection as busy until it is five
// seconds old, and a client that dialed and then gave up its request (the
// agent's own Event recorder cancelled at stop, for one) leaves exactly
// that behind: the API's graceful stop then ran into its own 5 s deadline
// and the agent stopped with an error. A connection that never sent a
// request loses nothing by being closed.
//
// net/http runs the shutdown hooks in goroutines of their own while its
// accept loop may still be reporting a connection it accepted just before
// the listener closed; a connection reported after closeAll ran is closed
// on arrival (closing), or it would hold the stop for five seconds again.
type newConns struct {
	// accepted counts the connections the listener accepted (tests).
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closing  bool
}

// track is an http.Server ConnState hook.
func (n *newConns) track(c net.Conn, s http.ConnState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s == http.StateNew {
		n.accepted.Add(1)
		if n.closing {
			c.Close()
			return
		}
		if n.conns == nil {
			n.conns = map[net.Conn]struct{}{}
		}
		n.conns[c] = struct{}{}
		return
	}
	delete(n.conns, c)
}

// closeAll closes every connection still waiting for its first request,
// and every one that arrives later.
func (n *newConns) closeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closing = true
	for c := range n.conns {
		c.Close()
		delete(n.conns, c)
	}
}
