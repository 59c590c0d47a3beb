package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/consensus"
)

// startAgent runs a one-node agent on loopback for the CLI to talk to.
func startAgent(t *testing.T) string {
	t.Helper()
	a := newAgent(t, "cli-test", true)
	addr := "http://" + a.Addr()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _ := shoal(t, "get", "namespace", "default", "--server", addr); code == 0 {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("agent did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newAgent starts an agent on loopback ports; bootstrap makes it form its
// own one-voter cluster.
func newAgent(t *testing.T, name string, bootstrap bool, join ...string) *agent.Agent {
	t.Helper()
	rc := consensus.TestConfig()
	cfg := agent.DevConfig()
	cfg.NodeName = name
	cfg.Insecure = true // loopback only
	cfg.Dev = bootstrap
	cfg.Bootstrap = bootstrap
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.Raft = &rc
	cfg.LeaveTimeout = 2 * time.Second // v2 is removed behind its back in TestCLIRaftVoters
	// Voters change by hand here (TestCLIRaftVoters).
	cfg.ManualVoters = true
	cfg.Join = join
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a
}

func shoal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustShoal(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := shoal(t, args...)
	if code != 0 {
		t.Fatalf("shoal %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestCLIAgainstAgent(t *testing.T) {
	addr := startAgent(t)
	t.Setenv("SHOAL_ADDR", addr)
	example := filepath.Join("..", "..", "integration", "examples", "web.yaml")

	out := mustShoal(t, "apply", "-f", example)
	for _, want := range []string{"configmap/web-config created", "deployment.apps/web created", "service/web created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	out = mustShoal(t, "apply", "-f", example)
	if strings.Count(out, "unchanged") != 3 {
		t.Errorf("re-applying the same file should leave all three unchanged:\n%s", out)
	}

	out = mustShoal(t, "get", "deployments")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "web ") {
		t.Errorf("get deployments table:\n%s", out)
	}
	if !strings.Contains(lines[1], "0/3") {
		t.Errorf("READY column should be 0/3 before any pod runs:\n%s", out)
	}

	out = mustShoal(t, "get", "cm", "-l", "app=web", "-o", "json")
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 1 {
		t.Errorf("get cm -l app=web -o json: %v, %d items\n%s", err, len(list.Items), out)
	}
	out = mustShoal(t, "get", "configmaps", "-l", "app!=web")
	if strings.Contains(out, "web-config") {
		t.Errorf("selector app!=web matched web-config:\n%s", out)
	}

	out = mustShoal(t, "get", "deployment", "web", "-o", "yaml")
	if !strings.Contains(out, "kind: Deployment") || !strings.Contains(out, "resourceVersion:") {
		t.Errorf("get -o yaml:\n%s", out)
	}
	out = mustShoal(t, "describe", "svc", "web")
	for _, want := range []string{"Name:", "web", "Namespace:", "default", "Spec:", "targetPort: 8080"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}

	out = mustShoal(t, "status")
	if !strings.Contains(out, "cli-test") || !strings.Contains(out, "Leader:") {
		t.Errorf("status:\n%s", out)
	}
	// The leader is named by the address a client uses (issue 9, defect 8).
	if !strings.Contains(out, "API at "+strings.TrimPrefix(addr, "http://")) {
		t.Errorf("status does not give the leader's API address %s:\n%s", addr, out)
	}

	// Edit and re-apply: configured.
	b, _ := os.ReadFile(example)
	edited := filepath.Join(t.TempDir(), "web.yaml")
	os.WriteFile(edited, bytes.Replace(b, []byte("replicas: 3"), []byte("replicas: 5"), 1), 0o644)
	out = mustShoal(t, "apply", "-f", edited)
	if !strings.Contains(out, "deployment.apps/web configured") || !strings.Contains(out, "configmap/web-config unchanged") {
		t.Errorf("apply after edit:\n%s", out)
	}

	mustShoal(t, "delete", "-f", example)
	code, _, errOut := shoal(t, "get", "deployment", "web")
	if code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("get after delete: exit %d, %s", code, errOut)
	}
}

func TestCLIBadInput(t *testing.T) {
	addr := startAgent(t)
	t.Setenv("SHOAL_ADDR", addr)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`apiVersion: v1
kind: ConfigMap
metadata: {name: ok}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        imagePullPolcy: Always
`), 0o644)
	code, _, errOut := shoal(t, "apply", "-f", bad)
	if code != 1 || !strings.Contains(errOut, "spec.template.spec.containers[0].imagePullPolcy: unknown field") {
		t.Errorf("unknown field: exit %d, stderr %s", code, errOut)
	}
	// Nothing was applied: the good first document was not sent either.
	if code, _, _ := shoal(t, "get", "configmap", "ok"); code == 0 {
		t.Error("the first document of a bad manifest was applied")
	}

	neg := filepath.Join(dir, "neg.yaml")
	os.WriteFile(neg, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: neg}
spec:
  replicas: -1
  selector: {matchLabels: {app: neg}}
  template:
    metadata: {labels: {app: neg}}
    spec: {containers: [{name: c, image: busybox}]}
`), 0o644)
	code, _, errOut = shoal(t, "apply", "-f", neg)
	if code != 1 || !strings.Contains(errOut, "spec.replicas") {
		t.Errorf("negative replicas: exit %d, stderr %s", code, errOut)
	}

	code, _, errOut = shoal(t, "get", "widgets")
	if code != 1 || !strings.Contains(errOut, `unknown resource type "widgets"`) {
		t.Errorf("unknown kind: exit %d, stderr %s", code, errOut)
	}
	code, _, _ = shoal(t, "get")
	if code != 2 {
		t.Errorf("get with no kind: exit %d, want 2", code)
	}
	code, _, errOut = shoal(t, "frobnicate")
	if code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %s", code, errOut)
	}
	code, _, errOut = shoal(t, "get", "pods", "-o", "xml")
	if code != 1 || !strings.Contains(errOut, "-o") {
		t.Errorf("bad -o: exit %d, %s", code, errOut)
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := newFlagSet("get", "", io.Discard)
	l := fs.String("l", "", "")
	o := fs.String("o", "", "")
	pos, err := parseInterspersed(fs, []string{"pods", "-l", "app=web", "web-1", "-o", "wide", "--", "-x"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, " ") != "pods web-1 -x" || *l != "app=web" || *o != "wide" {
		t.Errorf("pos=%q l=%q o=%q", pos, *l, *o)
	}
}

// TestCLIRaftVoters grows a cluster by hand with `shoal raft add-voter`:
// a write on the leader then reaches the new voter's store.
func TestCLIRaftVoters(t *testing.T) {
	leader := newAgent(t, "v1", true)
	// v2 runs Raft at once (--bootstrap-expect 0) and is in v1's gossip:
	// the leader checks through its API that its log caught up before
	// giving it a vote.
	follower := newAgent(t, "v2", false, leader.GossipAddr())
	addr := "http://" + leader.Addr()
	t.Setenv("SHOAL_ADDR", addr)
	deadline := time.Now().Add(20 * time.Second)
	// The leader has made the namespace "default" (a write before that
	// would be refused).
	for code, _, _ := shoal(t, "get", "namespace", "default"); code != 0 || !leader.Node().IsLeader(); code, _, _ = shoal(t, "get", "namespace", "default") {
		if time.Now().After(deadline) {
			t.Fatal("v1 did not become a leader with the namespace default")
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := mustShoal(t, "raft", "add-voter", "v2", follower.Node().Addr())
	if !strings.Contains(out, "v2 added as a voter") {
		t.Errorf("add-voter: %s", out)
	}
	out = mustShoal(t, "status")
	if !strings.Contains(out, "v2") {
		t.Errorf("status after add-voter lacks v2:\n%s", out)
	}
	cm := filepath.Join(t.TempDir(), "cm.yaml")
	os.WriteFile(cm, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: replicated}\ndata: {k: v}\n"), 0o644)
	mustShoal(t, "apply", "-f", cm)
	followerAddr := "http://" + follower.Addr()
	for {
		code, _, _ := shoal(t, "get", "configmap", "replicated", "--stale", "--server", followerAddr)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write never reached the new voter")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A follower passes configuration changes to the leader, which does
	// not remove itself by hand.
	code, _, errOut := shoal(t, "raft", "remove", "v1", "--server", followerAddr)
	if code != 1 || !strings.Contains(errOut, "v1 is the leader: stop its agent instead") {
		t.Errorf("remove the leader through a follower: exit %d, %s", code, errOut)
	}
	code, _, errOut = shoal(t, "raft", "add-voter", "v3", "not-an-address")
	if code != 1 || !strings.Contains(errOut, "address") {
		t.Errorf("bad address: exit %d, %s", code, errOut)
	}
	out = mustShoal(t, "raft", "remove", "v2")
	if !strings.Contains(out, "v2 removed") {
		t.Errorf("remove: %s", out)
	}
}

// Deleting a pod bound to a node leaves it Terminating until its agent
// finishes it (this test agent runs no pods); --force removes it at once;
// --grace-period 0 alone is refused.
func TestCLIDeletePodGracefully(t *testing.T) {
	addr := startAgent(t)
	t.Setenv("SHOAL_ADDR", addr)
	manifest := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: stuck
spec:
  nodeName: cli-test
  containers:
    - name: c
      image: example/never-pulled
`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustShoal(t, "apply", "-f", manifest)
	if out := mustShoal(t, "delete", "pod", "stuck", "--grace-period", "60"); !strings.Contains(out, "pod/stuck deleted") {
		t.Fatalf("delete output:\n%s", out)
	}
	if out := mustShoal(t, "get", "pods"); !strings.Contains(out, "Terminating") {
		t.Fatalf("a deleted pod on a node should be Terminating:\n%s", out)
	}
	if code, _, errOut := shoal(t, "delete", "pod", "stuck", "--grace-period", "0"); code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("--grace-period 0 without --force: exit %d, %s", code, errOut)
	}
	mustShoal(t, "delete", "pod", "stuck", "--force")
	if code, _, errOut := shoal(t, "get", "pod", "stuck"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("after --force the pod should be gone: exit %d, %s", code, errOut)
	}
}
