package gossip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf collects a node's logs so tests can assert on them and print them
// when a test fails (t.Log cannot be used: memberlist logs from its own
// goroutines, possibly after the test has ended).
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuf) contains(s string) bool { return strings.Contains(l.String(), s) }

// testNode is one Gossip with its logs.
type testNode struct {
	*Gossip
	logs *logBuf
}

// startNode starts a node on loopback with TestConfig timings; edit changes
// the config first. The node is shut down at the end of the test.
func startNode(t *testing.T, name string, edit func(*Config)) *testNode {
	t.Helper()
	n, err := tryStartNode(t, name, edit)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return n
}

func tryStartNode(t *testing.T, name string, edit func(*Config)) (*testNode, error) {
	t.Helper()
	logs := &logBuf{}
	cfg := TestConfig()
	cfg.NodeName = name
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if edit != nil {
		edit(&cfg)
	}
	g, err := New(cfg, Meta{
		APIAddr:  "127.0.0.1:8080",
		RaftAddr: "127.0.0.1:8300",
		Zone:     "z-" + name,
		Version:  "test",
	})
	if err != nil {
		return nil, err
	}
	n := &testNode{Gossip: g, logs: logs}
	t.Cleanup(func() {
		_ = g.Shutdown()
		if t.Failed() {
			t.Logf("logs of %s:\n%s", name, logs.String())
		}
	})
	return n, nil
}

// addr is the host:port others join this node at.
func (n *testNode) addr() string { return n.Local().Address() }

func (n *testNode) join(t *testing.T, seeds ...*testNode) {
	t.Helper()
	n.cfg.Join = nil
	for _, s := range seeds {
		n.cfg.Join = append(n.cfg.Join, s.addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Join(ctx); err != nil {
		t.Fatalf("%s join: %v", n.cfg.NodeName, err)
	}
}

// member returns n's entry for name.
func (n *testNode) member(name string) (Member, bool) {
	for _, m := range n.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// eventually waits until cond returns "" or the deadline passes, then fails
// with cond's last explanation. It polls: the condition is the
// synchronisation, the interval only bounds the cost of checking.
func eventually(t *testing.T, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// never checks that cond stays "" for the whole window: an assertion that
// something does not happen, not a synchronisation.
func never(t *testing.T, window time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if why := cond(); why != "" {
			t.Fatal(why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seesState reports "" when every observer has name in state.
func seesState(observers []*testNode, name string, state State) func() string {
	return func() string {
		for _, o := range observers {
			m, ok := o.member(name)
			if !ok {
				return fmt.Sprintf("%s does not know %s", o.cfg.NodeName, name)
			}
			if m.State != state {
				return fmt.Sprintf("%s sees %s", o.cfg.NodeName, m)
			}
		}
		return ""
	}
}

// converged reports "" when every node sees exactly the others alive.
func converged(nodes []*testNode) func() string {
	return func() string {
		for _, o := range nodes {
			alive := 0
			for _, m := range o.Members() {
				if m.State == Alive {
					alive++
				}
			}
			if alive != len(nodes) {
				return fmt.Sprintf("%s sees %d alive of %d: %v", o.cfg.NodeName, alive, len(nodes), o.Members())
			}
		}
		return ""
	}
}
