package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

func withRules(allow []string, clusterCIDR string) envOption {
	return func(_ *store.Config, c *ServerConfig) {
		c.HostPathAllow, c.ClusterCIDR = allow, clusterCIDR
	}
}

const hostPathPodJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s"},"spec":{"containers":[{"name":"c","image":"busybox"}],"volumes":[{"name":"h","hostPath":{"path":%q}}]}}`

const hostPathDeploymentYAML = deploymentYAML + `      volumes:
      - name: h
        hostPath:
          path: %s
`

// mustInvalidAt checks a 422 whose only cause is at field.
func mustInvalidAt(t *testing.T, r response, field string) {
	t.Helper()
	st := mustCode(t, r, http.StatusUnprocessableEntity).status(t)
	if st.Reason != api.ReasonInvalid || st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != field {
		t.Fatalf("want one cause at %s, got %+v", field, st.Details)
	}
}

func TestHostPathRefused(t *testing.T) {
	e := newEnv(t, withRules([]string{"/data"}, ""))
	rev0, snap0 := e.snapshot()
	ns := "/api/v1/namespaces/default/pods"
	mustInvalidAt(t, e.post(ns, fmt.Sprintf(hostPathPodJSON, "root", "/")), "spec.volumes[0].hostPath.path")
	mustInvalidAt(t, e.post(ns, fmt.Sprintf(hostPathPodJSON, "etc", "/etc/../etc")), "spec.volumes[0].hostPath.path")
	mustInvalidAt(t, e.post(ns, fmt.Sprintf(hostPathPodJSON, "data2", "/data2")), "spec.volumes[0].hostPath.path")
	deps := "/apis/apps/v1/namespaces/default/deployments"
	mustInvalidAt(t, e.request(http.MethodPost, deps, "application/yaml", fmt.Sprintf(hostPathDeploymentYAML, "/")), "spec.template.spec.volumes[0].hostPath.path")
	for _, kind := range []string{"replicasets", "daemonsets"} {
		body := strings.Replace(fmt.Sprintf(hostPathDeploymentYAML, "/"), "kind: Deployment", "kind: "+map[string]string{"replicasets": "ReplicaSet", "daemonsets": "DaemonSet"}[kind], 1)
		if kind == "daemonsets" {
			body = strings.Replace(body, "  replicas: 2\n", "", 1)
		}
		mustInvalidAt(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/"+kind, "application/yaml", body), "spec.template.spec.volumes[0].hostPath.path")
	}
	if rev, snap := e.snapshot(); rev != rev0 || string(snap) != string(snap0) {
		t.Fatalf("refused writes changed the store: revision %d -> %d", rev0, rev)
	}

	// Below an allowed directory is fine; an update may not then point
	// the template at /.
	mustCode(t, e.post(ns, fmt.Sprintf(hostPathPodJSON, "data", "/data/x/")), http.StatusCreated)
	mustCode(t, e.request(http.MethodPost, deps, "application/yaml", fmt.Sprintf(hostPathDeploymentYAML, "/data/web")), http.StatusCreated)
	rev1, snap1 := e.snapshot()
	mustInvalidAt(t, e.request(http.MethodPut, deps+"/web", "application/yaml", fmt.Sprintf(hostPathDeploymentYAML, "/")), "spec.template.spec.volumes[0].hostPath.path")
	if rev, snap := e.snapshot(); rev != rev1 || string(snap) != string(snap1) {
		t.Fatalf("a refused update changed the store: revision %d -> %d", rev1, rev)
	}
}

func TestHostPathDefaultRefusesAll(t *testing.T) {
	e := newEnv(t)
	r := e.post("/api/v1/namespaces/default/pods", fmt.Sprintf(hostPathPodJSON, "tmp", "/tmp/x"))
	mustInvalidAt(t, r, "spec.volumes[0].hostPath.path")
	if !strings.Contains(string(r.body), "--host-path-allow") {
		t.Errorf("message does not say how to allow a host path: %s", r.body)
	}
}

func TestServerConfigRules(t *testing.T) {
	base := ServerConfig{Backend: &testBackend{}, Reader: store.New(store.DefaultConfig())}
	for _, c := range []struct {
		allow   []string
		cluster string
		field   string
	}{
		{[]string{"/"}, "", "HostPathAllow"},
		{[]string{"/var/lib"}, "", "HostPathAllow"},
		{[]string{"data"}, "", "HostPathAllow"},
		{nil, "10.244.0.0", "ClusterCIDR"},
	} {
		cfg := base
		cfg.HostPathAllow, cfg.ClusterCIDR = c.allow, c.cluster
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ServerConfig."+c.field) {
			t.Errorf("%q %q: %v, want an error naming %s", c.allow, c.cluster, err, c.field)
		}
	}
	cfg := base
	cfg.HostPathAllow, cfg.ClusterCIDR = []string{"/data"}, "10.244.0.0/16"
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func nodeJSON(name, cidr string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q},"spec":{"podCIDR":%q}}`, name, cidr)
}

// seedNode stores a Node directly, as a stale agent or an older version
// could have.
func (e *env) seedNode(name, cidr string) {
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name, UID: api.NewUID()}, Spec: api.NodeSpec{PodCIDR: cidr}}
	api.SetTypeMeta(n)
	if res := e.st.Apply([]store.Op{{Type: store.OpCreate, Object: n}}); res[0].Err != nil {
		e.t.Fatal(res[0].Err)
	}
}

func TestNodePodCIDRRefused(t *testing.T) {
	e := newEnv(t, withRules(nil, "10.244.0.0/16"))
	mustCode(t, e.post("/api/v1/nodes", nodeJSON("a", "10.244.1.0/24")), http.StatusCreated)
	mustCode(t, e.post("/api/v1/nodes", nodeJSON("b", "")), http.StatusCreated)
	rev0, snap0 := e.snapshot()
	for _, c := range []struct{ name, cidr, why string }{
		{"c", "0.0.0.0/1", "inside the cluster CIDR"},
		{"c", "0.0.0.0/0", "default route"},
		{"c", "10.244.0.0/8", "host bits"},
		{"c", "10.0.0.0/8", "inside the cluster CIDR"},
		{"c", "10.244.1.0/24", "overlaps node a's"},
		{"c", "10.244.0.0/22", "overlaps node a's"},
	} {
		r := e.post("/api/v1/nodes", nodeJSON(c.name, c.cidr))
		mustInvalidAt(t, r, "spec.podCIDR")
		if !strings.Contains(string(r.body), c.why) {
			t.Errorf("%s: %s does not say %q", c.cidr, r.body, c.why)
		}
	}
	// Setting the pod CIDR of an existing Node is checked as well.
	mustInvalidAt(t, e.put("/api/v1/nodes/b", nodeJSON("b", "10.244.1.128/25")), "spec.podCIDR")
	if rev, snap := e.snapshot(); rev != rev0 || string(snap) != string(snap0) {
		t.Fatalf("refused writes changed the store: revision %d -> %d", rev0, rev)
	}
	mustCode(t, e.put("/api/v1/nodes/b", nodeJSON("b", "10.244.2.0/24")), http.StatusOK)
}

func TestNodeStoredBeforeTheRuleStaysWritable(t *testing.T) {
	e := newEnv(t, withRules(nil, "10.244.0.0/16"))
	e.seedNode("a", "10.244.1.0/24")
	e.seedNode("b", "10.244.1.0/24")
	// b's pod CIDR does not change: its other fields may.
	body := `{"apiVersion":"v1","kind":"Node","metadata":{"name":"b","labels":{"zone":"z1"}},"spec":{"podCIDR":"10.244.1.0/24"}}`
	mustCode(t, e.put("/api/v1/nodes/b", body), http.StatusOK)
}
