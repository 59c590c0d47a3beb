package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

const (
	patchCMPath = "/api/v1/namespaces/default/configmaps/cm"
	depPath     = "/apis/apps/v1/namespaces/default/deployments/web"
)

func (e *env) patch(path, ctype, body string) response {
	return e.request(http.MethodPatch, path, ctype, body)
}

func (e *env) configMap(name string) *api.ConfigMap {
	e.t.Helper()
	o, err := e.st.Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*api.ConfigMap)
}

func (e *env) deployment(name string) *api.Deployment {
	e.t.Helper()
	o, err := e.st.Get(store.Key{Kind: "Deployment", Namespace: "default", Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*api.Deployment)
}

// TestPatchTypes: each patch type against a ConfigMap through the API,
// and the ways a patch fails, none of which touches the store.
func TestPatchTypes(t *testing.T) {
	const (
		jp = mediaJSONPatch
		mp = mediaMergePatch
		sp = mediaStrategicPatch
	)
	cases := []struct {
		name, ctype, body string
		code              int
		want              map[string]string // data after a success
		mention           string            // in the Status of a failure
	}{
		{name: "json add", ctype: jp, body: `[{"op":"add","path":"/data/b","value":"2"}]`, code: 200, want: map[string]string{"a": "1", "b": "2"}},
		{name: "json test then replace", ctype: jp, body: `[{"op":"test","path":"/data/a","value":"1"},{"op":"replace","path":"/data/a","value":"9"}]`, code: 200, want: map[string]string{"a": "9"}},
		{name: "json remove", ctype: jp + "; charset=utf-8", body: `[{"op":"remove","path":"/data/a"}]`, code: 200, want: nil},
		{name: "merge", ctype: mp, body: `{"data":{"a":null,"c":"3"}}`, code: 200, want: map[string]string{"c": "3"}},
		{name: "strategic", ctype: sp, body: `{"metadata":{"labels":{"x":"y"}},"data":{"d":"4"}}`, code: 200, want: map[string]string{"a": "1", "d": "4"}},
		{name: "json test fails", ctype: jp, body: `[{"op":"test","path":"/data/a","value":"2"}]`, code: 422, mention: "test failed"},
		{name: "json bad pointer", ctype: jp, body: `[{"op":"remove","path":"/data/zz"}]`, code: 422, mention: "/data/zz"},
		{name: "json malformed", ctype: jp, body: `{"op":"add"}`, code: 400, mention: "JSON array"},
		{name: "json unknown op", ctype: jp, body: `[{"op":"frob","path":"/a"}]`, code: 400, mention: "frob"},
		{name: "merge not an object", ctype: mp, body: `[1]`, code: 400, mention: "JSON object"},
		{name: "wrong type after patch", ctype: mp, body: `{"data":{"a":1}}`, code: 422, mention: "data[a]"},
		{name: "unknown field after patch", ctype: mp, body: `{"dta":{}}`, code: 422, mention: "dta"},
		{name: "rename", ctype: mp, body: `{"metadata":{"name":"other"}}`, code: 422, mention: "metadata.name"},
		{name: "invalid label", ctype: mp, body: `{"metadata":{"labels":{"a":"-bad-"}}}`, code: 422, mention: "metadata.labels"},
		{name: "stale resourceVersion", ctype: mp, body: `{"metadata":{"resourceVersion":"1"},"data":{"a":"2"}}`, code: 409, mention: "modified"},
		{name: "uid mismatch", ctype: mp, body: `{"metadata":{"uid":"nope"}}`, code: 409, mention: "uid"},
		{name: "unknown patch type", ctype: "application/json", body: `{}`, code: 415, mention: mediaMergePatch},
		{name: "no patch type", ctype: "", body: `{}`, code: 415, mention: "PATCH"},
		{name: "empty body", ctype: mp, body: ` `, code: 400, mention: "empty"},
		{name: "bad dryRun", ctype: mp, body: `{}`, code: 400, mention: "dryRun"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("cm", map[string]string{"a": "1"})), 201)
			rev0, snap0 := e.snapshot()
			path := patchCMPath
			if c.name == "bad dryRun" {
				path += "?dryRun=Some"
			}
			r := e.patch(path, c.ctype, c.body)
			if r.code != c.code {
				t.Fatalf("HTTP %d, want %d: %s", r.code, c.code, r.body)
			}
			if c.code != 200 {
				st := r.status(t)
				if !strings.Contains(st.Message, c.mention) {
					t.Errorf("message %q does not mention %q", st.Message, c.mention)
				}
				if rev, snap := e.snapshot(); rev != rev0 || !bytes.Equal(snap, snap0) {
					t.Errorf("a failed patch changed the store")
				}
				return
			}
			got := decode[api.ConfigMap](t, r)
			if fmt.Sprint(got.Data) != fmt.Sprint(c.want) || fmt.Sprint(e.configMap("cm").Data) != fmt.Sprint(c.want) {
				t.Errorf("data %v (stored %v), want %v", got.Data, e.configMap("cm").Data, c.want)
			}
			if got.Kind != "ConfigMap" || got.ResourceVersion == "" {
				t.Errorf("answer lacks kind or resourceVersion: %s", r.body)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		e := newEnv(t, func(_ *store.Config, c *ServerConfig) { c.MaxBodyBytes = 100 })
		mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("cm", nil)), 201)
		r := mustCode(t, e.patch(patchCMPath, mp, `{"data":{"a":"`+strings.Repeat("x", 200)+`"}}`), 413)
		if st := r.status(t); !strings.Contains(st.Message, "100") {
			t.Errorf("message %q does not name the limit", st.Message)
		}
	})
	t.Run("absent object", func(t *testing.T) {
		e := newEnv(t)
		mustCode(t, e.patch(patchCMPath, mp, `{}`), 404)
		mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("cm", nil)), 201)
		mustCode(t, e.patch(patchCMPath+"/status", mp, `{}`), 404) // a ConfigMap has no status
	})
}

// TestPatchDeploymentStrategic: what kubectl sends for `set image`,
// `rollout restart` and client-side `apply` merges containers by name,
// and the result is validated like an update.
func TestPatchDeploymentStrategic(t *testing.T) {
	e := newEnv(t)
	mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", "application/yaml", deploymentYAML), 201)
	mustCode(t, e.patch(depPath, mediaStrategicPatch,
		`{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"},{"name":"web","image":"nginx:1.28"}]}}}}`), 200)
	d := e.deployment("web")
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[0].Name != "web" || cs[0].Image != "nginx:1.28" || cs[1].Name != "side" {
		t.Fatalf("containers %+v", cs)
	}
	if cs[1].ImagePullPolicy == "" || cs[0].ImagePullPolicy == "" {
		t.Errorf("patched object was not defaulted: %+v", cs)
	}
	gen := d.Generation
	// kubectl rollout restart.
	mustCode(t, e.patch(depPath, mediaStrategicPatch,
		`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-30T02:00:00Z"}}}}}`), 200)
	d = e.deployment("web")
	if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" || d.Generation != gen+1 {
		t.Errorf("restart: annotations %v generation %d (was %d)", d.Spec.Template.Annotations, d.Generation, gen)
	}
	// kubectl apply (client-side): the last-applied annotation and
	// $setElementOrder, with the container removed by $patch: delete.
	mustCode(t, e.patch(depPath, mediaStrategicPatch,
		`{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\n"}},"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"name":"side","$patch":"delete"}]}}}}`), 200)
	d = e.deployment("web")
	if len(d.Spec.Template.Spec.Containers) != 1 || *d.Spec.Replicas != 3 || d.Annotations["kubectl.kubernetes.io/last-applied-configuration"] == "" {
		t.Errorf("apply: %+v replicas %d annotations %v", d.Spec.Template.Spec.Containers, *d.Spec.Replicas, d.Annotations)
	}
	// kubectl apply switching the strategy: $retainKeys drops the
	// defaulted rollingUpdate, which Recreate does not allow.
	mustCode(t, e.patch(depPath, mediaStrategicPatch, `{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}`), 200)
	if s := e.deployment("web").Spec.Strategy; s.Type != "Recreate" || s.RollingUpdate != nil {
		t.Errorf("strategy %+v", s)
	}
	// Validated as an update: 422 naming the field.
	r := mustCode(t, e.patch(depPath, mediaMergePatch, `{"spec":{"replicas":-1}}`), 422)
	if st := r.status(t); st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Field != "spec.replicas" {
		t.Errorf("422 does not name spec.replicas: %s", r.body)
	}
	// kubectl rollout undo: a JSON patch replacing the template and the
	// annotations.
	mustCode(t, e.patch(depPath, mediaJSONPatch,
		`[{"op":"replace","path":"/spec/template","value":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}},{"op":"replace","path":"/metadata/annotations","value":{"deployment.kubernetes.io/revision":"1"}}]`), 200)
	d = e.deployment("web")
	if d.Spec.Template.Spec.Containers[0].Image != "nginx:1.27" || d.Annotations["deployment.kubernetes.io/revision"] != "1" {
		t.Errorf("undo: %+v %v", d.Spec.Template.Spec.Containers, d.Annotations)
	}
}

// TestPatchStatus: a patch of /status changes the status only; one of the
// object leaves the status alone.
func TestPatchStatus(t *testing.T) {
	e := newEnv(t)
	e.seed(boundPod("p", "n1"))
	path := "/api/v1/namespaces/default/pods/p"
	mustCode(t, e.patch(path+"/status", mediaStrategicPatch,
		`{"spec":{"nodeName":"n2"},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}`), 200)
	o, _ := e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: "p"})
	p := o.(*api.Pod)
	if p.Status.Phase != "Running" || len(p.Status.Conditions) != 1 || p.Spec.NodeName != "n1" {
		t.Fatalf("status patch: phase %q conditions %v node %q", p.Status.Phase, p.Status.Conditions, p.Spec.NodeName)
	}
	mustCode(t, e.patch(path, mediaMergePatch, `{"metadata":{"labels":{"l":"v"}},"status":{"phase":"Failed"}}`), 200)
	o, _ = e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: "p"})
	if p := o.(*api.Pod); p.Status.Phase != "Running" || p.Labels["l"] != "v" {
		t.Errorf("object patch: phase %q labels %v", p.Status.Phase, p.Labels)
	}
}

// patchRaceBackend lets another writer change the object just before the
// first proposals, so that they lose the compare-and-swap.
type patchRaceBackend struct {
	*testBackend
	races atomic.Int64
	race  func()
}

func (b *patchRaceBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if b.races.Add(-1) >= 0 {
		b.race()
	}
	return b.testBackend.Propose(ctx, ops)
}

// TestPatchRetriesOnConflict: a patch that loses a race is applied again
// to the new version (both writes survive); one that keeps losing gives
// up with a 409 after maxPatchAttempts; a patch that names the
// resourceVersion it was made against is not retried.
func TestPatchRetriesOnConflict(t *testing.T) {
	e := newEnv(t)
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("cm", map[string]string{"a": "1"})), 201)
	n := 0
	rb := &patchRaceBackend{testBackend: e.be, race: func() {
		n++
		c := e.configMap("cm").DeepCopyObject().(*api.ConfigMap)
		c.Data[fmt.Sprintf("other%d", n)] = "x"
		if res := e.st.Apply([]store.Op{{Type: store.OpUpdate, Object: c}}); res[0].Err != nil {
			t.Error(res[0].Err)
		}
	}}
	e.srv.prop.backend = rb
	rb.races.Store(1)
	mustCode(t, e.patch(patchCMPath, mediaJSONPatch, `[{"op":"add","path":"/data/b","value":"2"}]`), 200)
	if d := e.configMap("cm").Data; d["b"] != "2" || d["other1"] != "x" || d["a"] != "1" {
		t.Errorf("after one lost race: %v", d)
	}
	rb.races.Store(maxPatchAttempts)
	r := mustCode(t, e.patch(patchCMPath, mediaMergePatch, `{"data":{"c":"3"}}`), 409)
	if _, ok := e.configMap("cm").Data["c"]; ok {
		t.Errorf("a patch that lost every race was applied")
	}
	_ = r
	rb.races.Store(1)
	rv := e.configMap("cm").ResourceVersion
	mustCode(t, e.patch(patchCMPath, mediaMergePatch, `{"metadata":{"resourceVersion":"`+rv+`"},"data":{"d":"4"}}`), 409)
}

// TestPatchNodeRestriction: a node may patch the status of its own pods
// and its own Node, nothing else.
func TestPatchNodeRestriction(t *testing.T) {
	e := newEnv(t)
	e.seed(boundPod("mine", "n1"))
	e.seed(boundPod("theirs", "n2"))
	e.seed(&api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}})
	e.seed(&api.Node{ObjectMeta: api.ObjectMeta{Name: "n2"}})
	h := e.srv.Handler()
	as := func(method, path, ctype, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req = req.WithContext(WithIdentity(req.Context(), Identity{Node: "n1"}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	pods := "/api/v1/namespaces/default/pods/"
	status := `{"status":{"phase":"Running"}}`
	for _, c := range []struct {
		path string
		code int
	}{
		{pods + "mine/status", 200},
		{pods + "theirs/status", 403},
		{pods + "mine", 403},
		{"/api/v1/nodes/n1/status", 200},
		{"/api/v1/nodes/n1", 200},
		{"/api/v1/nodes/n2/status", 403},
	} {
		body := status
		if strings.Contains(c.path, "nodes") {
			body = `{"metadata":{"labels":{"l":"v"}},"status":{"role":"worker"}}`
		}
		if code := as(http.MethodPatch, c.path, mediaMergePatch, body); code != c.code {
			t.Errorf("PATCH %s as n1: %d, want %d", c.path, code, c.code)
		}
	}
	// Nor scale a workload, should a request get past Authorize.
	mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", "application/yaml", deploymentYAML), 201)
	if code := as(http.MethodPatch, depPath+"/scale", mediaMergePatch, `{"spec":{"replicas":9}}`); code != 403 {
		t.Errorf("scale as n1: %d", code)
	}
	// The patch may not move the pod to this node either: the stored pod
	// says where it is bound.
	if code := as(http.MethodPatch, pods+"theirs/status", mediaMergePatch, `{"spec":{"nodeName":"n1"},"status":{"phase":"Failed"}}`); code != 403 {
		t.Errorf("rebinding by status patch: %d", code)
	}
}
