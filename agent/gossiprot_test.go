package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// Gossip key rotation (issue 10) in an in-process secure cluster, pods off.

// joinWorkers starts a bootstrapped secure b0 and workers joined with the
// worker token, and waits until every agent sees every other alive with
// the same keyring.
func joinWorkers(t *testing.T, h *harness, names ...string) []*testAgent {
	t.Helper()
	cfg := patientGossip(h.config("b0", "z0"))
	cfg.Insecure = false
	cfg.Bootstrap = true
	b0 := h.build(cfg)
	if err := b0.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(b0, nil)
	waitUntil(t, 20*time.Second, "the identity record in the store", func() string {
		if _, err := b0.Store().Get(recordKey); err != nil {
			return err.Error()
		}
		return ""
	})
	var toks identity.TokensResponse
	adminCall(t, b0, http.MethodGet, identity.PathTokens, nil, &toks)
	tas := []*testAgent{b0}
	for _, name := range names {
		ta := h.build(patientGossip(joinConfig(h, name, b0, toks.Worker)))
		if err := ta.Start(); err != nil {
			t.Fatal(err)
		}
		h.run(ta, nil)
		tas = append(tas, ta)
	}
	want := gossip.KeyringState(b0.Gossip().Keys())
	waitUntil(t, 60*time.Second, "every agent sees every other with the bootstrap keyring", func() string {
		return seeKeyring(tas, tas, want)
	})
	return tas
}

// patientGossip slows failure detection down (probe timeout 500 ms,
// suspicion of at least 4 s) so that the test's many agents, under -race
// on a loaded machine, do not see each other die for no reason: these
// tests must tell a member that the rotation shut out from a stall. Key
// refresh still runs every PushPullInterval/3 (under a second).
func patientGossip(cfg Config) Config {
	gc := *cfg.Gossip
	gc.ProbeInterval = time.Second
	gc.ProbeTimeout = 500 * time.Millisecond
	gc.SuspicionMult = 4
	gc.SuspicionMaxTimeoutMult = 2
	cfg.Gossip = &gc
	return cfg
}

// seeKeyring reports "" when every observer sees every member of tas alive
// advertising keyring.
func seeKeyring(observers, tas []*testAgent, keyring string) string {
	for _, o := range observers {
		for _, ta := range tas {
			m, ok := memberOf(o, ta.cfg.NodeName)
			switch {
			case !ok:
				return fmt.Sprintf("%s does not know %s", o.cfg.NodeName, ta.cfg.NodeName)
			case m.State != gossip.Alive:
				return fmt.Sprintf("%s sees %s", o.cfg.NodeName, m)
			case m.Meta.Keyring != keyring:
				return fmt.Sprintf("%s sees %s with keyring %q, want %q", o.cfg.NodeName, m.Name, m.Meta.Keyring, keyring)
			}
		}
	}
	return ""
}

func memberOf(o *testAgent, name string) (gossip.Member, bool) {
	for _, m := range o.Gossip().Members() {
		if m.Name == name {
			return m, true
		}
	}
	return gossip.Member{}, false
}

// rotationDone waits until the record says no rotation is in progress and
// returns its only key.
func rotationDone(t *testing.T, leader *testAgent, within time.Duration) []byte {
	t.Helper()
	var keys [][]byte
	waitUntil(t, within, "the gossip key rotation is done", func() string {
		rec, err := identityCluster{leader.Agent}.Record(context.Background())
		if err != nil {
			return err.Error()
		}
		if rec.Rotation.Phase != identity.PhaseNone {
			return "phase " + rec.Rotation.Phase.String()
		}
		o, err := rec.Open(leader.kek)
		if err != nil {
			return err.Error()
		}
		keys = o.GossipKeys
		return ""
	})
	if len(keys) != 1 {
		t.Fatalf("after the rotation the record holds %d keys", len(keys))
	}
	return keys[0]
}

// After `shoal revoke w1` and `shoal gossip rotate`, w1 can no longer read
// gossip: it sees the others dead and they see it dead, while the other
// agents never see each other dead during the rotation and writes through
// them keep succeeding.
func TestGossipRotationShutsOutRevokedNode(t *testing.T) {
	h := newHarness(t, fastTimings)
	tas := joinWorkers(t, h, "w1", "w2", "w3")
	b0, w1 := tas[0], tas[1]
	good := []*testAgent{b0, tas[2], tas[3]}
	oldKey := b0.Gossip().Keys()[0]

	var rv identity.RevokeResponse
	adminCall(t, b0, http.MethodPost, identity.PathRevoke, identity.RevokeRequest{Node: "w1"}, &rv)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var flaps, writeErrs []string
	writes := 0
	var maxGap time.Duration // longest time between two successful writes through one agent
	// Flaps: any good agent seeing another good one anything but alive.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, o := range good {
				for _, ta := range good {
					if m, ok := memberOf(o, ta.cfg.NodeName); !ok || m.State != gossip.Alive {
						mu.Lock()
						flaps = append(flaps, fmt.Sprintf("%s saw %s (known %v)", o.cfg.NodeName, m, ok))
						mu.Unlock()
					}
				}
			}
			time.Sleep(20 * time.Millisecond) // sampling period of an observation, not synchronisation
		}
	}()
	// Writes through the leader and a worker (forwarded) all along.
	tok := adminToken(t, b0)
	tc := mustTLSFromFile(t, b0)
	for _, ta := range []*testAgent{b0, tas[2]} {
		c := api.NewClient("https://"+ta.Addr(), api.WithTLSConfig(tc), api.WithBearerToken(tok), api.WithRequestTimeout(10*time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := time.Now()
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				// A write whose outcome is unknown (a timeout on an
				// overloaded machine) is tried again: AlreadyExists then
				// means the first attempt was applied. A write that
				// fails three times is a failure.
				var err error
				for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
					_, err = c.Create(ctx, configMap(fmt.Sprintf("rot-%s-%d", ta.cfg.NodeName, i)))
					if err == nil || (attempt > 0 && api.IsAlreadyExists(err)) {
						err = nil
						break
					}
				}
				mu.Lock()
				switch {
				case err != nil && ctx.Err() == nil:
					writeErrs = append(writeErrs, fmt.Sprintf("through %s: %v", ta.cfg.NodeName, err))
				case err == nil:
					writes++
					maxGap = max(maxGap, time.Since(last))
					last = time.Now()
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // write pacing, not synchronisation
			}
		}()
	}

	var st identity.GossipStatus
	start := time.Now()
	adminCall(t, b0, http.MethodPost, identity.PathGossipRotate, nil, &st)
	if st.Phase != identity.PhaseInstall || len(st.Keys) != 2 {
		t.Fatalf("after rotate: %+v", st)
	}
	newKey := rotationDone(t, b0, 90*time.Second)
	t.Logf("rotation (install, use, remove) with 3 agents and a revoked one: %v", time.Since(start).Round(10*time.Millisecond))
	if bytes.Equal(newKey, oldKey) {
		t.Fatal("the rotation kept the old key")
	}
	want := gossip.KeyringState([][]byte{newKey})
	waitUntil(t, 30*time.Second, "the good agents on the new key only", func() string { return seeKeyring(good, good, want) })
	waitUntil(t, 60*time.Second, "w1 and the others see each other dead", func() string {
		for _, o := range good {
			if m, ok := memberOf(o, "w1"); ok && m.State == gossip.Alive {
				return fmt.Sprintf("%s sees w1 alive", o.cfg.NodeName)
			}
			if m, ok := memberOf(w1, o.cfg.NodeName); ok && m.State == gossip.Alive {
				return fmt.Sprintf("w1 sees %s alive", o.cfg.NodeName)
			}
		}
		return ""
	})
	if ks := w1.Gossip().Keys(); len(ks) != 1 || !bytes.Equal(ks[0], oldKey) {
		t.Errorf("the revoked w1 holds %d keys, want the old one only", len(ks))
	}
	if !strings.Contains(strings.ToLower(w1.logs.String()), "decrypt") {
		t.Error("w1's logs show no message it could not decrypt")
	}
	adminCall(t, b0, http.MethodGet, identity.PathGossip, nil, &st)
	for _, m := range st.Members {
		if m.Name == "w1" && m.State == "current" {
			t.Errorf("status shows the revoked w1 current: %+v", m)
		}
	}
	// A little more time for writes after the rotation.
	mu.Lock()
	n := writes
	mu.Unlock()
	waitUntil(t, 20*time.Second, "writes after the rotation", func() string {
		mu.Lock()
		defer mu.Unlock()
		if writes < n+10 {
			return fmt.Sprintf("%d writes after the rotation", writes-n)
		}
		return ""
	})
	stop()
	wg.Wait()
	if len(flaps) > 0 {
		t.Errorf("%d observations of a good agent not alive during the rotation, first: %s", len(flaps), flaps[0])
	}
	if len(writeErrs) > 0 {
		t.Errorf("%d failed writes of %d, first: %s", len(writeErrs), writes+len(writeErrs), writeErrs[0])
	}
	// Writes flow throughout: never a pause longer than a leader's
	// forwarding deadline and a retry on this loaded machine.
	if maxGap > 20*time.Second {
		t.Errorf("writes through one agent stopped for %v", maxGap)
	}
	t.Logf("%d writes during and after the rotation, longest pause between two through one agent %v", writes, maxGap.Round(time.Millisecond))
}

// An agent down during a whole rotation comes back holding only the
// removed key: it fetches the current keys with its certificate before
// it joins gossip, and rejoins.
func TestGossipRotationRejoinAfterDown(t *testing.T) {
	h := newHarness(t, fastTimings)
	tas := joinWorkers(t, h, "w1", "w2")
	b0, w2 := tas[0], tas[2]
	oldKey := b0.Gossip().Keys()[0]
	h.kill(w2) // down, as a crashed or powered-off host
	var st identity.GossipStatus
	adminCall(t, b0, http.MethodPost, identity.PathGossipRotate, nil, &st)
	newKey := rotationDone(t, b0, 90*time.Second)
	if l, err := identity.Load(w2.cfg.DataDir); err != nil || !bytes.Equal(l.GossipKey, oldKey) || len(l.Keys()) != 1 {
		t.Fatalf("w2's data dir while it was down: %v", err)
	}
	again := h.build(w2.cfg)
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(again, nil)
	want := gossip.KeyringState([][]byte{newKey})
	live := []*testAgent{b0, tas[1], again}
	waitUntil(t, 60*time.Second, "w2 back on the new key", func() string { return seeKeyring(live, live, want) })
	l, err := identity.Load(w2.cfg.DataDir)
	if err != nil || !slices.EqualFunc(l.Keys(), [][]byte{newKey}, bytes.Equal) {
		t.Fatalf("w2's data dir after it came back: %v", err)
	}
	select {
	case err := <-again.done:
		t.Fatalf("w2 stopped: %v", err)
	default:
	}
}

// A voter crashed during a whole rotation comes back with Raft state and
// only the removed key: its replica is stale until Raft (which needs no
// gossip) catches it up, so its first join is refused for its key; it
// refreshes from its replica and rejoins.
func TestGossipRotationVoterRejoinsAfterCrash(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := patientGossip(h.config("b0", "z0"))
	cfg.Insecure, cfg.Bootstrap = false, true
	b0 := h.build(cfg)
	if err := b0.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(b0, nil)
	waitUntil(t, 20*time.Second, "the identity record in the store", func() string {
		if _, err := b0.Store().Get(recordKey); err != nil {
			return err.Error()
		}
		return ""
	})
	var toks identity.TokensResponse
	adminCall(t, b0, http.MethodGet, identity.PathTokens, nil, &toks)
	tas := []*testAgent{b0}
	for _, name := range []string{"v1", "v2"} {
		ta := h.build(patientGossip(joinConfig(h, name, b0, toks.Voter)))
		if err := ta.Start(); err != nil {
			t.Fatal(err)
		}
		h.run(ta, nil)
		tas = append(tas, ta)
	}
	waitUntil(t, 90*time.Second, "3 voters", func() string { return settled(tas, 3) })
	leader := leaderOf(tas)
	victim := tas[2]
	if victim == leader {
		victim = tas[1]
	}
	oldKey := leader.Gossip().Keys()[0]
	h.kill(victim)
	var st identity.GossipStatus
	adminCall(t, b0, http.MethodPost, identity.PathGossipRotate, nil, &st)
	newKey := rotationDone(t, leader, 90*time.Second)
	if l, err := identity.Load(victim.cfg.DataDir); err != nil || !bytes.Equal(l.GossipKey, oldKey) {
		t.Fatalf("%s's data dir while it was down: %v", victim.cfg.NodeName, err)
	}
	again := h.build(victim.cfg)
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(again, nil)
	var live []*testAgent
	for _, ta := range tas {
		if ta != victim {
			live = append(live, ta)
		}
	}
	live = append(live, again)
	want := gossip.KeyringState([][]byte{newKey})
	waitUntil(t, 120*time.Second, victim.cfg.NodeName+" back on the new key", func() string {
		select {
		case err := <-again.done:
			again.done <- err
			return fmt.Sprintf("%s stopped: %v", victim.cfg.NodeName, err)
		default:
		}
		return seeKeyring(live, live, want)
	})
	for _, line := range strings.Split(again.logs.String(), "\n") {
		if strings.Contains(line, "gossip key") {
			t.Log(line)
		}
	}
}
