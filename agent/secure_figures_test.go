package agent

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// TestTLSWriteFigures measures the cost of security on the write path (issue
// 10): 3 voters in process (production timings), 64 writers spread over
// the three agents' APIs creating ConfigMaps for SHOAL_FIGURES_SECONDS
// (default 10) per round, alternately with security off (plain http) and
// on (TLS everywhere, admin bearer tokens, Raft over mutual TLS), two
// rounds each in the same run. It prints writes/s and the ratio and asserts
// nothing. Only with SHOAL_FIGURES=1:
//
//	SHOAL_FIGURES=1 go test -run TestTLSWriteFigures -v ./agent
func TestTLSWriteFigures(t *testing.T) {
	if os.Getenv("SHOAL_FIGURES") != "1" {
		t.Skip("set SHOAL_FIGURES=1 to measure the TLS write-path figures")
	}
	secs := 10
	if v, err := fmt.Sscan(os.Getenv("SHOAL_FIGURES_SECONDS"), &secs); v != 1 || err != nil || secs <= 0 {
		secs = 10
	}
	rates := map[bool][]float64{}
	for round := range 4 {
		secure := round%2 == 1
		t.Run(fmt.Sprintf("round%d-secure=%v", round, secure), func(t *testing.T) {
			h := newHarness(t, prodTimings)
			if secure {
				h.ca = newTestCA(t)
			}
			cfgs := h.configs(3, "f")
			for i := range cfgs {
				cfgs[i].BootstrapExpect = 3
			}
			tas := h.start(cfgs...)
			waitUntil(t, 60*time.Second, "settled", func() string { return settled(tas, 3) })
			ctx := context.Background()
			clients := make([]*api.Client, len(tas))
			for i, ta := range tas {
				clients[i] = ta.client()
				waitUntil(t, 20*time.Second, "a first write", func() string {
					if _, err := clients[i].Create(ctx, configMap(fmt.Sprintf("warm-%d", i))); err != nil && !api.IsAlreadyExists(err) {
						return err.Error()
					}
					return ""
				})
			}
			var ok, failed atomic.Int64
			var firstErr atomic.Value
			stop := time.Now().Add(time.Duration(secs) * time.Second)
			var wg sync.WaitGroup
			for w := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := clients[w%len(clients)]
					for n := 0; time.Now().Before(stop); n++ {
						if _, err := c.Create(ctx, configMap(fmt.Sprintf("w%d-%d", w, n))); err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
						} else {
							ok.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			rate := float64(ok.Load()) / float64(secs)
			rates[secure] = append(rates[secure], rate)
			t.Logf("secure=%v: %.0f writes/s (%d failed; first error: %v)", secure, rate, failed.Load(), firstErr.Load())
		})
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(max(len(xs), 1))
	}
	off, on := mean(rates[false]), mean(rates[true])
	t.Logf("writes/s, 3 voters, 64 writers over 3 agents, %ds rounds: security off %.0f, on %.0f: on is %.2fx slower", secs, off, on, off/on)
}
