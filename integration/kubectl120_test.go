package integration

// kubectl 1.20 (Debian's kubernetes-client) speaks SPDY only for exec,
// attach and port-forward: TestKubectlStreamsRoot runs its stream cases
// with it too. It is installed beside kubectl 1.32, not over it (the
// package would replace /usr/bin/kubectl): .ci/run extracts it with
// dpkg-deb -x into /opt/kubectl-1.20; SHOAL_KUBECTL120 names another path.
// Missing, its cases are skipped.

import (
	"os"
	"strings"
	"testing"
)

var kubectl120Bin = func() string {
	if p := os.Getenv("SHOAL_KUBECTL120"); p != "" {
		return p
	}
	return "/opt/kubectl-1.20/usr/bin/kubectl"
}()

// kubectl120Basics: what kubectl 1.20 needs beyond the streams works:
// legacy discovery, tables, and the OpenAPI v2 document in protobuf (its
// explain, apply validation and diff read it).
func kubectl120Basics(t *testing.T, k *kubectlEnv) {
	out, errs, err := k.run("", "api-resources")
	if err != nil || !strings.Contains(out, "deployments") || !strings.Contains(out, "deploy") {
		t.Fatalf("api-resources: %q %q %v", out, errs, err)
	}
	out, errs, err = k.run("", "get", "pods", "-o", "wide")
	if err != nil || !strings.Contains(out, "web") || !strings.Contains(out, "Running") {
		t.Fatalf("get pods -o wide: %q %q %v", out, errs, err)
	}
	out, errs, err = k.run("", "explain", "pods.spec.containers.stdinOnce")
	if err != nil || !strings.Contains(out, "stdinOnce") {
		t.Fatalf("explain: %q %q %v", out, errs, err)
	}
}
