package integration

// Scenarios 6, 5, 4 (second variant) and 8 of issue 12 on the shared
// three-host cluster, in that order: each but the host killed for good
// (scenario 4's second variant) leaves the cluster whole; scenario 8 adds
// a host, which also makes the cluster three running hosts again.

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// Scenario 6: the leader (a voter) is cut off at the switch for 20 s while
// every agent, the cut one included, keeps writing. No split brain (never
// two leaders of one term; the cut agent acknowledges no write it began
// and ended while cut), no acknowledged write lost (every one read back
// through every agent after healing), and the cut agent catches up (its
// own replica holds them all).
func TestScenario6VoterCutOffNoSplitBrain(t *testing.T) {
	sc := sharedCluster(t, 3)
	victim := sc.leader(t, 3, 2*time.Minute)
	others := sc.others(victim)
	t.Cleanup(func() {
		if err := sc.Heal(victim); err != nil {
			t.Error(err)
		}
	})

	// Every 200 ms, who says it leads in which term.
	leadersOf := map[uint64]map[string]bool{}
	var monMu sync.Mutex
	stopMon := make(chan struct{})
	var monWG sync.WaitGroup
	monWG.Go(func() {
		for {
			for _, h := range sc.Running() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				r, err := sc.Raft(ctx, h)
				cancel()
				if err == nil && r.State == "Leader" {
					monMu.Lock()
					if leadersOf[r.Term] == nil {
						leadersOf[r.Term] = map[string]bool{}
					}
					leadersOf[r.Term][h.Name] = true
					monMu.Unlock()
				}
			}
			select {
			case <-stopMon:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	defer func() {
		select {
		case <-stopMon:
		default:
			close(stopMon)
		}
		monWG.Wait()
	}()

	w := sc.startWriter("s6", sc.Running()...)
	testenv.WaitFor(t, 30*time.Second, "writes acknowledged before the cut", func() bool { return w.count() >= 3 })
	if err := sc.Cut(victim); err != nil {
		w.stopWrites()
		t.Fatal(err)
	}
	cutAt := time.Now()
	var newLeader *hosts.Host
	var afterCut int
	ok := hosts.WaitUntil(15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, h := range others {
			if r, err := sc.Raft(ctx, h); err == nil && r.State == "Leader" {
				newLeader = h
			}
		}
		w.mu.Lock()
		afterCut = 0
		for _, a := range w.acked {
			if a.start.After(cutAt) && a.host != victim.Name {
				afterCut++
			}
		}
		w.mu.Unlock()
		return newLeader != nil && afterCut > 0
	})
	electedIn := time.Since(cutAt)
	if !ok {
		w.stopWrites()
		t.Fatalf("15 s after cutting %s: new leader %v, %d writes acknowledged through the others", victim.Name, newLeader, afterCut)
	}
	// Hold the cut for 20 s in all, writes going on.
	<-time.After(time.Until(cutAt.Add(20 * time.Second)))
	if err := sc.Heal(victim); err != nil {
		w.stopWrites()
		t.Fatal(err)
	}
	healAt := time.Now()
	sc.leader(t, 3, time.Minute)
	testenv.WaitFor(t, time.Minute, "a write through "+victim.Name+" acknowledged after the heal", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, a := range w.acked {
			if a.host == victim.Name && a.start.After(healAt) {
				return true
			}
		}
		return false
	})
	acked := w.stopWrites()
	defer w.cleanup(t, acked)
	close(stopMon)
	monWG.Wait()

	// Caught up: the healed agent's own replica holds every write.
	var miss []string
	testenv.WaitFor(t, time.Minute, victim.Name+"'s replica holding every acknowledged write", func() bool {
		var err error
		miss, err = w.missing(victim, acked, true)
		return err == nil && len(miss) == 0
	})
	caughtUp := time.Since(healAt)
	for _, h := range sc.Running() {
		miss, err := w.missing(h, acked, false)
		if err != nil || len(miss) > 0 {
			t.Fatalf("acknowledged writes read back through %s: %v; missing %d: %v", h.Name, err, len(miss), miss)
		}
	}
	var duringCut int
	for _, a := range acked {
		if a.host == victim.Name && a.start.After(cutAt) && a.end.Before(healAt) {
			t.Errorf("split brain: the cut agent %s acknowledged %s (begun %v after the cut, ended before the heal)", victim.Name, a.key, a.start.Sub(cutAt))
		}
		if a.start.After(cutAt) && a.end.Before(healAt) {
			duringCut++
		}
	}
	monMu.Lock()
	for term, ls := range leadersOf {
		if len(ls) > 1 {
			t.Errorf("split brain: term %d had leaders %v", term, slices.Sorted(maps.Keys(ls)))
		}
	}
	terms := len(leadersOf)
	monMu.Unlock()
	w.mu.Lock()
	failed := maps.Clone(w.failed)
	w.mu.Unlock()
	t.Logf("cut leader %s for %v: %s leads after %v; %d writes acknowledged in all, %d begun and ended during the cut (all through the others), failed per agent %v; %s caught up %v after the heal; %d terms seen, one leader each",
		victim.Name, healAt.Sub(cutAt).Round(time.Millisecond), newLeader.Name, electedIn.Round(time.Millisecond), len(acked), duringCut, failed, victim.Name, caughtUp.Round(time.Millisecond), terms)
}

// Scenario 5: the leader's agent is SIGKILLed. Another agent leads, every
// surviving agent's API accepts writes (the figure: kill to the last of
// them accepting one, target 2 s), and the app answers through the
// Service from every surviving host without a failed request.
func TestScenario5LeaderLossFigure(t *testing.T) {
	sc := sharedCluster(t, 3)
	sc.ensureWeb(t)
	leader := sc.leader(t, 3, 2*time.Minute)
	survivors := sc.others(leader)
	vip := sc.serviceIP(t)
	t.Cleanup(func() {
		if !leader.Running() {
			if err := sc.StartAgent(leader); err != nil {
				t.Error(err)
			}
		}
	})

	var total, failures atomic.Int64
	var firstErr atomic.Value
	stopLoad := make(chan struct{})
	var loadWG sync.WaitGroup
	for _, h := range survivors {
		loadWG.Go(func() {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := sc.Get(ctx, h, "http://"+net.JoinHostPort(vip, "80")+"/hostname")
				cancel()
				total.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, h.Name+": "+err.Error())
				}
				select {
				case <-stopLoad:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	stopLoadOnce := sync.OnceFunc(func() { close(stopLoad); loadWG.Wait() })
	defer stopLoadOnce()

	if err := sc.Kill(leader); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	writable := map[string]time.Duration{}
	var wmu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range survivors {
		wg.Go(func() {
			c := sc.Client(h)
			for i := 0; time.Since(killed) < 60*time.Second; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := c.Create(ctx, &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("s5-%s-%d-%d", h.Name, killed.UnixNano(), i), Namespace: "default"}})
				cancel()
				if err == nil {
					wmu.Lock()
					writable[h.Name] = time.Since(killed)
					wmu.Unlock()
					return
				}
				<-time.After(20 * time.Millisecond) // pace the retries
			}
		})
	}
	wg.Wait()
	if len(writable) != len(survivors) {
		t.Fatalf("60 s after killing the leader %s, writes accepted only through %v", leader.Name, writable)
	}
	toWritable := slices.Max(slices.Collect(maps.Values(writable)))
	figure(t, "leader-loss-to-writable", toWritable, 2*time.Second)
	newLeader := sc.followedLeader(t, time.Minute)
	// The app keeps answering until the killed host's pods are replaced.
	s := sc.waitWeb(t, leader.Name, 2*time.Minute)
	stopLoadOnce()
	t.Logf("leader %s killed: %s leads; writes accepted through %v after %v; web back to full strength on %v; %d requests through the Service from the survivors, %d failed",
		leader.Name, newLeader.Name, maps.Collect(func(yield func(string, time.Duration) bool) {
			for k, v := range writable {
				if !yield(k, v.Round(time.Millisecond)) {
					return
				}
			}
		}), toWritable.Round(time.Millisecond), s.nodes, total.Load(), failures.Load())
	if failures.Load() > 0 || total.Load() < 20 {
		t.Errorf("%d of %d requests through the Service failed after the leader was killed (first: %v)", failures.Load(), total.Load(), firstErr.Load())
	}
	// A bound for a machine shared with other builds; the target is 2 s.
	if toWritable > 10*time.Second {
		t.Errorf("kill of the leader to writable through every survivor took %v; target 2 s, bound 10 s", toWritable)
	}
	// The killed agent comes back and the cluster is whole again.
	if err := sc.StartAgent(leader); err != nil {
		t.Fatal(err)
	}
	if err := sc.WaitFormed(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	sc.waitWeb(t, "", 2*time.Minute)
}

// Scenario 4, second variant: a whole host other than the leader's dies
// (agent, containerd and its containers). The host stays dead.
func TestScenario4HostLossFigure(t *testing.T) {
	sc := sharedCluster(t, 3)
	sc.ensureWeb(t)
	leader := sc.leader(t, 3, 2*time.Minute)
	victim := sc.busiestFollower(t, leader)
	full := nodeLoss(t, sc, leader, victim, sc.KillHost, "node-loss-host-to-full-strength")
	t.Logf("host %s killed: full strength after %v", victim.Name, full.Round(time.Millisecond))
}

// scenarioNodeLossBound fails scenario 4: three times the 10 s target.
const scenarioNodeLossBound = 30 * time.Second

// busiestFollower is the running host other than leader with the most
// web pods (earlier scenarios may have left a host without any: pods are
// not moved back to a host that returns).
func (sc *scCluster) busiestFollower(t *testing.T, leader *hosts.Host) *hosts.Host {
	t.Helper()
	count := map[string]int{}
	for _, p := range sc.webPods(t, leader) {
		count[p.Spec.NodeName]++
	}
	var best *hosts.Host
	for _, h := range sc.others(leader) {
		if best == nil || count[h.Name] > count[best.Name] {
			best = h
		}
	}
	return best
}

// nodeLoss kills victim with kill, measures the time to full strength on
// the others, prints it as figure name, and checks that the Service then
// answers from every surviving host through live replicas only.
func nodeLoss(t *testing.T, sc *scCluster, leader, victim *hosts.Host, kill func(*hosts.Host) error, name string) time.Duration {
	t.Helper()
	victimPods := map[string]bool{}
	for _, p := range sc.webPods(t, leader) {
		if p.Spec.NodeName == victim.Name {
			victimPods[p.Name] = true
		}
	}
	if len(victimPods) == 0 {
		t.Fatalf("no web pod on %s", victim.Name)
	}
	c := sc.Client(leader)
	if err := kill(victim); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The stages, each the first time the test saw it: the Node NotReady,
	// the victim's pods out of the Endpoints, off the victim (deleted from
	// the store), the replacements bound to other nodes, Running, and
	// then Ready and in the Endpoints (full strength).
	var notReady, outOfEndpoints, evicted, bound, started, full time.Duration
	ok := hosts.WaitUntil(90*time.Second, func() bool {
		since := time.Since(killed)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if notReady == 0 {
			if o, err := c.Get(ctx, "Node", "", victim.Name); err == nil {
				if cd := api.FindCondition(o.(*api.Node).Status.Conditions, api.NodeReady); cd != nil && cd.Status != api.ConditionTrue {
					notReady = since
				}
			}
		}
		s := webStrength(ctx, c, victim.Name)
		if outOfEndpoints == 0 && s.endpointsRead && !slices.Contains(s.endpointNodes, victim.Name) {
			outOfEndpoints = since
		}
		if evicted == 0 && s.endpointsRead && s.onVictim == 0 {
			evicted = since
		}
		if bound == 0 && s.onVictim == 0 && s.placed == webReplicas {
			bound = since
		}
		if started == 0 && s.onVictim == 0 && s.running == webReplicas {
			started = since
		}
		if webFull(s) {
			full = since
			return true
		}
		return false
	})
	if !ok {
		t.Fatalf("not back to full strength 90 s after killing %s (NotReady after %v, out of the Endpoints after %v): %+v",
			victim.Name, notReady, outOfEndpoints, webStrength(context.Background(), c, victim.Name))
	}
	figure(t, name, full, 10*time.Second)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	t.Logf("%s: Node NotReady after %v, its pods out of the Endpoints after %v, off the node after %v, all %d replicas bound after %v, Running after %v, full strength (Ready, in the Endpoints) after %v",
		name, r(notReady), r(outOfEndpoints), r(evicted), webReplicas, r(bound), r(started), r(full))
	// Every surviving host's Service rules: 40 requests each, every one
	// answered, none by a pod of the victim.
	vip := sc.serviceIP(t)
	for _, h := range sc.others(victim) {
		testenv.WaitFor(t, 30*time.Second, h.Name+"'s rules without the victim's pods", func() bool {
			for range 40 {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				body, err := sc.Get(ctx, h, "http://"+net.JoinHostPort(vip, "80")+"/hostname")
				cancel()
				if err != nil || victimPods[strings.TrimSpace(body)] {
					return false
				}
			}
			return true
		})
	}
	// The target is about met with production timings on this 2-core
	// machine shared with other builds (8.6-10.3 s); the bound leaves
	// room for its worst moments, when the replacement pods start slowly
	// (19.4 s once, at a load average above 30).
	if full > scenarioNodeLossBound {
		t.Errorf("kill to full strength took %v; target 10 s, bound %v", full, scenarioNodeLossBound)
	}
	return full
}

// Scenario 8: a DaemonSet lands on a host that joins later; a StatefulSet
// starts its pods in order, and a restarted web-0 keeps its volume data.
func TestScenario8DaemonSetAndStatefulSet(t *testing.T) {
	sc := sharedCluster(t, 3)
	h1 := sc.Running()[0]
	c := sc.Client(h1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sc.applyManifest(t, h1, fmt.Sprintf(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agentd}
spec:
  selector: {matchLabels: {app: agentd}}
  template:
    metadata: {labels: {app: agentd}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: c
          image: %s
          args: ["sleep"]
`, sc.image))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, k := range [][2]string{{"DaemonSet", "agentd"}, {"StatefulSet", "web"}} {
			if err := sc.Client(sc.Running()[0]).Delete(ctx, k[0], "default", k[1]); err != nil && !api.IsNotFound(err) {
				t.Errorf("delete %s %s: %v", k[0], k[1], err)
			}
		}
	})
	dsOn := func() map[string]bool {
		on := map[string]bool{}
		objs, _, err := c.List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=agentd"})
		if err != nil {
			return on
		}
		for _, o := range objs {
			p := o.(*api.Pod)
			if p.Status.Phase == api.PodRunning && p.DeletionTimestamp == nil {
				on[p.Spec.NodeName] = true
			}
		}
		return on
	}
	testenv.WaitFor(t, 2*time.Minute, "a DaemonSet pod Running on every running host", func() bool {
		on := dsOn()
		for _, h := range sc.Running() {
			if !on[h.Name] {
				return false
			}
		}
		return true
	})
	joined := time.Now()
	var nh *hosts.Host
	retry(t, "add a host", func() (err error) {
		nh, err = sc.AddHost(ctx)
		return err
	})
	if err := sc.WaitFormed(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "a DaemonSet pod Running on the new host "+nh.Name, func() bool { return dsOn()[nh.Name] })
	t.Logf("host %s joined; its DaemonSet pod Running %v after it started", nh.Name, time.Since(joined).Round(time.Millisecond))

	statefulSet(t, sc, h1)
}
