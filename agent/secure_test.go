package agent

// Tests of the security model (issue 10) on the secure harness: every link
// between agents runs TLS from the cluster CA.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// secureAgents starts a settled secure cluster of n agents (bootstrap-expect
// n, 3 voters or 1).
func secureAgents(t *testing.T, n int) (*harness, []*testAgent) {
	h := newSecureHarness(t, fastTimings)
	cfgs := h.configs(n, "s")
	for j := range cfgs {
		cfgs[j].BootstrapExpect = n
	}
	tas := h.start(cfgs...)
	want := min(n, 3)
	waitUntil(t, 30*time.Second, "settled", func() string { return settled(tas, want) })
	return h, tas
}

// Over TLS on every link: the cluster forms (Raft), writes through every
// agent reach the leader (forwarding), non-voters learn the leader (probes),
// and every agent registers its Node (its own client).
func TestSecureClusterWorks(t *testing.T) {
	_, tas := secureAgents(t, 4)
	ctx := context.Background()
	for _, ta := range tas {
		name := "via-" + ta.cfg.NodeName
		waitUntil(t, 10*time.Second, "write through "+ta.cfg.NodeName, func() string {
			if _, err := ta.client().Create(ctx, configMap(name)); err != nil && !api.IsAlreadyExists(err) {
				return err.Error()
			}
			return ""
		})
	}
	c := tas[3].client()
	for _, ta := range tas {
		waitUntil(t, 10*time.Second, "node "+ta.cfg.NodeName+" ready", func() string {
			if r := nodeReady(ctx, tas[3], ta.cfg.NodeName); r != api.ConditionTrue {
				return fmt.Sprintf("ready %q", r)
			}
			return ""
		})
	}
	if _, _, err := c.List(ctx, "ConfigMap", "default", api.ListOptions{}); err != nil {
		t.Fatalf("list: %v", err)
	}
}
