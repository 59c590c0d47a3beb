package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

func TestNewServerConfig(t *testing.T) {
	st := store.New(store.DefaultConfig())
	be := &testBackend{st: st}
	cases := []struct {
		name string
		cfg  ServerConfig
		want string
	}{
		{"no backend", ServerConfig{Reader: st}, "ServerConfig.Backend"},
		{"no reader", ServerConfig{Backend: be}, "ServerConfig.Reader"},
		{"negative body", ServerConfig{Backend: be, Reader: st, MaxBodyBytes: -1}, "ServerConfig.MaxBodyBytes"},
		{"negative watch", ServerConfig{Backend: be, Reader: st, MaxWatchTimeout: -1}, "ServerConfig.MaxWatchTimeout"},
		{"negative request", ServerConfig{Backend: be, Reader: st, RequestTimeout: -1}, "ServerConfig.RequestTimeout"},
	}
	for _, c := range cases {
		if _, err := NewServer(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want one naming %s", c.name, err, c.want)
		}
	}
	s, err := NewServer(ServerConfig{Backend: be, Reader: st})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxBodyBytes != 3<<20 || s.cfg.MaxWatchTimeout != DefaultMaxWatchTimeout || s.cfg.Clock == nil {
		t.Errorf("defaults not filled: %+v", s.cfg)
	}
}

func TestResolve(t *testing.T) {
	cases := []struct {
		group, rest string
		kind, ns    string
		name        string
		status      bool
		notFound    bool
	}{
		{rest: "pods", kind: "Pod"},
		{rest: "namespaces/default/pods", kind: "Pod", ns: "default"},
		{rest: "namespaces/default/pods/web", kind: "Pod", ns: "default", name: "web"},
		{rest: "namespaces/default/pods/web/status", kind: "Pod", ns: "default", name: "web", status: true},
		{rest: "namespaces", kind: "Namespace"},
		{rest: "namespaces/default", kind: "Namespace", name: "default"},
		{rest: "namespaces/default/status", kind: "Namespace", name: "default", status: true},
		{rest: "nodes/n1", kind: "Node", name: "n1"},
		{rest: "nodes/n1/status", kind: "Node", name: "n1", status: true},
		{group: "apps", rest: "namespaces/x/deployments/web", kind: "Deployment", ns: "x", name: "web"},
		{group: "apps", rest: "deployments", kind: "Deployment"},
		{rest: "pods/web", notFound: true},                               // namespaced object without namespace
		{rest: "namespaces/default/nodes", notFound: true},               // cluster-scoped under a namespace
		{rest: "deployments", notFound: true},                            // wrong group
		{group: "apps", rest: "pods", notFound: true},                    // wrong group
		{rest: "widgets", notFound: true},                                // unknown resource
		{rest: "namespaces/default/pods/web/logs", notFound: true},       // unknown subresource
		{rest: "namespaces/default/configmaps/c/status", notFound: true}, // no status
		{rest: "namespaces/default/pods/web/status/x", notFound: true},
		{rest: "namespaces//pods", notFound: true},
		{rest: "", notFound: true},
		{rest: "Pods", notFound: true},
	}
	for _, c := range cases {
		tg, serr := resolve(c.group, "v1", c.rest)
		if c.notFound {
			if serr == nil || serr.Code() != 404 {
				t.Errorf("%s/%s: got %+v, %v; want 404", c.group, c.rest, tg, serr)
			}
			continue
		}
		if serr != nil {
			t.Errorf("%s/%s: %v", c.group, c.rest, serr)
			continue
		}
		if tg.info.Kind != c.kind || tg.namespace != c.ns || tg.name != c.name || tg.status != c.status {
			t.Errorf("%s/%s: got %s %q %q %v", c.group, c.rest, tg.info.Kind, tg.namespace, tg.name, tg.status)
		}
	}
	if _, serr := resolve("apps", "v2", "deployments"); serr == nil || serr.Code() != 404 {
		t.Errorf("version v2: %v, want 404", serr)
	}
	_, serr := resolve("", "v1", "widgets")
	if !strings.Contains(serr.Error(), `"widgets"`) {
		t.Errorf("unknown resource message does not name it: %v", serr)
	}
}

func TestConfigMapLifecycle(t *testing.T) {
	e := newEnv(t)
	base := "/api/v1/namespaces/default/configmaps"
	created := decode[api.ConfigMap](t, mustCode(t, e.post(base, configMapJSON("cfg", map[string]string{"a": "1"})), 201))
	m := created.ObjectMeta
	if m.Namespace != "default" || m.ResourceVersion == "" || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(m.UID) {
		t.Errorf("created metadata: %+v", m)
	}
	if !m.CreationTimestamp.Equal(testNow) {
		t.Errorf("creationTimestamp %v, want the clock's %v", m.CreationTimestamp, testNow)
	}
	if created.Kind != "ConfigMap" || created.APIVersion != "v1" {
		t.Errorf("type meta %+v", created.TypeMeta)
	}

	got := decode[api.ConfigMap](t, mustCode(t, e.get(base+"/cfg"), 200))
	if got.Data["a"] != "1" || got.ResourceVersion != m.ResourceVersion {
		t.Errorf("get: %+v", got)
	}

	// Update against the current version.
	got.Data["a"] = "2"
	upd := decode[api.ConfigMap](t, mustCode(t, e.put(base+"/cfg", mustJSON(t, got)), 200))
	if upd.Data["a"] != "2" || upd.ResourceVersion == got.ResourceVersion || upd.UID != m.UID || !upd.CreationTimestamp.Equal(testNow) {
		t.Errorf("update: %+v", upd)
	}
	// The same stale version again: 409 Conflict.
	st := mustCode(t, e.put(base+"/cfg", mustJSON(t, got)), 409).status(t)
	if st.Reason != api.ReasonConflict || !strings.Contains(st.Message, `configmaps "cfg"`) {
		t.Errorf("stale update: %+v", st)
	}
	// Without a resourceVersion the update applies to the current version,
	// and the server-owned fields survive.
	got.ResourceVersion, got.UID = "", ""
	got.Data["a"] = "3"
	upd2 := decode[api.ConfigMap](t, mustCode(t, e.put(base+"/cfg", mustJSON(t, got)), 200))
	if upd2.Data["a"] != "3" || upd2.UID != m.UID {
		t.Errorf("unconditional update: %+v", upd2)
	}

	list := decode[struct {
		api.TypeMeta
		Metadata api.ListMeta    `json:"metadata"`
		Items    []api.ConfigMap `json:"items"`
	}](t, mustCode(t, e.get(base), 200))
	if list.Kind != "ConfigMapList" || list.APIVersion != "v1" || len(list.Items) != 1 || list.Metadata.ResourceVersion != upd2.ResourceVersion {
		t.Errorf("list: %+v", list)
	}

	deleted := decode[api.ConfigMap](t, mustCode(t, e.del(base+"/cfg"), 200))
	if deleted.Name != "cfg" || deleted.Data["a"] != "3" {
		t.Errorf("delete returned %+v", deleted)
	}
	st = mustCode(t, e.get(base+"/cfg"), 404).status(t)
	if st.Reason != api.ReasonNotFound || st.Message != `configmaps "cfg" not found` || st.Details.Name != "cfg" {
		t.Errorf("get after delete: %+v", st)
	}
	mustCode(t, e.del(base+"/cfg"), 404)
	mustCode(t, e.put(base+"/cfg", mustJSON(t, got)), 404)

	// An empty list encodes items as [], not null.
	if r := mustCode(t, e.get(base), 200); !strings.Contains(string(r.body), `"items":[]`) {
		t.Errorf("empty list: %s", r.body)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeploymentYAMLDefaultsAndStatus(t *testing.T) {
	e := newEnv(t)
	base := "/apis/apps/v1/namespaces/default/deployments"
	r := mustCode(t, e.request(http.MethodPost, base, "application/yaml", deploymentYAML), 201)
	d := decode[api.Deployment](t, r)
	if d.Generation != 1 || d.Spec.Strategy.Type == "" {
		t.Errorf("defaults or generation missing: generation %d strategy %+v", d.Generation, d.Spec.Strategy)
	}
	// No Content-Type at all is accepted too.
	mustCode(t, e.request(http.MethodPost, base, "", strings.Replace(deploymentYAML, "name: web\n  labels", "name: web2\n  labels", 1)), 201)

	// The status subresource changes only the status.
	d.Status.Replicas = 2
	d.Spec.Replicas = ptr[int32](7) // ignored by /status
	r = mustCode(t, e.put(base+"/web/status", mustJSON(t, d)), 200)
	got := decode[api.Deployment](t, r)
	if got.Status.Replicas != 2 || *got.Spec.Replicas != 2 || got.Generation != 1 {
		t.Errorf("status update: status %+v replicas %d generation %d", got.Status, *got.Spec.Replicas, got.Generation)
	}
	gs := decode[api.Deployment](t, mustCode(t, e.get(base+"/web/status"), 200))
	if gs.Status.Replicas != 2 {
		t.Errorf("GET status: %+v", gs.Status)
	}
	// A spec update keeps the status and bumps the generation.
	got.Spec.Replicas = ptr[int32](3)
	got.Status = api.DeploymentStatus{}
	r = mustCode(t, e.put(base+"/web", mustJSON(t, got)), 200)
	got = decode[api.Deployment](t, r)
	if got.Status.Replicas != 2 || got.Generation != 2 || *got.Spec.Replicas != 3 {
		t.Errorf("spec update: status %+v generation %d", got.Status, got.Generation)
	}
	// Immutable selector: 422 naming the field.
	got.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
	got.Spec.Template.Labels = map[string]string{"app": "other"}
	st := mustCode(t, e.put(base+"/web", mustJSON(t, got)), 422).status(t)
	if st.Reason != api.ReasonInvalid || !hasCause(st, "spec.selector") {
		t.Errorf("selector change: %+v", st)
	}
}

func ptr[T any](v T) *T { return &v }

func hasCause(st api.Status, field string) bool {
	if st.Details == nil {
		return false
	}
	for _, c := range st.Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

func TestInvalidMessage(t *testing.T) {
	e := newEnv(t)
	bad := strings.Replace(deploymentYAML, "replicas: 2", "replicas: -1", 1)
	st := mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", "application/yaml", bad), 422).status(t)
	if !strings.HasPrefix(st.Message, `Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1`) {
		t.Errorf("message: %q", st.Message)
	}
	if st.Details == nil || st.Details.Kind != "Deployment" || st.Details.Group != "apps" || st.Details.Name != "web" || len(st.Details.Causes) != 1 {
		t.Fatalf("details: %+v", st.Details)
	}
	c := st.Details.Causes[0]
	if c.Field != "spec.replicas" || c.Type != "FieldInvalid" || !strings.HasPrefix(c.Message, "Invalid value: -1") {
		t.Errorf("cause: %+v", c)
	}
}

func TestGenerateName(t *testing.T) {
	e := newEnv(t)
	body := `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"generateName":"job-"}}`
	re := regexp.MustCompile(`^job-[a-z0-9]{5}$`)
	seen := map[string]bool{}
	for range 20 {
		cm := decode[api.ConfigMap](t, mustCode(t, e.post("/api/v1/namespaces/default/configmaps", body), 201))
		if !re.MatchString(cm.Name) || seen[cm.Name] {
			t.Fatalf("generated name %q (seen before: %v)", cm.Name, seen[cm.Name])
		}
		seen[cm.Name] = true
	}
	long := strings.Repeat("a", 70)
	if n := api.GenerateName(long); len(n) != api.GeneratedNameMaxLength || !strings.HasPrefix(n, long[:58]) {
		t.Errorf("long base: %q (%d)", n, len(n))
	}
}

// badRequests is a batch of requests that must all fail without touching
// the store.
func badRequests(t *testing.T, e *env) {
	ns := "/api/v1/namespaces/default"
	apps := "/apis/apps/v1/namespaces/default"
	huge := `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"big"},"data":{"x":"` + strings.Repeat("x", 3<<20) + `"}}`
	mustCode(t, e.post(ns+"/configmaps", configMapJSON("taken", nil)), 201)
	rev0, snap0 := e.snapshot()
	cases := []struct {
		name, method, path, ctype, body string
		code                            int
		reason                          api.StatusReason
		mention                         string
	}{
		{"malformed json", "POST", ns + "/configmaps", "application/json", `{"kind":`, 400, api.ReasonBadRequest, "ConfigMap"},
		{"malformed yaml", "POST", ns + "/configmaps", "application/yaml", "kind: [", 400, api.ReasonBadRequest, ""},
		{"unknown field", "POST", ns + "/configmaps", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"dta":{}}`, 400, api.ReasonBadRequest, "dta"},
		{"wrong type", "POST", ns + "/configmaps", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"data":{"a":1}}`, 400, api.ReasonBadRequest, "data[a]"},
		{"kind mismatch", "POST", ns + "/configmaps", "", `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"x"}}`, 400, api.ReasonBadRequest, "kind"},
		{"apiVersion mismatch", "POST", apps + "/deployments", "application/yaml", strings.Replace(deploymentYAML, "apps/v1", "v1", 1), 400, api.ReasonBadRequest, "apiVersion"},
		{"namespace mismatch", "POST", ns + "/configmaps", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"other"}}`, 400, api.ReasonBadRequest, "metadata.namespace"},
		{"namespace on cluster kind", "POST", "/api/v1/nodes", "", `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n","namespace":"default"}}`, 400, api.ReasonBadRequest, "metadata.namespace"},
		{"name mismatch", "PUT", ns + "/configmaps/taken", "", configMapJSON("other", nil), 400, api.ReasonBadRequest, "metadata.name"},
		{"empty body", "POST", ns + "/configmaps", "", "", 400, api.ReasonBadRequest, "empty"},
		{"two documents", "POST", ns + "/configmaps", "application/yaml", "kind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n", 400, api.ReasonBadRequest, ""},
		{"resourceVersion on create", "POST", ns + "/configmaps", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","resourceVersion":"3"}}`, 400, api.ReasonBadRequest, "metadata.resourceVersion"},
		{"bad resourceVersion on update", "PUT", ns + "/configmaps/taken", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"taken","resourceVersion":"abc"}}`, 400, api.ReasonBadRequest, "metadata.resourceVersion"},
		{"invalid name", "POST", ns + "/configmaps", "", configMapJSON("Not_Valid", nil), 422, api.ReasonInvalid, "metadata.name"},
		{"missing name", "POST", ns + "/configmaps", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{}}`, 422, api.ReasonInvalid, "metadata.name"},
		{"invalid deployment", "POST", apps + "/deployments", "application/yaml", strings.Replace(deploymentYAML, "replicas: 2", "replicas: -1", 1), 422, api.ReasonInvalid, "spec.replicas"},
		{"no such namespace", "POST", "/api/v1/namespaces/nope/configmaps", "", configMapJSON("x", nil), 404, api.ReasonNotFound, `namespaces "nope" not found`},
		{"already exists", "POST", ns + "/configmaps", "", configMapJSON("taken", nil), 409, api.ReasonAlreadyExists, `configmaps "taken" already exists`},
		{"stale update", "PUT", ns + "/configmaps/taken", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"taken","resourceVersion":"1"}}`, 409, api.ReasonConflict, "modified"},
		{"uid mismatch", "PUT", ns + "/configmaps/taken", "", `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"taken","uid":"nope"}}`, 409, api.ReasonConflict, "uid"},
		{"update absent", "PUT", ns + "/configmaps/absent", "", configMapJSON("absent", nil), 404, api.ReasonNotFound, `configmaps "absent" not found`},
		{"delete absent", "DELETE", ns + "/configmaps/absent", "", "", 404, api.ReasonNotFound, "absent"},
		{"delete stale", "DELETE", ns + "/configmaps/taken", "application/json", `{"preconditions":{"resourceVersion":"1"}}`, 409, api.ReasonConflict, "taken"},
		{"delete bad rv", "DELETE", ns + "/configmaps/taken", "application/json", `{"preconditions":{"resourceVersion":"x"}}`, 400, api.ReasonBadRequest, "preconditions.resourceVersion"},
		{"delete wrong uid", "DELETE", ns + "/configmaps/taken", "application/json", `{"preconditions":{"uid":"x"}}`, 409, api.ReasonConflict, "uid"},
		{"delete unknown field", "DELETE", ns + "/configmaps/taken", "application/json", `{"gracePeriod":3}`, 400, api.ReasonBadRequest, "gracePeriod"},
		{"delete not-json body", "DELETE", ns + "/configmaps/taken", "application/json", `nope`, 400, api.ReasonBadRequest, "DeleteOptions"},
		{"delete non-empty namespace", "DELETE", "/api/v1/namespaces/default", "", "", 409, api.ReasonConflict, "configmaps/taken"},
		{"content type", "POST", ns + "/configmaps", "text/plain", configMapJSON("x", nil), 415, api.ReasonUnsupportedMediaType, "text/plain"},
		{"too large", "POST", ns + "/configmaps", "", huge, 413, api.ReasonRequestEntityTooLarge, "3145728"},
		{"unknown resource", "GET", "/api/v1/namespaces/default/widgets", "", "", 404, api.ReasonNotFound, "widgets"},
		{"wrong group", "POST", "/api/v1/namespaces/default/deployments", "application/yaml", deploymentYAML, 404, api.ReasonNotFound, "deployments"},
		{"patch without a patch type", "PATCH", ns + "/configmaps/taken", "", "{}", 415, api.ReasonUnsupportedMediaType, "PATCH"},
		{"delete collection", "DELETE", ns + "/configmaps", "", "", 405, api.ReasonMethodNotAllowed, "DELETE"},
		{"post all namespaces", "POST", "/api/v1/configmaps", "", configMapJSON("x", nil), 405, api.ReasonMethodNotAllowed, "POST"},
		{"post status", "POST", ns + "/configmaps/taken/status", "", "{}", 404, api.ReasonNotFound, ""},
		{"bad label selector", "GET", ns + "/configmaps?labelSelector=a%20in%20(", "", "", 400, api.ReasonBadRequest, "labelSelector"},
		{"bad field selector", "GET", ns + "/configmaps?fieldSelector=%3D%3D", "", "", 400, api.ReasonBadRequest, "fieldSelector"},
		{"unsupported field", "GET", ns + "/configmaps?fieldSelector=spec.nodeName%3Dx", "", "", 400, api.ReasonBadRequest, "spec.nodeName"},
		{"bad stale", "GET", ns + "/configmaps?stale=maybe", "", "", 400, api.ReasonBadRequest, "stale"},
		{"bad watch", "GET", ns + "/configmaps?watch=maybe", "", "", 400, api.ReasonBadRequest, "watch"},
		{"unknown path", "GET", "/nothing/here", "", "", 404, api.ReasonNotFound, "/nothing/here"},
		{"healthz post", "POST", "/healthz", "", "", 405, api.ReasonMethodNotAllowed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.request(c.method, c.path, c.ctype, c.body)
			if r.code != c.code {
				t.Fatalf("HTTP %d, want %d: %.300s", r.code, c.code, r.body)
			}
			st := r.status(t)
			if st.Reason != c.reason || st.Status != api.StatusFailure || st.APIVersion != "v1" {
				t.Errorf("status %+v, want reason %s", st, c.reason)
			}
			if !strings.Contains(st.Message, c.mention) {
				t.Errorf("message %q does not mention %q", st.Message, c.mention)
			}
			if c.code == 405 && r.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
	rev1, snap1 := e.snapshot()
	if rev1 != rev0 || string(snap1) != string(snap0) {
		t.Errorf("bad requests changed the store: revision %d -> %d", rev0, rev1)
	}
}

func TestBadRequestsLeaveStoreUnchanged(t *testing.T) {
	e := newEnv(t)
	badRequests(t, e)
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(_ *store.Config, c *ServerConfig) { c.MaxBodyBytes = 1000 })
	ok := configMapJSON("fits", map[string]string{"x": strings.Repeat("y", 900)})
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", ok), 201)
	// Exactly the limit passes the size check; one byte more does not.
	pad := func(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }
	exact := configMapJSON("exact", nil)
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", pad(exact, 1000)), 201)
	r := mustCode(t, e.post("/api/v1/namespaces/default/configmaps", pad(configMapJSON("over", nil), 1001)), 413)
	if st := r.status(t); st.Reason != api.ReasonRequestEntityTooLarge {
		t.Errorf("%+v", st)
	}
	// Without a Content-Length (chunked), MaxBytesReader catches it.
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/namespaces/default/configmaps", strings.NewReader(pad(configMapJSON("chunked", nil), 1001)))
	req.ContentLength = -1
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked over the limit: %d", resp.StatusCode)
	}
}

func TestDefaultBodyLimitIs3MiB(t *testing.T) {
	e := newEnv(t)
	// A body of exactly 3 MiB + 1 byte is refused before decoding.
	body := configMapJSON("x", nil)
	body += strings.Repeat(" ", 3<<20+1-len(body))
	st := mustCode(t, e.post("/api/v1/namespaces/default/configmaps", body), 413).status(t)
	if !strings.Contains(st.Message, "3145728") {
		t.Errorf("message %q does not give the limit", st.Message)
	}
	body = body[:3<<20]
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", body), 201)
}

func TestClusterScopedAndNamespaces(t *testing.T) {
	e := newEnv(t)
	mustCode(t, e.post("/api/v1/namespaces", `{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"team"}}`), 201)
	mustCode(t, e.post("/api/v1/namespaces/team/configmaps", configMapJSON("c", nil)), 201)
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("c", nil)), 201)

	// All-namespace list, sorted by namespace.
	list := decode[struct {
		Items []api.ConfigMap `json:"items"`
	}](t, mustCode(t, e.get("/api/v1/configmaps"), 200))
	if len(list.Items) != 2 || list.Items[0].Namespace != "default" || list.Items[1].Namespace != "team" {
		t.Errorf("all namespaces: %+v", list.Items)
	}

	node := `{"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","labels":{"zone":"a"}},"status":{"role":"worker"}}`
	mustCode(t, e.post("/api/v1/nodes", node), 201)
	n := decode[api.Node](t, mustCode(t, e.get("/api/v1/nodes/n1"), 200))
	if n.Namespace != "" || n.Status.Role != "worker" {
		t.Errorf("node: %+v", n)
	}
	n.Status.Role = "voter"
	mustCode(t, e.put("/api/v1/nodes/n1/status", mustJSON(t, n)), 200)
	if n := decode[api.Node](t, mustCode(t, e.get("/api/v1/nodes/n1"), 200)); n.Status.Role != "voter" {
		t.Errorf("node status: %+v", n.Status)
	}
	nsObj := decode[api.Namespace](t, mustCode(t, e.get("/api/v1/namespaces/team/status"), 200))
	if nsObj.Name != "team" {
		t.Errorf("namespace status: %+v", nsObj)
	}

	st := mustCode(t, e.del("/api/v1/namespaces/team"), 409).status(t)
	if !strings.Contains(st.Message, "configmaps/c") {
		t.Errorf("non-empty namespace: %q", st.Message)
	}
	mustCode(t, e.del("/api/v1/namespaces/team/configmaps/c"), 200)
	mustCode(t, e.del("/api/v1/namespaces/team"), 200)
	mustCode(t, e.get("/api/v1/namespaces/team"), 404)
	mustCode(t, e.del("/api/v1/nodes/n1"), 200)
}

func TestListSelectors(t *testing.T) {
	e := newEnv(t)
	for _, p := range []struct{ name, app string }{{"a", "web"}, {"b", "web"}, {"c", "db"}} {
		mustCode(t, e.post("/api/v1/namespaces/default/pods", fmt.Sprintf(podJSON, p.name, p.app)), 201)
	}
	names := func(path string) string {
		l := decode[struct {
			Items []api.Pod `json:"items"`
		}](t, mustCode(t, e.get(path), 200))
		var s []string
		for _, p := range l.Items {
			s = append(s, p.Name)
		}
		return strings.Join(s, ",")
	}
	cases := map[string]string{
		"/api/v1/namespaces/default/pods":                                      "a,b,c",
		"/api/v1/namespaces/default/pods?labelSelector=app%3Dweb":              "a,b",
		"/api/v1/namespaces/default/pods?labelSelector=app%20notin%20(web)":    "c",
		"/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Db":      "b",
		"/api/v1/pods?labelSelector=app%3Ddb&fieldSelector=metadata.name!%3Dx": "c",
		"/api/v1/namespaces/default/pods?stale=true":                           "a,b,c",
	}
	for path, want := range cases {
		if got := names(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

func TestReadBarrier(t *testing.T) {
	e := newEnv(t)
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("c", nil)), 201)
	for _, path := range []string{"/api/v1/namespaces/default/configmaps/c", "/api/v1/namespaces/default/configmaps"} {
		before := e.be.barriers.Load()
		mustCode(t, e.get(path), 200)
		if e.be.barriers.Load() != before+1 {
			t.Errorf("%s: no read barrier", path)
		}
		before = e.be.barriers.Load()
		mustCode(t, e.get(path+"?stale=true"), 200)
		if e.be.barriers.Load() != before {
			t.Errorf("%s?stale=true: read barrier taken", path)
		}
	}
	e.be.failWith(nil, &fakeNotLeader{addr: "10.0.0.2:7070"})
	st := mustCode(t, e.get("/api/v1/namespaces/default/configmaps/c"), 503).status(t)
	if !strings.Contains(st.Message, "10.0.0.2:7070") || st.Reason != api.ReasonServiceUnavailable {
		t.Errorf("not leader: %+v", st)
	}
	// A stale read still works without a leader.
	mustCode(t, e.get("/api/v1/namespaces/default/configmaps/c?stale=true"), 200)
}

type fakeNotLeader struct{ addr string }

func (e *fakeNotLeader) Error() string         { return "not the leader" }
func (e *fakeNotLeader) LeaderAddress() string { return e.addr }

func TestBackendErrors(t *testing.T) {
	cases := []struct {
		err     error
		code    int
		mention string
	}{
		{&fakeNotLeader{addr: "10.0.0.9:7070"}, 503, "10.0.0.9:7070"},
		{fmt.Errorf("wrapped: %w", &fakeNotLeader{}), 503, "no leader"},
		{context.DeadlineExceeded, 503, "timed out"},
		{errors.New("disk on fire"), 500, "disk on fire"},
		// A proposal that may have committed: 504, and no Retry-After.
		{errors.Join(fakeOutcomeUnknown{}, context.DeadlineExceeded), 504, "outcome is unknown"},
	}
	for _, c := range cases {
		e := newEnv(t)
		rev0, _ := e.snapshot()
		e.be.failWith(c.err, nil)
		r := mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("c", nil)), c.code)
		if st := r.status(t); !strings.Contains(st.Message, c.mention) {
			t.Errorf("%v: message %q", c.err, st.Message)
		}
		if c.code == 503 && r.header.Get("Retry-After") == "" {
			t.Errorf("%v: 503 without Retry-After", c.err)
		}
		if c.code == 504 && (r.header.Get("Retry-After") != "" || r.status(t).Reason != api.ReasonTimeout) {
			t.Errorf("%v: 504 with Retry-After %q, reason %q", c.err, r.header.Get("Retry-After"), r.status(t).Reason)
		}
		if rev, _ := e.snapshot(); rev != rev0 {
			t.Errorf("%v: store changed", c.err)
		}
	}
}

func TestStatusOfStoreErrors(t *testing.T) {
	s := &Server{log: newEnv(t).srv.log}
	info, _ := api.LookupKind("Pod")
	cases := []struct {
		err    error
		code   int
		reason api.StatusReason
	}{
		{fmt.Errorf("%w: x", store.ErrNotFound), 404, api.ReasonNotFound},
		{fmt.Errorf("%w: x", store.ErrAlreadyExists), 409, api.ReasonAlreadyExists},
		{fmt.Errorf("%w: x", store.ErrConflict), 409, api.ReasonConflict},
		{fmt.Errorf("%w: x", store.ErrTooOld), 410, api.ReasonExpired},
		{fmt.Errorf("%w: x", store.ErrInvalid), 400, api.ReasonBadRequest},
		{api.NewBadRequest("y"), 400, api.ReasonBadRequest},
	}
	for _, c := range cases {
		se := s.ToStatus(c.err, info, "p")
		if se.Code() != c.code || se.Reason() != c.reason {
			t.Errorf("%v: %d %s, want %d %s", c.err, se.Code(), se.Reason(), c.code, c.reason)
		}
	}
}

func TestHealthVersionRaft(t *testing.T) {
	e := newEnv(t)
	if r := mustCode(t, e.get("/healthz"), 200); string(r.body) != "ok" {
		t.Errorf("healthz: %q", r.body)
	}
	v := decode[VersionInfo](t, mustCode(t, e.get("/version"), 200))
	if v.Version != "dev" || v.GoVersion == "" {
		t.Errorf("version: %+v", v)
	}
	mustCode(t, e.get("/v1/cluster/raft"), 404)

	e2 := newEnv(t, func(_ *store.Config, c *ServerConfig) {
		c.Status = func() any { return map[string]any{"leader": "n1", "index": 7} }
	})
	if r := mustCode(t, e2.get("/v1/cluster/raft"), 200); !strings.Contains(string(r.body), `"leader":"n1"`) {
		t.Errorf("raft: %s", r.body)
	}
}

func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t)
	const n = 40
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.post("/api/v1/namespaces/default/configmaps", configMapJSON(fmt.Sprintf("c%d", i), nil)).code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Errorf("create %d: %d", i, c)
		}
	}
	objs, _, _ := e.st.List("ConfigMap", "default", store.Selector{})
	if len(objs) != n {
		t.Errorf("%d objects stored, want %d", len(objs), n)
	}
}

func TestConcurrentUpdatesSameVersion(t *testing.T) {
	e := newEnv(t)
	cm := decode[api.ConfigMap](t, mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("c", nil)), 201))
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *cm
			c.Data = map[string]string{"writer": fmt.Sprint(i)}
			codes[i] = e.put("/api/v1/namespaces/default/configmaps/c", mustJSON(t, &c)).code
		}()
	}
	wg.Wait()
	won, lost := 0, 0
	for _, c := range codes {
		switch c {
		case 200:
			won++
		case 409:
			lost++
		}
	}
	if won != 1 || lost != n-1 {
		t.Errorf("%d succeeded and %d conflicted, want 1 and %d: %v", won, lost, n-1, codes)
	}
}

func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = configMapJSON(fmt.Sprintf("c%d", i), map[string]string{"k": "v"})
	}
	client := e.ts.Client()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(e.ts.URL+"/api/v1/namespaces/default/configmaps", "application/json", strings.NewReader(bodies[i]))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) // drain, so the connection is reused
		resp.Body.Close()
		if resp.StatusCode != 201 {
			b.Fatalf("HTTP %d", resp.StatusCode)
		}
	}
}

// fakeOutcomeUnknown is what consensus.ErrOutcomeUnknown looks like here.
type fakeOutcomeUnknown struct{}

func (fakeOutcomeUnknown) Error() string        { return "outcome of the proposal is unknown" }
func (fakeOutcomeUnknown) OutcomeUnknown() bool { return true }

// readAllSized reads the whole body whatever the declared length says and
// however the reader splits it: exact, unknown, too small, too large.
func TestReadAllSized(t *testing.T) {
	body := strings.Repeat("0123456789", 300)
	for _, size := range []int64{-1, 0, 1, 512, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 100, 32 << 20} {
		got, err := readAllSized(iotest.OneByteReader(strings.NewReader(body)), size)
		if err != nil || string(got) != body {
			t.Errorf("declared %d: read %d bytes, err %v", size, len(got), err)
		}
		got, err = readAllSized(iotest.HalfReader(strings.NewReader(body)), size)
		if err != nil || string(got) != body {
			t.Errorf("declared %d, half reads: read %d bytes, err %v", size, len(got), err)
		}
	}
	if _, err := readAllSized(iotest.ErrReader(errors.New("cut")), 10); err == nil || err.Error() != "cut" {
		t.Errorf("a failing reader: %v", err)
	}
}
