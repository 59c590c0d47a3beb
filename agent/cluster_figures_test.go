package agent

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// TestFailoverFigures measures, over SHOAL_FIGURES_TRIALS (default 20)
// fresh 5-agent clusters with production timings (consensus.DefaultConfig,
// gossip.DefaultConfig, DeadGrace 10 s, Stabilize 3 s):
//
//   - a non-voter killed → its Node Ready=False in the leader's store;
//   - the leader killed → the API accepts a write again, sent through a
//     surviving voter and through a non-voter (both forward);
//   - the same killed leader (a voter) → a replacement voter promoted.
//
// It prints the figures and asserts nothing about them. It only runs with
// SHOAL_FIGURES=1 (minutes of wall time):
//
//	SHOAL_FIGURES=1 go test -run TestFailoverFigures -v -timeout 30m ./agent
func TestFailoverFigures(t *testing.T) {
	if os.Getenv("SHOAL_FIGURES") != "1" {
		t.Skip("set SHOAL_FIGURES=1 to measure failover figures (production timings, minutes)")
	}
	trials := 20
	if v, err := strconv.Atoi(os.Getenv("SHOAL_FIGURES_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	var notReady, viaVoter, viaNonvoter, promoted []time.Duration
	for i := range trials {
		t.Run(fmt.Sprintf("trial%02d", i), func(t *testing.T) {
			h, tas := fiveAgents(t, prodTimings)
			ctx := context.Background()
			leader := leaderOf(tas)
			// Every agent's Node registered and Ready before measuring.
			waitUntil(t, 30*time.Second, "nodes ready", func() string {
				for _, ta := range tas {
					if s := readyIn(leader, ta.cfg.NodeName); s != api.ConditionTrue {
						return ta.cfg.NodeName + ": " + s
					}
				}
				return ""
			})

			nv := nonvoters(tas)[0]
			start := time.Now()
			h.kill(nv)
			waitUntil(t, 60*time.Second, "NotReady", func() string {
				if s := readyIn(leader, nv.cfg.NodeName); s != api.ConditionFalse {
					return s
				}
				return ""
			})
			notReady = append(notReady, time.Since(start))

			voter, other := followers(tas)[0], nonvoters(tas)[0]
			start = time.Now()
			h.kill(leader)
			// Writes through a surviving voter (j=0) and through the
			// remaining non-voter (j=1), both forwarded to the new leader.
			var took [2]time.Duration
			done := make(chan int, 2)
			for j, via := range []*testAgent{voter, other} {
				go func() {
					defer func() { done <- j }()
					c := api.NewClient("http://"+via.Addr(), api.WithRequestTimeout(time.Second))
					for n := 0; time.Since(start) < time.Minute; n++ {
						if _, err := c.Create(ctx, configMap(fmt.Sprintf("w%d-%d", j, n))); err == nil {
							took[j] = time.Since(start)
							return
						}
					}
					took[j] = -1
				}()
			}
			<-done
			<-done
			viaVoter = append(viaVoter, took[0])
			viaNonvoter = append(viaNonvoter, took[1])
			waitUntil(t, 60*time.Second, "replacement promoted", func() string {
				v := viewOf(tas)
				if len(v.config) != 3 || slices.Contains(v.config, leader.cfg.NodeName) {
					return fmt.Sprintf("voters %v", v.config)
				}
				return ""
			})
			promoted = append(promoted, time.Since(start))
		})
	}
	t.Logf("failover figures over %d trials, 5 agents, production timings:", len(promoted))
	t.Logf("  %-46s %s", "non-voter killed -> Node Ready=False", summary(notReady))
	t.Logf("  %-46s %s", "leader killed -> write accepted via a voter", summary(viaVoter))
	t.Logf("  %-46s %s", "leader killed -> write accepted via a non-voter", summary(viaNonvoter))
	t.Logf("  %-46s %s", "leader (a voter) killed -> replacement promoted", summary(promoted))
}

// readyIn is the Ready status of name in from's local store.
func readyIn(from *testAgent, name string) string {
	n := from.Node()
	if n == nil {
		return "not a voter"
	}
	obj, err := n.Store().Get(store.Key{Kind: "Node", Name: name})
	if err != nil {
		return err.Error()
	}
	c := api.FindCondition(obj.(*api.Node).Status.Conditions, api.NodeReady)
	if c == nil {
		return "none"
	}
	return c.Status
}

func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no data"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	return fmt.Sprintf("p50 %s  max %s  min %s", r(s[len(s)/2]), r(s[len(s)-1]), r(s[0]))
}
