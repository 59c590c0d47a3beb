package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIEvents: the leader's scheduler records an Event about a new pod;
// shoal describe shows it under Events, shoal get events lists it, and
// get events -w prints it then follows.
func TestCLIEvents(t *testing.T) {
	addr := startAgent(t)
	t.Setenv("SHOAL_ADDR", addr)
	manifest := filepath.Join(t.TempDir(), "pod.yaml")
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: ev-pod}\nspec:\n  containers: [{name: app, image: busybox}]\n"
	if err := os.WriteFile(manifest, []byte(pod), 0o600); err != nil {
		t.Fatal(err)
	}
	mustShoal(t, "apply", "-f", manifest)
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		out = mustShoal(t, "describe", "pod", "ev-pod")
		if strings.Contains(out, "default-scheduler") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe pod shows no scheduler Event within 30s:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("describe:\n%s", out)
	if !strings.Contains(out, "Events:") || !strings.Contains(out, "Type") || !strings.Contains(out, "Reason") ||
		!(strings.Contains(out, "Scheduled") || strings.Contains(out, "FailedScheduling")) {
		t.Fatalf("describe pod Events section:\n%s", out)
	}
	out = mustShoal(t, "get", "events")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "LAST SEEN") || !strings.Contains(lines[0], "OBJECT") || !strings.Contains(out, "pod/ev-pod") {
		t.Fatalf("get events:\n%s", out)
	}
	out = mustShoal(t, "get", "ev", "--field-selector", "involvedObject.name=ev-pod", "-w", "--watch-timeout", "1")
	if !strings.Contains(out, "pod/ev-pod") {
		t.Fatalf("get ev -w:\n%s", out)
	}
	if code, _, errOut := shoal(t, "get", "ev", "x", "-w"); code == 0 || !strings.Contains(errOut, "-w") {
		t.Fatalf("get ev NAME -w: exit %d, %s", code, errOut)
	}
}
