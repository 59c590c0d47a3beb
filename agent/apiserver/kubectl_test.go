package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// kubectlPath is the kubectl the tests run (1.32 on the build machine);
// they skip without it.
const kubectlPath = "/usr/bin/kubectl"

// kubectlTimeout bounds one kubectl run; the machine is shared and slow.
const kubectlTimeout = 90 * time.Second

// kubectlCmd prepares the real kubectl against e's server with an empty
// configuration and a cache of its own (discovery is fetched afresh).
func (e *env) kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	e.t.Helper()
	if _, err := os.Stat(kubectlPath); err != nil {
		e.t.Skipf("%s: %v", kubectlPath, err)
	}
	dir := e.t.TempDir()
	full := append([]string{"--server", e.ts.URL, "--cache-dir", filepath.Join(dir, "cache"), "--request-timeout", "60s"}, args...)
	cmd := exec.CommandContext(ctx, kubectlPath, full...)
	cmd.Env = []string{"HOME=" + dir, "KUBECONFIG=" + filepath.Join(dir, "config"), "PATH=/usr/bin:/bin"}
	return cmd
}

// kubectl runs kubectl and returns its standard output; it fails the test
// if kubectl fails.
func (e *env) kubectl(args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := e.kubectlCmd(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// mustLines checks that out has a line whose fields are want, in order
// (columns as kubectl aligns them).
func mustLine(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == strings.Join(want, " ") {
			return
		}
	}
	t.Errorf("%s: no line %q in:\n%s", what, strings.Join(want, " "), out)
}

func seedLabeledPod(e *env, name, app string) {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": app}}}
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
	e.seed(p)
}

// TestKubectlReads runs the real kubectl against the server: discovery,
// OpenAPI (apply --validate=strict of the web example, explain), tables
// (get, -o wide, -l, -A), -o yaml, api-resources and version.
func TestKubectlReads(t *testing.T) {
	e := newEnv(t)
	example, err := filepath.Abs("../../integration/examples/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := e.kubectl("apply", "--validate=strict", "-f", example)
	for _, want := range []string{"configmap/web-config created", "deployment.apps/web created", "service/web created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply: no %q in:\n%s", want, out)
		}
	}
	seedLabeledPod(e, "x1", "x")
	seedLabeledPod(e, "y1", "y")

	out = e.kubectl("get", "pods")
	mustLine(t, "get pods", out, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
	mustLine(t, "get pods", out, "x1", "0/1", "Pending", "0", "0s")
	mustLine(t, "get pods", out, "y1", "0/1", "Pending", "0", "0s")

	out = e.kubectl("get", "pods", "-l", "app=x", "-o", "wide")
	mustLine(t, "get pods -l -o wide", out, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE")
	mustLine(t, "get pods -l -o wide", out, "x1", "0/1", "Pending", "0", "0s", "<none>", "<none>")
	if strings.Contains(out, "y1") {
		t.Errorf("get pods -l app=x shows y1:\n%s", out)
	}

	out = e.kubectl("get", "deploy", "-o", "wide")
	mustLine(t, "get deploy -o wide", out, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE")
	mustLine(t, "get deploy -o wide", out, "web", "0/3", "0", "0", "0s")

	out = e.kubectl("get", "svc", "-A")
	mustLine(t, "get svc -A", out, "NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "ENDPOINTS", "AGE")
	mustLine(t, "get svc -A", out, "default", "web", "ClusterIP", "<none>", "80/TCP", "0", "0s")

	out = e.kubectl("get", "svc", "web", "-o", "yaml")
	for _, want := range []string{"apiVersion: v1\n", "kind: Service\n", "  name: web\n", "  - name: http\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("get svc -o yaml: no %q in:\n%s", want, out)
		}
	}

	out = e.kubectl("api-resources")
	mustLine(t, "api-resources", out, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")
	mustLine(t, "api-resources", out, "pods", "po", "v1", "true", "Pod")
	mustLine(t, "api-resources", out, "deployments", "deploy", "apps/v1", "true", "Deployment")
	mustLine(t, "api-resources", out, "nodes", "no", "v1", "false", "Node")
	mustLine(t, "api-resources", out, "secrets", "v1", "true", "Secret")

	out = e.kubectl("explain", "pods.spec")
	for _, want := range []string{"KIND:       Pod", "VERSION:    v1", "containers\t<[]Container>", "nodeName\t<string>"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain pods.spec: no %q in:\n%s", want, out)
		}
	}
	out = e.kubectl("explain", "deployments.spec.strategy.rollingUpdate")
	if !strings.Contains(out, "maxSurge") || !strings.Contains(out, "GROUP:      apps") {
		t.Errorf("explain deployments...rollingUpdate:\n%s", out)
	}

	out = e.kubectl("version")
	if !strings.Contains(out, "Server Version: v1.32.0-shoal+dev") {
		t.Errorf("version:\n%s", out)
	}
}

// TestKubectlApplyUnknownField: kubectl leaves validation to the server,
// which names the unknown field.
func TestKubectlApplyUnknownField(t *testing.T) {
	e := newEnv(t)
	f := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(f, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndatta: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := e.kubectlCmd(ctx, "apply", "--validate=strict", "-f", f)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "datta: unknown field") {
		t.Fatalf("apply of an unknown field: err %v, output:\n%s", err, out)
	}
}

// TestKubectlWatch: kubectl get -w prints the table, then a row for each
// change as it happens.
func TestKubectlWatch(t *testing.T) {
	e := newEnv(t)
	seedLabeledPod(e, "first", "x")
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := e.kubectlCmd(ctx, "get", "pods", "-w")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.Join(strings.Fields(sc.Text()), " ")
		}
		io.Copy(io.Discard, stdout)
	}()
	waitLine := func(want string) {
		t.Helper()
		deadline := time.After(kubectlTimeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl ended before %q; stderr:\n%s", want, errb.String())
				}
				if l == want {
					return
				}
			case <-deadline:
				t.Fatalf("timed out waiting for %q", want)
			}
		}
	}
	waitLine("NAME READY STATUS RESTARTS AGE")
	waitLine("first 0/1 Pending 0 0s")
	seedLabeledPod(e, "second", "x")
	waitLine("second 0/1 Pending 0 0s")
}

// TestKubectlReadOnlyToken: behind the auth middleware, a read-only token
// is enough for kubectl's discovery, OpenAPI, tables and explain; without a
// token kubectl is refused, and the read-only role cannot apply.
func TestKubectlReadOnlyToken(t *testing.T) {
	e := newEnv(t)
	seedLabeledPod(e, "x1", "x")
	// client-go sends a bearer token only over TLS.
	auth := httptest.NewTLSServer(NewAuthHandler(e.srv.Handler(), AuthConfig{
		Auth:   fakeAuth{tokens: testTokens},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(auth.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: auth.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	ea := *e
	ea.ts = auth
	ro := []string{"--certificate-authority", caFile, "--token", "ro-token"}
	mustLine(t, "get pods", ea.kubectl(append(ro, "get", "pods")...), "x1", "0/1", "Pending", "0", "0s")
	mustLine(t, "api-resources", ea.kubectl(append(ro, "api-resources")...), "pods", "po", "v1", "true", "Pod")
	if out := ea.kubectl(append(ro, "explain", "pods.spec.containers")...); !strings.Contains(out, "image\t<string>") {
		t.Errorf("explain:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	out, err := ea.kubectlCmd(ctx, "--certificate-authority", caFile, "get", "pods").CombinedOutput()
	// (kubectl answers a 401 by asking for a user name; stdin is empty.)
	if err == nil || strings.Contains(string(out), "x1") {
		t.Errorf("without a token: err %v:\n%s", err, out)
	}
	f := filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(f, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = ea.kubectlCmd(ctx, append(ro, "apply", "-f", f)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Forbidden") {
		t.Errorf("apply as read-only: err %v:\n%s", err, out)
	}
}
