package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestScaleAndCordon(t *testing.T) {
	addr := startAgent(t)
	t.Setenv("SHOAL_ADDR", addr)
	mustShoal(t, "apply", "-f", filepath.Join("..", "..", "integration", "examples", "web.yaml"))

	out := mustShoal(t, "scale", "deployment", "web", "--replicas", "7")
	if !strings.Contains(out, "deployment/web scaled to 7") {
		t.Errorf("scale: %s", out)
	}
	out = mustShoal(t, "get", "deploy/web", "-o", "json")
	if !strings.Contains(out, `"replicas": 7`) {
		t.Errorf("replicas not 7 after scale:\n%s", out)
	}
	mustShoal(t, "scale", "deploy/web", "--replicas=0") // replicas 0 is allowed
	if code, _, errOut := shoal(t, "scale", "configmap", "web-config", "--replicas", "2"); code != 1 || !strings.Contains(errOut, "cannot be scaled") {
		t.Errorf("scaling a configmap: exit %d, %s", code, errOut)
	}
	if code, _, _ := shoal(t, "scale", "deployment", "web"); code != 2 {
		t.Errorf("scale without --replicas: exit %d, want 2", code)
	}
	if code, _, errOut := shoal(t, "scale", "deployment", "nope", "--replicas", "1"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("scaling a missing deployment: exit %d, %s", code, errOut)
	}

	node := filepath.Join(t.TempDir(), "node.yaml")
	os.WriteFile(node, []byte("apiVersion: v1\nkind: Node\nmetadata: {name: h1}\n"), 0o644)
	mustShoal(t, "apply", "-f", node)
	if out := mustShoal(t, "cordon", "h1"); !strings.Contains(out, "node/h1 cordoned") {
		t.Errorf("cordon: %s", out)
	}
	if out := mustShoal(t, "get", "nodes"); !strings.Contains(out, "SchedulingDisabled") {
		t.Errorf("cordoned node not shown as such:\n%s", out)
	}
	mustShoal(t, "uncordon", "h1")
	if out := mustShoal(t, "get", "nodes"); strings.Contains(out, "SchedulingDisabled") {
		t.Errorf("uncordon did not take:\n%s", out)
	}

	if out := mustShoal(t, "rollout", "history", "deployment/web"); !strings.HasPrefix(out, "REVISION") {
		t.Errorf("rollout history: %s", out)
	}
	if code, _, errOut := shoal(t, "rollout", "undo", "deployment/web"); code != 1 || !strings.Contains(errOut, "history") {
		t.Errorf("undo with no history: exit %d, %s", code, errOut)
	}
}

func TestRolloutState(t *testing.T) {
	three := int32(3)
	d := func(gen, observed int64, st api.DeploymentStatus) *api.Deployment {
		return &api.Deployment{ObjectMeta: api.ObjectMeta{Name: "web", Generation: gen},
			Spec: api.DeploymentSpec{Replicas: &three}, Status: func() api.DeploymentStatus { st.ObservedGeneration = observed; return st }()}
	}
	cases := []struct {
		d    *api.Deployment
		done bool
		msg  string
		err  bool
	}{
		{d(2, 1, api.DeploymentStatus{}), false, "spec update to be observed", false},
		{d(1, 1, api.DeploymentStatus{UpdatedReplicas: 1, Replicas: 3}), false, "1 out of 3 new replicas", false},
		{d(1, 1, api.DeploymentStatus{UpdatedReplicas: 3, Replicas: 4}), false, "1 old replicas are pending", false},
		{d(1, 1, api.DeploymentStatus{UpdatedReplicas: 3, Replicas: 3, AvailableReplicas: 2}), false, "2 of 3 updated replicas are available", false},
		{d(1, 1, api.DeploymentStatus{UpdatedReplicas: 3, Replicas: 3, AvailableReplicas: 3}), true, "successfully rolled out", false},
		{d(1, 1, api.DeploymentStatus{Conditions: []api.Condition{{Type: "Progressing", Status: "False", Reason: "ProgressDeadlineExceeded"}}}), false, "", true},
	}
	for i, c := range cases {
		done, msg, err := rolloutState(c.d)
		if done != c.done || (err != nil) != c.err || !strings.Contains(msg, c.msg) {
			t.Errorf("case %d: done=%v msg=%q err=%v", i, done, msg, err)
		}
	}
}
