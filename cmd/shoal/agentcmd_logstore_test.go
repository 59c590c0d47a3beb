package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --raft-log-store=wal runs the agent on a raft-wal log; the data dir
// remembers it, so a later start without the flag is refused with an error
// naming the flag instead of starting a second, empty log. A bad value is
// refused naming the flag.
func TestAgentRaftLogStore(t *testing.T) {
	args := func(dir string, extra ...string) []string {
		return append([]string{"-dev", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
			"--bind", "127.0.0.1:0", "--pods=false", "--log-level", "error"}, extra...)
	}
	err := runAgent(context.Background(), args(t.TempDir(), "--raft-log-store", "rocks"), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "raft-log-store") {
		t.Fatalf("--raft-log-store rocks: %v, want an error naming the flag", err)
	}

	dir := t.TempDir()
	out := &lockedWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, args(dir, "--raft-log-store", "wal"), out, io.Discard) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "worker join token") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the wal agent printed no credentials:\n%s", out.String())
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("the wal agent stopped: %v", err)
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the wal agent did not stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", "wal", "wal-meta.db")); err != nil {
		t.Fatalf("no raft-wal log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", "raft.db")); err == nil {
		t.Fatal("a raft.db beside the wal")
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	err = runAgent(ctx2, args(dir), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--raft-log-store=wal") {
		t.Fatalf("restart without the flag: %v, want an error naming --raft-log-store=wal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft", "raft.db")); err == nil {
		t.Fatal("the refused start left a raft.db")
	}
}
