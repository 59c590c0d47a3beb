package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// logWatch is the slog handler of every member: it prints nothing and
// counts what matters to the figures in memberlist's log lines (which
// consensus/gossip passes on with "memberlist: " cut off).
type logWatch struct {
	suspicions atomic.Int64 // "Suspect X has failed": a member's probe of X failed
	timeouts   atomic.Int64 // "Marking X as failed, suspect timeout reached"
	warnings   atomic.Int64
	errors     atomic.Int64

	mu           sync.Mutex
	victim       string    // the member killed on purpose
	firstSuspect time.Time // first suspicion of the victim
	victimSusp   int       // suspicions of the victim
	victimTO     int       // members whose own suspicion timer declared the victim dead
	lastErr      string
}

func (w *logWatch) setVictim(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.victim, w.firstSuspect, w.victimSusp, w.victimTO = name, time.Time{}, 0, 0
}

// victimFigures returns the first suspicion of the victim (zero: none yet),
// how many probes of it failed and how many timers declared it dead.
func (w *logWatch) victimFigures() (time.Time, int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstSuspect, w.victimSusp, w.victimTO
}

func (w *logWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *logWatch) WithGroup(string) slog.Handler                { return w }

func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	switch {
	case r.Level >= slog.LevelError:
		w.errors.Add(1)
		w.mu.Lock()
		w.lastErr = msg
		w.mu.Unlock()
	case r.Level >= slog.LevelWarn:
		w.warnings.Add(1)
	}
	if rest, ok := strings.CutPrefix(msg, "Suspect "); ok {
		if name, _, ok := strings.Cut(rest, " has failed"); ok {
			w.suspicions.Add(1)
			w.mu.Lock()
			if name == w.victim {
				if w.victimSusp == 0 {
					w.firstSuspect = r.Time
				}
				w.victimSusp++
			}
			w.mu.Unlock()
		}
	}
	if rest, ok := strings.CutPrefix(msg, "Marking "); ok {
		if name, _, ok := strings.Cut(rest, " as failed, suspect timeout"); ok {
			w.timeouts.Add(1)
			w.mu.Lock()
			if name == w.victim {
				w.victimTO++
			}
			w.mu.Unlock()
		}
	}
	return nil
}

func (w *logWatch) lastError() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Write takes the transports' own log lines (memberlist's log.Logger
// format) and counts their warnings and errors.
func (w *logWatch) Write(p []byte) (int, error) {
	line := string(p)
	switch {
	case strings.Contains(line, "[ERR]"):
		w.errors.Add(1)
		w.mu.Lock()
		w.lastErr = strings.TrimSpace(line)
		w.mu.Unlock()
	case strings.Contains(line, "[WARN]"):
		w.warnings.Add(1)
	}
	return len(p), nil
}
