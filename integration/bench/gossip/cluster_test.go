package main

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/gossip"
)

// waitUntil polls cond every 20 ms until it holds or d has passed.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The bench's own machinery on a few members with the test timings: all
// join through the seeds, every member's figures fill in, bytes are
// counted both ways, a killed member is seen dead by all, and shutting
// everything down returns (a transport with a packet in flight once hung
// in Shutdown).
func TestClusterConvergesCountsAndSeesACrash(t *testing.T) {
	const n = 6
	c, err := newCluster(n, 2, true, func(cfg *gossip.Config) { *cfg = gossip.TestConfig() })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() {
		go func() { c.shutdown(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("shutdown did not return within 30 s")
		}
	}()
	c.joinAll(0)
	waitUntil(t, 60*time.Second, "every member to see all alive", func() bool {
		for _, m := range c.members {
			if m.sawAll.Load() == 0 {
				return false
			}
		}
		return true
	})
	waitUntil(t, 30*time.Second, "bytes counted both ways", func() bool {
		uo, ui, to, ti := total(countersOf(c))
		return uo > 0 && ui > 0 && to > 0 && ti > 0
	})
	c.kill(n - 1)
	waitUntil(t, 60*time.Second, "every member to see the killed one dead", func() bool {
		return countDead(c, n-1) == n-1
	})
}
