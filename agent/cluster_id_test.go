package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/gossip"
)

// TestLateHostsWaitForTheirJoinMember (issue 9, defect 10): three hosts
// added later with the default --bootstrap-expect 3 and --join of a member
// they cannot reach yet see each other, but do not form a second cluster;
// once the member answers, they join its cluster.
func TestLateHostsWaitForTheirJoinMember(t *testing.T) {
	h := newHarness(t, fastTimings)
	seed := h.config("c0", "z0")
	seed.BootstrapExpect, seed.Join = 1, nil
	var late []Config
	for i := 1; i <= 3; i++ {
		late = append(late, h.config(fmt.Sprintf("late%d", i), fmt.Sprintf("z%d", i%3)))
	}
	for i := range late {
		late[i].BootstrapExpect = 3
		late[i].Join = []string{seed.GossipAddr}
		for j := range late {
			if j != i {
				late[i].Join = append(late[i].Join, late[j].GossipAddr)
			}
		}
	}
	tas := h.start(late...)
	waitUntil(t, 20*time.Second, "the late hosts see each other and wait for their --join member", func() string {
		for _, ta := range tas {
			// First a bootstrap decision: gossip runs once one is logged.
			if !strings.Contains(ta.logs.String(), "bootstrap: waiting") {
				return ta.cfg.NodeName + " has not decided yet"
			}
			n := 0
			for _, m := range ta.Gossip().Members() {
				if m.State == gossip.Alive {
					n++
				}
			}
			if n != 3 {
				return fmt.Sprintf("%s sees %d alive", ta.cfg.NodeName, n)
			}
		}
		// late1, the lowest, would bootstrap.
		if !strings.Contains(tas[0].logs.String(), "no agent has answered yet at --join "+seed.GossipAddr) {
			return "late1 has not said that it waits for its --join member"
		}
		return ""
	})
	for _, ta := range tas {
		if ta.ClusterID() != "" || ta.Node() != nil {
			t.Fatalf("%s formed or joined a cluster (%q) without its --join member", ta.cfg.NodeName, ta.ClusterID())
		}
	}
	// The member they were told to join comes up with its cluster.
	all := append(h.start(seed), tas...)
	waitUntil(t, 30*time.Second, "one cluster, 3 voters", func() string { return settled(all, 3) })
	if cid := all[0].ClusterID(); all[1].ClusterID() != cid {
		t.Fatalf("cluster ids %q and %q", cid, all[1].ClusterID())
	}
}

// TestAgentRefusesAnotherCluster (issue 9, defect 10): an agent whose data
// dir records one cluster, pointed with --join at a member of another,
// stops with an error that says so, instead of joining it (and rewriting
// its cluster id); the other cluster never counts it as a member.
func TestAgentRefusesAnotherCluster(t *testing.T) {
	h := newHarness(t, fastTimings)
	a := h.config("a0", "z0")
	a.BootstrapExpect, a.Join = 1, nil
	tas := h.start(a)
	waitUntil(t, 15*time.Second, "a0 leads", func() string { return settled(tas, 1) })

	x := h.config("x0", "z1")
	x.Join = []string{a.GossipAddr}
	if err := writeClusterID(x.DataDir, "0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	tx := h.start(x)[0]
	err := h.wait(tx)
	if !errors.Is(err, errForeignCluster) || !strings.Contains(err.Error(), "0123456789abcdef") {
		t.Fatalf("Run of an agent of another cluster returned %v, want a refusal naming its cluster", err)
	}
	tx.killed = true
	if got, _ := readClusterID(x.DataDir); got != "0123456789abcdef" {
		t.Errorf("its data dir's cluster id is now %q", got)
	}
	for _, m := range tas[0].Gossip().Members() {
		if m.Name == "x0" && m.State == gossip.Alive {
			t.Errorf("a0 counts x0 as an alive member")
		}
	}
}

func TestClusterIDEpochs(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc.2", "abc.2": "abc.3", "abc.9": "abc.10"} {
		if got := nextEpoch(in); got != want {
			t.Errorf("nextEpoch(%q) = %q, want %q", in, got, want)
		}
	}
	if got := nextEpoch(""); !strings.HasSuffix(got, ".2") || len(got) < 4 {
		t.Errorf("nextEpoch(\"\") = %q, want a new lineage at epoch 2", got)
	}
	if l, e := parseClusterID("abc.x"); l != "abc.x" || e != 1 {
		t.Errorf("parseClusterID(abc.x) = %q %d", l, e)
	}
}

// An agent of a cluster that holds no Raft state (a non-voter) refuses
// --bootstrap: it would form a second cluster under the same id.
func TestBootstrapRefusedWithAClusterID(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := h.config("nv0", "z0")
	cfg.Bootstrap = true
	if err := writeClusterID(cfg.DataDir, "0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg)
	if err == nil {
		a.Shutdown()
		t.Fatal("New with --bootstrap over another cluster's data dir succeeded")
	}
	if !strings.Contains(err.Error(), "0123456789abcdef") || !strings.Contains(err.Error(), "--bootstrap") {
		t.Fatalf("error does not name the flag and the cluster: %v", err)
	}
}
