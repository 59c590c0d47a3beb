package integration

// Root test of node loss with production timings on the three-host
// harness: one agent is SIGKILLed, and the test measures how long until
// its pod leaves the Service's Endpoints and until the Deployment is back
// to full strength elsewhere (issue 9, defect 13: it took 46.7-48.8 s).

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// nodeLossBound fails the test: the target is 10 s from kill to full
// strength; the bound leaves room for a machine shared with other builds,
// and stays far below the 40 s grace of before.
const nodeLossBound = 20 * time.Second

func TestClusterNodeLoss(t *testing.T) {
	c := startThreeHosts(t)
	hosts := c.hosts
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	manifest := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(clusterManifest, "IMAGE", c.image)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runShoal(c.bin, hosts[0], "apply", "-f", manifest); err != nil {
		t.Fatalf("shoal apply: %v\n%s", err, out)
	}
	testenv.WaitFor(t, 180*time.Second, "3 web pods Ready, one per host, all in the Endpoints", func() bool {
		s := webStrength(ctx, hosts[0].client, "")
		return s.ready == 3 && len(s.nodes) == 3 && s.endpointsMatch
	})
	// Three voters following one leader, so that losing one keeps a quorum.
	var leader *clusterHost
	testenv.WaitFor(t, 60*time.Second, "3 voters following one leader", func() bool {
		leader = threeVoterLeader(ctx, hosts)
		return leader != nil
	})
	var victim *clusterHost
	for _, h := range hosts {
		if h != leader {
			victim = h
			break
		}
	}

	if err := h2kill(victim); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var notReady, outOfEndpoints, full time.Duration
	ok := waitCond(90*time.Second, func() bool {
		since := time.Since(killed)
		if notReady == 0 {
			if o, err := leader.client.Get(ctx, "Node", "", victim.name); err == nil {
				if cd := api.FindCondition(o.(*api.Node).Status.Conditions, api.NodeReady); cd != nil && cd.Status != api.ConditionTrue {
					notReady = since
				}
			}
		}
		s := webStrength(ctx, leader.client, victim.name)
		if outOfEndpoints == 0 && s.endpointsRead && !slices.Contains(s.endpointNodes, victim.name) {
			outOfEndpoints = since
		}
		if s.ready == 3 && s.onVictim == 0 && s.endpointsMatch {
			full = since
			return true
		}
		return false
	})
	if !ok {
		t.Fatalf("not back to full strength 90 s after killing %s (NotReady after %v, out of the Endpoints after %v): %+v",
			victim.name, notReady, outOfEndpoints, webStrength(ctx, leader.client, victim.name))
	}
	t.Logf("node loss figure: killed agent %s (SIGKILL, production timings, grace %v): Node NotReady after %v, its pod out of the Service's Endpoints after %v, full strength (3 Ready pods on the other hosts, exactly those in the Endpoints) after %v",
		victim.name, 3*time.Second, notReady.Round(10*time.Millisecond), outOfEndpoints.Round(10*time.Millisecond), full.Round(10*time.Millisecond))
	if full > nodeLossBound {
		t.Errorf("kill to full strength took %v; target 10 s, bound %v", full, nodeLossBound)
	}
}

// strength is what the test sees of the web Deployment and its Service.
type strength struct {
	ready          int      // Running, Ready, not terminating
	placed         int      // off the victim, bound to a node, not terminating
	running        int      // of those, Running (Ready or not)
	onVictim       int      // pods of any state still bound to the victim
	nodes          []string // nodes of the ready pods
	endpointsRead  bool
	endpointNodes  []string // nodes of the Endpoints' ready addresses
	endpointsMatch bool     // the ready addresses are exactly the ready pods' IPs
}

// webStrength reads the app=web pods and the Endpoints web through c;
// victim names a node whose pods count in onVictim and not as ready.
func webStrength(ctx context.Context, c *api.Client, victim string) strength {
	var s strength
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	objs, _, err := c.List(rctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return s
	}
	var podIPs []string
	nodes := map[string]bool{}
	for _, o := range objs {
		p := o.(*api.Pod)
		if p.Spec.NodeName == victim && victim != "" {
			s.onVictim++
			continue
		}
		if p.DeletionTimestamp == nil && p.Spec.NodeName != "" {
			s.placed++
			if p.Status.Phase == api.PodRunning {
				s.running++
			}
		}
		cd := api.FindCondition(p.Status.Conditions, api.PodReady)
		if p.DeletionTimestamp != nil || p.Status.Phase != api.PodRunning || cd == nil || cd.Status != api.ConditionTrue {
			continue
		}
		s.ready++
		nodes[p.Spec.NodeName] = true
		podIPs = append(podIPs, p.Status.PodIP)
	}
	for n := range nodes {
		s.nodes = append(s.nodes, n)
	}
	o, err := c.Get(rctx, "Endpoints", "default", "web")
	if err != nil {
		return s
	}
	s.endpointsRead = true
	var epIPs []string
	for _, ss := range o.(*api.Endpoints).Subsets {
		for _, a := range ss.Addresses {
			epIPs = append(epIPs, a.IP)
			if a.NodeName != nil {
				s.endpointNodes = append(s.endpointNodes, *a.NodeName)
			}
		}
	}
	sort.Strings(podIPs)
	sort.Strings(epIPs)
	s.endpointsMatch = len(podIPs) > 0 && slices.Equal(podIPs, epIPs)
	return s
}

// threeVoterLeader is the leader when every host reports three voters and
// the same leader, else nil.
func threeVoterLeader(ctx context.Context, hosts []*clusterHost) *clusterHost {
	var leader *clusterHost
	leaders := map[string]bool{}
	for _, h := range hosts {
		raw, err := h.client.ClusterRaft(ctx)
		var st struct {
			State, LeaderID string
			Voters          []struct{ ID, Suffrage string }
		}
		if err != nil || json.Unmarshal(raw, &st) != nil || st.LeaderID == "" {
			return nil
		}
		voters := 0
		for _, v := range st.Voters {
			if v.Suffrage == "Voter" {
				voters++
			}
		}
		if voters != 3 {
			return nil
		}
		leaders[st.LeaderID] = true
		if st.State == "Leader" {
			leader = h
		}
	}
	if leader == nil || len(leaders) != 1 || !leaders[leader.name] {
		return nil
	}
	return leader
}
