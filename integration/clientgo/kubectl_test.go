package clientgo

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubectlPath is the kubectl the tests run (1.32 on the build machine);
// they skip without it.
const kubectlPath = "/usr/bin/kubectl"

// kubectlTimeout bounds one kubectl run; the machine is shared and slow.
const kubectlTimeout = 2 * time.Minute

// kubectl runs the real kubectl against one agent of a cluster, as a
// user would: the server, the CA and the admin token on the command line,
// an empty kubeconfig and a discovery cache of its own.
type kubectl struct {
	t     *testing.T
	c     *cluster
	agent *agentProc
	home  string
	env   []string
}

func (c *cluster) kubectl(a *agentProc) *kubectl {
	c.t.Helper()
	if _, err := os.Stat(kubectlPath); err != nil {
		c.t.Skipf("%s: %v", kubectlPath, err)
	}
	home := c.t.TempDir()
	return &kubectl{t: c.t, c: c, agent: a, home: home,
		env: []string{"HOME=" + home, "KUBECONFIG=" + filepath.Join(home, "config"), "PATH=/usr/bin:/bin"}}
}

func (k *kubectl) cmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--server", k.c.creds.URL(k.agent.api()), "--certificate-authority", k.c.creds.CAFile,
		"--token", k.c.creds.Token, "--cache-dir", filepath.Join(k.home, "cache"), "--request-timeout", "60s"}, args...)
	cmd := exec.CommandContext(ctx, kubectlPath, full...)
	cmd.Env = k.env
	return cmd
}

// run runs kubectl with stdin and returns its output and error.
func (k *kubectl) run(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := k.cmd(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// must runs kubectl and fails the test if it fails.
func (k *kubectl) must(stdin string, args ...string) string {
	k.t.Helper()
	out, errs, err := k.run(stdin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s (via %s): %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), k.agent.name, err, out, errs)
	}
	return out
}

// hasLine reports whether out has a line whose fields start with want.
func hasLine(out string, want ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(want) && strings.Join(f[:len(want)], " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

// TestKubectlOnCluster runs the real kubectl against a follower voter
// and against a non-voter of a secure three-voter cluster: apply of the
// web example (created, then unchanged, then configured), edit through
// KUBE_EDITOR, get -o wide, get -w following a change made through the
// other agent, and create deployment (which kubectl sends as protobuf).
func TestKubectlOnCluster(t *testing.T) {
	c := startCluster(t, 1)
	leader := c.leader()
	var follower *agentProc
	for _, a := range c.agents[:3] {
		if a != leader {
			follower = a
			break
		}
	}
	example, err := os.ReadFile("../examples/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*agentProc{follower, c.agents[3]} {
		t.Run(a.name, func(t *testing.T) {
			k := c.kubectl(a)
			k.t = t
			ns := "ns-" + a.name
			// (kubectl create namespace|configmap|deployment send
			// protobuf: see the end.)
			k.must("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n", "apply", "-f", "-")
			// apply: created, unchanged, configured.
			out := k.must(string(example), "apply", "-n", ns, "-f", "-")
			for _, want := range []string{"configmap/web-config created", "deployment.apps/web created", "service/web created"} {
				if !strings.Contains(out, want) {
					t.Errorf("first apply: no %q in:\n%s", want, out)
				}
			}
			out = k.must(string(example), "apply", "-n", ns, "-f", "-")
			for _, want := range []string{"configmap/web-config unchanged", "deployment.apps/web unchanged", "service/web unchanged"} {
				if !strings.Contains(out, want) {
					t.Errorf("second apply: no %q in:\n%s", want, out)
				}
			}
			changed := strings.Replace(string(example), "replicas: 3", "replicas: 2", 1)
			out = k.must(changed, "apply", "-n", ns, "-f", "-")
			for _, want := range []string{"configmap/web-config unchanged", "deployment.apps/web configured", "service/web unchanged"} {
				if !strings.Contains(out, want) {
					t.Errorf("apply of a change: no %q in:\n%s", want, out)
				}
			}
			if out := k.must("", "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"); out != "2" {
				t.Errorf("replicas after apply: %q, want 2", out)
			}

			// edit: kubectl GETs, runs the editor on the YAML, PATCHes
			// the difference.
			k.env = append(k.env, `KUBE_EDITOR=sed -i -e "s/replicas: 2/replicas: 4/"`)
			out = k.must("", "edit", "deployment", "web", "-n", ns)
			if !strings.Contains(out, "deployment.apps/web edited") {
				t.Errorf("edit: %q, want deployment.apps/web edited", out)
			}
			if out := k.must("", "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"); out != "4" {
				t.Errorf("replicas after edit: %q, want 4", out)
			}

			// -o wide: the server's table (the columns of shoal get;
			// pods add IP and NODE).
			out = k.must("", "get", "deploy", "-n", ns, "-o", "wide")
			if !hasLine(out, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE") || !hasLine(out, "web", "0/4") {
				t.Errorf("get deploy -o wide:\n%s", out)
			}
			out = k.must("", "get", "pods", "-n", ns, "-o", "wide")
			if !hasLine(out, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE") {
				t.Errorf("get pods -o wide:\n%s", out)
			}

			// get -w: a change made through another agent shows up.
			other := leader
			if a == leader {
				other = follower
			}
			watchConfigMaps(t, k, c.kubectl(other), ns)

			// create deployment: kubectl's typed client sends protobuf
			// whatever discovery says, and Shoal reads JSON and YAML
			// only: 415 with a message that says what to do instead.
			_, errs, err := k.run("", "create", "deployment", "x", "-n", ns, "--image=nginx:1.27")
			if err == nil || !strings.Contains(errs, "application/vnd.kubernetes.protobuf") {
				t.Errorf("create deployment: err %v, stderr %q; want the 415 naming protobuf", err, errs)
			}
			// What works instead: kubectl renders the object, apply sends
			// JSON.
			yaml := k.must("", "create", "deployment", "x", "-n", ns, "--image=nginx:1.27", "--dry-run=client", "-o", "yaml")
			if out := k.must(yaml, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/x created") {
				t.Errorf("create --dry-run=client | apply: %q", out)
			}
		})
	}
}

// watchConfigMaps runs `kubectl get configmaps -w` through k, creates a
// ConfigMap through other and waits for its row.
func watchConfigMaps(t *testing.T, k, other *kubectl, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := k.cmd(ctx, "get", "configmaps", "-n", ns, "-w")
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
	lines := make(chan []string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.Fields(sc.Text())
		}
		io.Copy(io.Discard, stdout)
	}()
	waitRow := func(name string) {
		t.Helper()
		for {
			select {
			case f, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl get -w ended before the row of %s; stderr:\n%s", name, errb.String())
				}
				if len(f) > 0 && f[0] == name {
					return
				}
			case <-ctx.Done():
				t.Fatalf("timed out waiting for the row of %s", name)
			}
		}
	}
	waitRow("web-config")
	other.must("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  k: v\n", "apply", "-n", ns, "-f", "-")
	waitRow("watched")
}
