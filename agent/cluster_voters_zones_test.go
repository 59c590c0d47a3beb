package agent

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Issue 12, scenario 1: three founders in zones a, a, b, then a fourth
// agent joins in zone c. The voter manager moves a vote into zone c (stage
// the newcomer, promote it, then remove a zone-a voter that is not the
// leader) and writes go on succeeding all the while.
func TestVotersSpreadToNewZone(t *testing.T) {
	h := newSecureHarness(t, fastTimings)
	cfgs := h.configs(3, "zs")
	zoneOf := map[string]string{}
	for i, z := range []string{"a", "a", "b"} {
		cfgs[i].Zone = z
		cfgs[i].BootstrapExpect = 3
		zoneOf[cfgs[i].NodeName] = z
	}
	founders := h.start(cfgs...)
	waitUntil(t, 30*time.Second, "founders settled", func() string { return settled(founders, 3) })

	// Writes through the founders in turn until the move is over. Under
	// the machine's load a write may meet a leader election (gossip and
	// Raft timings are fast here), so each is retried, but every one must
	// succeed within writeWithin: no write is refused for the duration of
	// the move.
	const writeWithin = 15 * time.Second
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var writes, retries int
	var slowest time.Duration
	var failures, retried []string
	var clients []*api.Client
	for _, ta := range founders {
		clients = append(clients, ta.client())
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil && i < 100000; i++ {
			began := time.Now()
			var err error
			for try := 0; try < 1000; try++ {
				_, err = clients[(i+try)%len(clients)].Create(context.Background(), configMap(fmt.Sprintf("during-%d", i)))
				if err == nil || api.IsAlreadyExists(err) || time.Since(began) > writeWithin {
					break
				}
				mu.Lock()
				retries++
				if len(retried) < 3 {
					retried = append(retried, err.Error())
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond) // retry pacing, not synchronisation
			}
			mu.Lock()
			writes++
			slowest = max(slowest, time.Since(began))
			if err != nil && !api.IsAlreadyExists(err) {
				failures = append(failures, fmt.Sprintf("write %d not done within %v: %v", i, writeWithin, err))
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // pacing, not synchronisation
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()
	waitUntil(t, 20*time.Second, "a first write", func() string {
		mu.Lock()
		defer mu.Unlock()
		if writes == 0 {
			return "none yet"
		}
		return ""
	})

	newcomer := h.build(h.config("zs3", "c"))
	zoneOf["zs3"] = "c"
	h.run(newcomer, nil)
	all := append(slices.Clone(founders), newcomer)
	start := time.Now()
	waitUntil(t, 60*time.Second, "three voters in zones a, b, c", func() string {
		if why := settled(all, 3); why != "" {
			return why
		}
		var zs []string
		for _, id := range viewOf(all).config {
			zs = append(zs, zoneOf[id])
		}
		slices.Sort(zs)
		if !slices.Equal(zs, []string{"a", "b", "c"}) {
			return fmt.Sprintf("voters %v in zones %v", viewOf(all).config, zs)
		}
		return ""
	})
	t.Logf("newcomer started to voters spread over a, b, c: %v", time.Since(start).Round(10*time.Millisecond))
	// A few more writes after the move, then stop.
	mu.Lock()
	after := writes + 5
	mu.Unlock()
	waitUntil(t, 20*time.Second, "writes after the move", func() string {
		mu.Lock()
		defer mu.Unlock()
		if writes < after {
			return fmt.Sprintf("%d writes, want %d", writes, after)
		}
		return ""
	})
	stop()
	wg.Wait()
	mu.Lock()
	t.Logf("%d writes during the move, %d retries, slowest %v, %d failed", writes, retries, slowest.Round(time.Millisecond), len(failures))
	if len(retried) > 0 {
		t.Logf("first retried errors: %q", retried)
	}
	for _, f := range failures {
		t.Error(f)
	}
	mu.Unlock()

	// The move, as the leader(s) logged it: zs3 staged before it voted,
	// and the zone-a voter removed only after zs3 was promoted (by the
	// same leader, unless the machine's load made leadership change in
	// between). No leader removes itself.
	spread := false
	for _, ta := range all {
		logs := ta.logs.String()
		me := ta.cfg.NodeName
		spread = spread || strings.Contains(logs, "to spread the voters")
		if why := stagedBeforeVoting(logs); why != "" {
			t.Error(why)
		}
		if strings.Contains(logs, `msg="voter manager: RemoveServer" node=`+me+` id=`+me+" ") {
			t.Errorf("%s removed itself", me)
		}
		promoted := strings.Index(logs, `msg="voter manager: AddVoter" node=`+me+` id=zs3`)
		// A voter's removal, not a non-voter's: while the founders form
		// on a loaded machine the leader may drop a staged non-voter
		// whose agent gossip thinks dead, long before zs3 exists.
		removed := -1
		if m := regexp.MustCompile(`msg="voter manager: RemoveServer" node=` + me + ` id=\S+ addr=\S+ reason="remove (surplus )?voter `).FindStringIndex(logs); m != nil {
			removed = m[0]
		}
		if removed >= 0 && promoted >= 0 && removed < promoted {
			t.Errorf("%s removed a voter (at %d) before zs3 was promoted (at %d)", me, removed, promoted)
		}
	}
	if !spread {
		t.Error("no leader said it spread the voters")
	}
	if v := viewOf(all); slices.Contains(v.config, "zs3") && !slices.ContainsFunc(v.config, func(id string) bool { return zoneOf[id] == "a" }) {
		t.Errorf("voters %v: zone a lost its voter", v.config)
	}
	if _, err := newcomer.client().Get(context.Background(), "ConfigMap", "default", "during-0"); err != nil {
		t.Errorf("read through the newcomer: %v", err)
	}
}
