package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent"
)

// agentConfigOf parses args as `shoal agent` flags and returns the
// configuration they make.
func agentConfigOf(t *testing.T, args ...string) (agent.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f agentFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.config(io.Discard)
}

func TestAgentFlagsNodeLossGrace(t *testing.T) {
	parse := func(args ...string) (time.Duration, time.Duration, error) {
		t.Helper()
		cfg, err := agentConfigOf(t, args...)
		return cfg.ClusterNet.NodeLossGrace, cfg.ClusterNet.NodeUnknownGrace, err
	}
	dead, unknown, err := parse()
	if err != nil || dead != 3*time.Second || unknown != 40*time.Second {
		t.Errorf("defaults: %v %v %v", dead, unknown, err)
	}
	dead, unknown, err = parse("--node-loss-grace", "1500ms", "--node-unknown-grace", "2m")
	if err != nil || dead != 1500*time.Millisecond || unknown != 2*time.Minute {
		t.Errorf("set: %v %v %v", dead, unknown, err)
	}
	for _, bad := range [][]string{{"--node-loss-grace", "0s"}, {"--node-unknown-grace", "-1s"}} {
		if _, _, err := parse(bad...); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("%v: %v, want an error naming the flag", bad, err)
		}
	}
}

// lockedWriter is an io.Writer a test reads while an agent writes.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `shoal agent -dev` is secure: it prints the admin token (the one stored
// in DATA_DIR/admin.token, 0600), the join tokens and the CA fingerprint.
func TestAgentDevPrintsCredentials(t *testing.T) {
	dir := t.TempDir()
	out := &lockedWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runAgent(ctx, []string{"-dev", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
			"--bind", "127.0.0.1:0", "--pods=false", "--log-level", "error"}, out, io.Discard)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop")
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "worker join token") {
		if time.Now().After(deadline) {
			t.Fatalf("no credentials printed:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("the agent stopped: %v", err)
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "admin.token")); fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode %v", fi.Mode().Perm())
	}
	printed := out.String()
	for _, want := range []string{strings.TrimSpace(string(tok)), filepath.Join(dir, "admin.token"), "CA fingerprint", "voter join token:  SHOAL-1-"} {
		if !strings.Contains(printed, want) {
			t.Errorf("the output lacks %q:\n%s", want, printed)
		}
	}
}

// --insecure is refused off loopback.
func TestAgentInsecureOffLoopbackRefused(t *testing.T) {
	err := runAgent(context.Background(), []string{"--insecure", "--data-dir", t.TempDir(), "--http-addr", "0.0.0.0:0",
		"--raft-addr", "127.0.0.1:0", "--bind", "127.0.0.1:0", "--pods=false"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "insecure") || !strings.Contains(err.Error(), "http-addr") {
		t.Fatalf("--insecure on 0.0.0.0: %v", err)
	}
}
