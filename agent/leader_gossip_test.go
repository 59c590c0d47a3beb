package agent

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestNonvotersLearnTheLeaderFromGossip: the leader advertises its term in
// gossip and only it does; non-voters take the leader from there, and
// follow a leadership transfer (which changes no gossip membership, so
// nothing else would make them ask the voters before their next round)
// from gossip alone.
func TestNonvotersLearnTheLeaderFromGossip(t *testing.T) {
	_, tas := fiveAgents(t, fastTimings)
	nvs := nonvoters(tas)
	if len(nvs) == 0 {
		t.Fatal("no non-voter among five agents")
	}
	// advertised checks that l leads and that every agent's gossip names
	// it, at its term, from its metadata alone.
	advertised := func(l *testAgent) string {
		n := l.Node()
		if n == nil || !n.IsLeader() {
			return l.cfg.NodeName + " no longer leads"
		}
		term := n.Term()
		for _, ta := range alive(tas) {
			if m := ta.gossip.Local(); ta != l && m.Meta.LeaderTerm != 0 {
				return fmt.Sprintf("%s, not the leader, advertises leader term %d", ta.cfg.NodeName, m.Meta.LeaderTerm)
			}
			if id, gt := ta.gossipLeader(); id != l.cfg.NodeName || gt != term {
				return fmt.Sprintf("%s's gossip names %q at term %d, want %s at %d", ta.cfg.NodeName, id, gt, l.cfg.NodeName, term)
			}
		}
		for _, nv := range nvs {
			if id := nv.leaderID(); id != l.cfg.NodeName {
				return fmt.Sprintf("non-voter %s takes %q for the leader, want %s", nv.cfg.NodeName, id, l.cfg.NodeName)
			}
		}
		return ""
	}
	var first *testAgent
	waitUntil(t, 30*time.Second, "the leader advertised in gossip", func() string {
		if first = leaderOf(tas); first == nil {
			return "no leader"
		}
		return advertised(first)
	})

	// While gossip names the leader, a non-voter still confirms with the
	// voters, but every leaderConfirmRounds rounds (1 s with these
	// timings, against every 50 ms round before): at most three requests
	// (one per voter) per confirmation.
	nv := nvs[0]
	confirmEvery := leaderConfirmRounds * nv.cfg.Interval / 2
	start, asks0 := time.Now(), nv.LeaderAsks()
	waitUntil(t, 15*confirmEvery, "confirmations with the voters", func() string {
		if n := nv.LeaderAsks() - asks0; n < 3 {
			return fmt.Sprintf("%d asks so far", n)
		}
		return ""
	})
	asks, took := nv.LeaderAsks()-asks0, time.Since(start)
	if most := 3 * (uint64(took/confirmEvery) + 2); asks > most {
		t.Errorf("%s asked the voters %d times in %v, more than %d (one confirmation every %v)", nv.cfg.NodeName, asks, took, most, confirmEvery)
	}
	t.Logf("%s asked the voters %d times in %v", nv.cfg.NodeName, asks, took.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitUntil(t, 30*time.Second, "leadership transferred", func() string {
		if l := leaderOf(tas); l != nil && l != first {
			return ""
		}
		if n := first.Node(); n != nil && n.IsLeader() {
			if err := n.LeadershipTransfer(ctx); err != nil {
				return "transfer: " + err.Error()
			}
		}
		return "the old leader still leads"
	})
	waitUntil(t, 30*time.Second, "the new leader advertised in gossip", func() string {
		l := leaderOf(tas)
		if l == nil {
			return "no leader"
		}
		if l == first {
			return "leadership came back to " + first.cfg.NodeName
		}
		return advertised(l)
	})
}
