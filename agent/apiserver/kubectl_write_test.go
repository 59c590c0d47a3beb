package apiserver

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// lastApplied is the annotation kubectl's client-side apply writes, as it
// sends it (nginx:1.27, then nginx:1.28).
const lastApplied = `{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{},\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"image\":\"nginx:1.27\",\"name\":\"web\"}]}}}}\n`

// TestKubectlWireRequests replays, in order, the requests kubectl 1.32
// sends for apply (client-side, then server-side), label, annotate, scale,
// set image, rollout restart, rollout undo, patch --type=json, label
// --resource-version, delete --dry-run=server and delete --cascade=orphan
// (captured with a logging proxy in front of a Server), and checks what
// each did.
func TestKubectlWireRequests(t *testing.T) {
	e := newEnv(t)
	deps := "/apis/apps/v1/namespaces/default/deployments"
	applied28 := strings.ReplaceAll(lastApplied, "1.27", "1.28")
	steps := []struct {
		name, method, path, ctype, body string
		code                            int
		check                           func(d *api.Deployment) bool
	}{
		{"apply create", "POST", deps + "?fieldManager=kubectl-client-side-apply&fieldValidation=Ignore", "application/json",
			`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"` + lastApplied + `"},"name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx:1.27","name":"web"}]}}}}`,
			201, func(d *api.Deployment) bool { return *d.Spec.Replicas == 2 }},
		{"label", "PATCH", depPath + "?fieldManager=kubectl-label", mediaMergePatch, `{"metadata":{"labels":{"team":"x"}}}`,
			200, func(d *api.Deployment) bool { return d.Labels["team"] == "x" }},
		{"annotate", "PATCH", depPath + "?fieldManager=kubectl-annotate", mediaMergePatch, `{"metadata":{"annotations":{"note":"hi"}}}`,
			200, func(d *api.Deployment) bool { return d.Annotations["note"] == "hi" }},
		{"scale", "PATCH", depPath + "/scale", mediaMergePatch, `{"spec":{"replicas":5}}`,
			200, func(d *api.Deployment) bool { return *d.Spec.Replicas == 5 }},
		{"rollout restart", "PATCH", depPath + "?fieldManager=kubectl-rollout", mediaStrategicPatch,
			`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-30T01:42:58Z"}}}}}`,
			200, func(d *api.Deployment) bool {
				return d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "2026-11-30T01:42:58Z"
			}},
		{"apply configure", "PATCH", depPath + "?fieldManager=kubectl-client-side-apply&fieldValidation=Ignore", mediaStrategicPatch,
			`{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"` + applied28 + `"}},"spec":{"replicas":2,"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"image":"nginx:1.28","name":"web"}]}}}}`,
			200, func(d *api.Deployment) bool {
				return *d.Spec.Replicas == 2 && d.Spec.Template.Spec.Containers[0].Image == "nginx:1.28" && d.Labels["team"] == "x"
			}},
		{"apply --server-side", "PATCH", depPath + "?fieldManager=kubectl&fieldValidation=Ignore&force=false", mediaApplyPatch,
			`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx:1.28","name":"web"}]}}}}`,
			200, func(d *api.Deployment) bool { return *d.Spec.Replicas == 3 }},
		{"apply --server-side, last-applied", "PATCH", depPath + "?fieldManager=kubectl-last-applied&fieldValidation=Ignore", mediaApplyPatch,
			`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"` + applied28 + `"},"name":"web","namespace":"default"}}`,
			200, func(d *api.Deployment) bool { return *d.Spec.Replicas == 3 && d.Annotations["note"] == "hi" }},
		{"set image", "PATCH", depPath + "?fieldManager=kubectl-set", mediaStrategicPatch,
			`{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"image":"nginx:1.29","name":"web"}]}}}}`,
			200, func(d *api.Deployment) bool { return d.Spec.Template.Spec.Containers[0].Image == "nginx:1.29" }},
		{"rollout undo", "PATCH", depPath, mediaJSONPatch,
			`[{"op":"replace","path":"/spec/template","value":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.21","resources":{},"imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30}}},{"op":"replace","path":"/metadata/annotations","value":{"deployment.kubernetes.io/revision":"1"}}]`,
			200, func(d *api.Deployment) bool {
				return d.Spec.Template.Spec.Containers[0].Image == "nginx:1.21" && d.Annotations["deployment.kubernetes.io/revision"] == "1" && d.Annotations["note"] == ""
			}},
		{"patch --type=json test fails", "PATCH", depPath + "?fieldManager=kubectl-patch", mediaJSONPatch, `[{"op":"test","path":"/spec/replicas","value":9}]`, 422, nil},
		{"label --resource-version", "PATCH", depPath + "?fieldManager=kubectl-label", mediaMergePatch, `{"metadata":{"labels":{"a":"b"},"resourceVersion":"1"}}`, 409, nil},
		{"delete --dry-run=server", "DELETE", depPath, "application/json", `{"propagationPolicy":"Background","dryRun":["All"]}`,
			200, func(d *api.Deployment) bool { return d != nil }},
		{"delete --cascade=orphan", "DELETE", depPath, "application/json", `{"propagationPolicy":"Orphan"}`,
			200, func(d *api.Deployment) bool { return d == nil }},
	}
	for _, s := range steps {
		r := e.request(s.method, s.path, s.ctype, s.body)
		if r.code != s.code {
			t.Fatalf("%s: HTTP %d, want %d: %s", s.name, r.code, s.code, r.body)
		}
		if s.check == nil {
			continue
		}
		var d *api.Deployment
		if o, err := e.st.Get(store.Key{Kind: "Deployment", Namespace: "default", Name: "web"}); err == nil {
			d = o.(*api.Deployment)
		}
		if !s.check(d) {
			t.Fatalf("%s: the deployment is not as expected: %+v", s.name, d)
		}
	}
}

// TestKubectlWrites runs the real kubectl against a Server. It needs
// discovery (/api), which this package may not serve yet: it skips then.
func TestKubectlWrites(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	e := newEnv(t)
	if r := e.get("/api"); r.code != http.StatusOK {
		t.Skipf("the Server does not serve discovery (/api: HTTP %d)", r.code)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		ctxArgs := append([]string{"-s", e.ts.URL, "--request-timeout=30s"}, args...)
		cmd := exec.Command(kubectl, ctxArgs...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HOME="+dir)
		cmd.Stdin = strings.NewReader(stdin)
		done := make(chan struct{})
		var out []byte
		var runErr error
		go func() { out, runErr = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			<-done
			t.Fatalf("kubectl %v did not finish in 2 minutes", args)
		}
		return string(out), runErr
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return out
	}
	dep := deploymentYAML
	must(dep, "apply", "--validate=false", "-f", "-")
	must("", "label", "deployment", "web", "team=x")
	must("", "annotate", "deployment", "web", "note=hi")
	must("", "scale", "deployment", "web", "--replicas=5")
	must("", "rollout", "restart", "deployment", "web")
	must("", "set", "image", "deployment/web", "web=nginx:1.29")
	must(strings.Replace(dep, "replicas: 2", "replicas: 3", 1), "apply", "--validate=false", "-f", "-")
	must(dep, "apply", "--server-side", "--validate=false", "-f", "-")
	d := e.deployment("web")
	if *d.Spec.Replicas != 2 || d.Labels["team"] != "x" || d.Annotations["note"] != "hi" ||
		d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("after kubectl's writes: replicas %d labels %v annotations %v template annotations %v",
			*d.Spec.Replicas, d.Labels, d.Annotations, d.Spec.Template.Annotations)
	}
	if out, err := run("", "patch", "deployment", "web", "--type=json", "-p", `[{"op":"test","path":"/spec/replicas","value":9}]`); err == nil || !strings.Contains(out, "test failed") {
		t.Errorf("a failing JSON patch test: %v %s", err, out)
	}
	must("", "delete", "deployment", "web", "--dry-run=server")
	e.deployment("web")
	must("", "delete", "deployment", "web", "--cascade=orphan")
	if _, err := e.st.Get(store.Key{Kind: "Deployment", Namespace: "default", Name: "web"}); err == nil {
		t.Errorf("kubectl delete left the deployment")
	}
}
