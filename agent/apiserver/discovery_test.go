package apiserver

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// TestDiscoveryDocuments checks the discovery documents against the kind
// registry: every kind once, in its group/version, with its short names,
// scope, verbs and subresources, and the Kubernetes shape of each body.
func TestDiscoveryDocuments(t *testing.T) {
	e := newEnv(t)
	vs := decode[APIVersions](t, mustCode(t, e.get("/api"), 200))
	if vs.Kind != "APIVersions" || !slices.Equal(vs.Versions, []string{"v1"}) || vs.ServerAddressByClientCIDRs == nil {
		t.Errorf("/api: %+v", vs)
	}
	gl := decode[APIGroupList](t, mustCode(t, e.get("/apis"), 200))
	if gl.Kind != "APIGroupList" || gl.APIVersion != "v1" || len(gl.Groups) != 1 {
		t.Fatalf("/apis: %+v", gl)
	}
	apps := GroupVersionForDiscovery{GroupVersion: "apps/v1", Version: "v1"}
	if g := gl.Groups[0]; g.Name != "apps" || g.PreferredVersion != apps || !slices.Equal(g.Versions, []GroupVersionForDiscovery{apps}) {
		t.Errorf("/apis group: %+v", g)
	}
	if g := decode[APIGroup](t, mustCode(t, e.get("/apis/apps"), 200)); g.Kind != "APIGroup" || g.Name != "apps" || g.PreferredVersion != apps {
		t.Errorf("/apis/apps: %+v", g)
	}

	seen := map[string]bool{}
	for _, gv := range []struct{ path, groupVersion string }{{"/api/v1", "v1"}, {"/apis/apps/v1", "apps/v1"}} {
		l := decode[APIResourceList](t, mustCode(t, e.get(gv.path), 200))
		if l.Kind != "APIResourceList" || l.GroupVersion != gv.groupVersion {
			t.Errorf("%s: %s %s", gv.path, l.Kind, l.GroupVersion)
		}
		for _, r := range l.Resources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			if seen[r.Name] {
				t.Errorf("%s: %s listed twice", gv.path, r.Name)
			}
			seen[r.Name] = true
			k, ok := api.LookupKind(r.Kind)
			if !ok || k.Resource != r.Name || k.APIVersion() != gv.groupVersion || k.Namespaced != r.Namespaced ||
				!slices.Equal(k.ShortNames, r.ShortNames) || r.SingularName != strings.ToLower(k.Kind) {
				t.Errorf("%s: %+v does not match the registry's %+v", gv.path, r, k)
			}
			if !slices.Equal(r.Verbs, ResourceVerbs) {
				t.Errorf("%s: verbs %v", r.Name, r.Verbs)
			}
		}
	}
	for _, k := range api.Kinds() {
		if !seen[k.Resource] {
			t.Errorf("%s is not discovered", k.Resource)
		}
	}

	core := decode[APIResourceList](t, mustCode(t, e.get("/api/v1"), 200))
	find := func(l *APIResourceList, name string) APIResource {
		for _, r := range l.Resources {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("%s: not listed", name)
		return APIResource{}
	}
	if r := find(core, "pods"); !slices.Equal(r.ShortNames, []string{"po"}) || !slices.Equal(r.Categories, []string{"all"}) {
		t.Errorf("pods: %+v", r)
	}
	if r := find(core, "configmaps"); r.Categories != nil {
		t.Errorf("configmaps is in %v, not in all on Kubernetes", r.Categories)
	}
	if r := find(core, "pods/status"); r.Kind != "Pod" || !r.Namespaced || !slices.Equal(r.Verbs, []string{"get", "update"}) {
		t.Errorf("pods/status: %+v", r)
	}
	find(core, "pods/log")
	find(core, "pods/exec")
	find(core, "pods/attach")
	find(core, "pods/portforward")
	find(core, "nodes/status")
	for _, r := range core.Resources {
		if r.Name == "configmaps/status" || r.Name == "secrets/status" {
			t.Errorf("%s is listed but ConfigMaps and Secrets have no status", r.Name)
		}
	}
	appsList := decode[APIResourceList](t, mustCode(t, e.get("/apis/apps/v1"), 200))
	if r := find(appsList, "deployments"); !slices.Equal(r.ShortNames, []string{"deploy"}) || !slices.Equal(r.Categories, []string{"all"}) {
		t.Errorf("deployments: %+v", r)
	}
	find(appsList, "deployments/status")

	// What is not served.
	for _, p := range []string{"/api/v2", "/apis/batch", "/apis/batch/v1", "/apis/apps/v2"} {
		mustCode(t, e.get(p), 404).status(t)
	}
	for _, p := range []string{"/api", "/apis", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v2"} {
		if r := mustCode(t, e.post(p, "{}"), 405); r.header.Get("Allow") != "GET" {
			t.Errorf("POST %s: Allow %q", p, r.header.Get("Allow"))
		}
	}
}

// TestVersionKubernetesShape: /version carries what kubectl version reads.
func TestVersionKubernetesShape(t *testing.T) {
	e := newEnv(t, func(_ *store.Config, c *ServerConfig) { c.Version = "0.4.0 (abc/1)" })
	v := decode[VersionInfo](t, mustCode(t, e.get("/version"), 200))
	if v.Major != "1" || v.Minor != "32" || v.GitVersion != "v1.32.0-shoal+0.4.0--abc-1-" || v.Version != "0.4.0 (abc/1)" ||
		v.GoVersion == "" || v.Platform == "" || v.Compiler == "" {
		t.Errorf("version: %+v", v)
	}
	for in, want := range map[string]string{"dev": "dev", "": "dev", "1.2.3": "1.2.3", "a..b": "a.-.b", ".x.": "x", "ü": "--"} {
		if got := semverBuild(in); got != want {
			t.Errorf("semverBuild(%q) = %q, want %q", in, got, want)
		}
	}
}

// A HEAD of a discovery document is a GET without a body.
func TestDiscoveryHead(t *testing.T) {
	e := newEnv(t)
	r := mustCode(t, e.request(http.MethodHead, "/api/v1", "", ""), 200)
	if len(r.body) != 0 {
		t.Errorf("HEAD body: %q", r.body)
	}
}

// TestAggregatedDiscovery: kubectl's first request gets the aggregated
// form, with the same resources as the legacy documents.
func TestAggregatedDiscovery(t *testing.T) {
	e := newEnv(t)
	const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
	r := mustCode(t, e.getAccept("/api", accept), 200)
	if ct := r.header.Get("Content-Type"); ct != "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" {
		t.Errorf("Content-Type %q", ct)
	}
	core := decode[APIGroupDiscoveryList](t, r)
	if core.Kind != "APIGroupDiscoveryList" || core.APIVersion != "apidiscovery.k8s.io/v2" || len(core.Items) != 1 ||
		core.Items[0].Metadata.Name != "" || len(core.Items[0].Versions) != 1 || core.Items[0].Versions[0].Version != "v1" {
		t.Fatalf("/api: %+v", core)
	}
	var pods *APIResourceDiscovery
	for i, res := range core.Items[0].Versions[0].Resources {
		if res.Resource == "pods" {
			pods = &core.Items[0].Versions[0].Resources[i]
		}
	}
	if pods == nil || pods.Scope != "Namespaced" || pods.SingularResource != "pod" || pods.ResponseKind != (GroupVersionKind{Version: "v1", Kind: "Pod"}) ||
		!slices.Equal(pods.ShortNames, []string{"po"}) || !slices.Equal(pods.Verbs, ResourceVerbs) || len(pods.Subresources) != 5 {
		t.Fatalf("pods: %+v", pods)
	}
	if s := pods.Subresources[2]; s.Subresource != "exec" || s.ResponseKind.Kind != "PodExecOptions" {
		t.Errorf("exec: %+v", s)
	}
	named := decode[APIGroupDiscoveryList](t, mustCode(t, e.getAccept("/apis", accept), 200))
	if len(named.Items) != 1 || named.Items[0].Metadata.Name != "apps" || len(named.Items[0].Versions[0].Resources) != 4 {
		t.Errorf("/apis: %+v", named)
	}
	for _, res := range named.Items[0].Versions[0].Resources {
		if res.ResponseKind.Group != "apps" || res.Scope != "Namespaced" {
			t.Errorf("%+v", res)
		}
	}
	// v2beta1 alone, and plain JSON first.
	if r := mustCode(t, e.getAccept("/apis", "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"), 200); !strings.Contains(r.header.Get("Content-Type"), "v=v2beta1") {
		t.Errorf("v2beta1: %q", r.header.Get("Content-Type"))
	}
	for _, a := range []string{"application/json", "", "application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"} {
		r := mustCode(t, e.getAccept("/apis", a), 200)
		if r.header.Get("Content-Type") != "application/json" || decode[APIGroupList](t, r).Kind != "APIGroupList" {
			t.Errorf("Accept %q: %s %s", a, r.header.Get("Content-Type"), r.body)
		}
	}
}
