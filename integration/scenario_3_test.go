package integration

// Scenarios 1 (second half) and 9 of issue 12 on the shared five-host
// cluster (hosts h1-h5 in zones a, b, c, a, b; h1-h3 found the cluster,
// h4 and h5 join it).

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// Scenario 1, five hosts: three voters, in three zones, and two agents
// that follow without running Raft.
func TestScenario1FiveHostsThreeVotersInThreeZones(t *testing.T) {
	sc := sharedCluster(t, 5)
	leader := sc.leader(t, 3, 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := sc.Raft(ctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]bool{}
	for _, v := range info.VoterIDs() {
		h := sc.Host(v)
		if h == nil {
			t.Fatalf("voter %q is no host", v)
		}
		zones[h.Zone] = true
	}
	if len(info.Voters) != 3 || len(zones) != 3 {
		t.Fatalf("configuration %+v: want 3 voters in 3 zones, zones %v", info.Voters, zones)
	}
	t.Logf("5 hosts: leader %s, voters %v in zones %v", leader.Name, info.VoterIDs(), slices.Sorted(maps.Keys(zones)))
}

// Scenario 9: two voters are killed one after the other (a follower, then
// the leader); each time the leader replaces the dead voter with an alive
// agent without an operator, from a zone that has no voter left, and the
// cluster keeps accepting writes.
func TestScenario9TwoVotersLostAndReplaced(t *testing.T) {
	sc := sharedCluster(t, 5)
	leader := sc.leader(t, 3, 2*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := sc.Raft(ctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	var nonVoters, followers []*hosts.Host
	for _, h := range sc.Running() {
		switch {
		case !slices.Contains(info.VoterIDs(), h.Name):
			nonVoters = append(nonVoters, h)
		case h != leader:
			followers = append(followers, h)
		}
	}
	if len(nonVoters) != 2 || len(followers) != 2 {
		t.Fatalf("voters %v, leader %s: want two followers and two non-voters", info.VoterIDs(), leader.Name)
	}
	// Writes go on through the two non-voters all along.
	w := sc.startWriter("s9", nonVoters...)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.stopWrites()
		}
	}()
	testenv.WaitFor(t, 30*time.Second, "writes acknowledged", func() bool { return w.count() > 0 })

	for i, victim := range []*hosts.Host{followers[0], leader} {
		if err := sc.Kill(victim); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		before := w.count()
		var voters []string
		var l *hosts.Host
		ok := hosts.WaitUntil(3*time.Minute, func() bool {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if l = sc.StableLeader(rctx, 3); l == nil {
				return false
			}
			r, err := sc.Raft(rctx, l)
			if err != nil {
				return false
			}
			voters = r.VoterIDs()
			for _, v := range voters {
				if h := sc.Host(v); h == nil || !h.Running() {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Fatalf("3 minutes after killing voter %s, no three alive voters following one leader (voters %v)", victim.Name, voters)
		}
		replaced := time.Since(killed)
		// The successor comes from a zone without a voter: three zones.
		zones := map[string]bool{}
		for _, v := range voters {
			zones[sc.Host(v).Zone] = true
		}
		if len(zones) != 3 {
			t.Errorf("after %s's loss, voters %v are in zones %v, want three zones", victim.Name, voters, zones)
		}
		testenv.WaitFor(t, time.Minute, "writes acknowledged after the replacement", func() bool { return w.count() > before })
		for _, h := range sc.Running() {
			if err := sc.writeUntil(h, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		figure(t, []string{"voter-replaced-after-follower-kill", "voter-replaced-after-leader-kill"}[i], replaced, 0)
		t.Logf("voter %s killed: voters %v (leader %s) after %v, writes accepted through every running agent", victim.Name, voters, l.Name, replaced.Round(time.Millisecond))
	}
	acked := w.stopWrites()
	for _, h := range sc.Running() {
		miss, err := w.missing(h, acked, false)
		if err != nil || len(miss) > 0 {
			t.Fatalf("acknowledged writes read back through %s: %v; missing %d: %v", h.Name, err, len(miss), miss)
		}
	}
	w.mu.Lock()
	failed := maps.Clone(w.failed)
	w.mu.Unlock()
	t.Logf("%d writes acknowledged through the two agents that began as non-voters, across both losses, all read back through every running agent; failed %v", len(acked), failed)
}
