package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// The API server's messages reach the agent's log at most burst per
// window; the ones dropped are counted on the next message written, and a
// storm of them neither blocks nor grows the log.
func TestServerLogLimitsAndCounts(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &serverLog{log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil)), burst: 3, every: 10 * time.Second,
		now: func() time.Time { return now }}
	lines := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Split(strings.TrimSpace(buf.String()), "\n")
	}
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := "http: TLS handshake error from 127.0.0.1:1: EOF\n"
			if n, err := s.Write([]byte(msg)); n != len(msg) || err != nil {
				t.Errorf("write %d: %d, %v", i, n, err)
			}
		}()
	}
	wg.Wait()
	if got := lines(); len(got) != 3 {
		t.Fatalf("1000 messages in one window wrote %d lines, want 3:\n%s", len(got), strings.Join(got, "\n"))
	}
	if got := lines()[0]; !strings.Contains(got, `msg="api server: TLS handshake error from 127.0.0.1:1: EOF"`) || !strings.Contains(got, "level=WARN") {
		t.Fatalf("line: %s", got)
	}
	now = now.Add(10 * time.Second)
	s.Write([]byte("http: Accept error: too many open files\n"))
	got := lines()
	if len(got) != 4 || !strings.Contains(got[3], "Accept error: too many open files") || !strings.Contains(got[3], "suppressed=997") {
		t.Fatalf("the next window's first message must carry the count of the dropped ones:\n%s", strings.Join(got, "\n"))
	}
	s.Write([]byte("http: again\n"))
	if got := lines(); len(got) != 5 || strings.Contains(got[4], "suppressed") {
		t.Fatalf("the count is reported once:\n%s", strings.Join(got, "\n"))
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
