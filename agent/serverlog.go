package agent

import (
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Limits of the API server's own messages in the agent's log.
const (
	serverLogBurst = 10
	serverLogEvery = 10 * time.Second
)

// serverLog carries net/http's own messages about the API server's
// connections (TLS handshakes that failed, accept errors) to the agent's
// log, at most burst of them per window; the rest are counted and the
// count goes out with the next message let through.
//
// net/http writes them through the standard logger by default, one mutex
// for the whole process, and a connection keeps its descriptor until its
// message is written. When clients give up on handshakes by the thousand
// (a starved process, a port scan), those connections queued behind the
// mutex: with a thousand hollow agents in one process, 9,692 goroutines
// waited there and the process ran out of descriptors.
type serverLog struct {
	log   *slog.Logger
	burst int
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	window  time.Time // start of the current window
	written int       // messages written in the window
	dropped int       // messages dropped since the last one written
}

func newServerLog(l *slog.Logger) *log.Logger {
	return log.New(&serverLog{log: l, burst: serverLogBurst, every: serverLogEvery, now: time.Now}, "", 0)
}

func (s *serverLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	now := s.now()
	if now.Sub(s.window) >= s.every {
		s.window, s.written = now, 0
	}
	if s.written >= s.burst {
		s.dropped++
		s.mu.Unlock()
		return len(p), nil
	}
	s.written++
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	msg := strings.TrimSpace(strings.TrimPrefix(string(p), "http: "))
	if dropped > 0 {
		s.log.Warn("api server: "+msg, "suppressed", dropped)
	} else {
		s.log.Warn("api server: " + msg)
	}
	return len(p), nil
}
