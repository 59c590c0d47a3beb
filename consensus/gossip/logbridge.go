package gossip

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"strings"
)

// logBridge receives memberlist's log lines ("[WARN] memberlist: ...") and
// passes them to slog at the level memberlist gave them.
type logBridge struct {
	log *slog.Logger
}

func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logBridge{log: l.With("component", "memberlist")}, "", 0)
}

func (b logBridge) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelWarn // untagged lines are rare and about failures
	for _, t := range []struct {
		tag   string
		level slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn},
		{"[ERR]", slog.LevelError},
		{"[ERROR]", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(line, t.tag); ok {
			level, line = t.level, strings.TrimSpace(rest)
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if looksLikeKeyMismatch(errors.New(line)) {
		line += " (a node with a different --gossip-key?)"
	}
	b.log.Log(context.Background(), level, line)
	return len(p), nil
}
