package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// An agent's API applies its --host-path-allow and its cluster CIDR: a pod
// with hostPath / and a Node whose pod CIDR is 0.0.0.0/1 are refused with
// the field named; a pod below an allowed directory is accepted.
func TestAgentAppliesWorkloadLimits(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := h.config("lim0", "z0")
	cfg.Bootstrap, cfg.BootstrapExpect, cfg.Voters = true, 0, 1
	cfg.HostPathAllow = []string{"/srv/shoal-test-data"}
	h.start(cfg)
	// The configured address, not ta.Addr(), which is set by Start.
	client := api.NewClient("http://"+cfg.HTTPAddr, api.WithRequestTimeout(5*time.Second))
	ctx := context.Background()
	pod := func(name, path string) *api.Pod {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}}
		p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
		p.Spec.Volumes = []api.Volume{{Name: "h", HostPath: &api.HostPathVolumeSource{Path: path}}}
		api.SetTypeMeta(p)
		return p
	}
	waitUntil(t, 20*time.Second, "a first write", func() string {
		if _, err := client.Create(ctx, pod("allowed", "/srv/shoal-test-data/x")); err != nil && !api.IsAlreadyExists(err) {
			return err.Error()
		}
		return ""
	})
	refused := func(obj api.Object, field string) {
		t.Helper()
		_, err := client.Create(ctx, obj)
		var se *api.StatusError
		if !api.IsInvalid(err) || !errors.As(err, &se) || se.ErrStatus.Details == nil || len(se.ErrStatus.Details.Causes) != 1 || se.ErrStatus.Details.Causes[0].Field != field {
			t.Fatalf("create %s: %v, want 422 Invalid at %s", api.KindOf(obj), err, field)
		}
	}
	refused(pod("root", "/"), "spec.volumes[0].hostPath.path")
	refused(pod("elsewhere", "/srv/other"), "spec.volumes[0].hostPath.path")
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: "stale"}, Spec: api.NodeSpec{PodCIDR: "0.0.0.0/1"}}
	api.SetTypeMeta(n)
	refused(n, "spec.podCIDR")
}
