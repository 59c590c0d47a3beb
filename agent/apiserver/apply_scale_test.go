package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// TestServerSideApply: the first apply creates, the second merges over the
// live object and removes what the manager applied before and left out,
// but not what another writer set.
func TestServerSideApply(t *testing.T) {
	e := newEnv(t)
	apply := func(query, body string) response {
		return e.request(http.MethodPatch, depPath+query, mediaApplyPatch, body)
	}
	v1 := deploymentYAML + "      - name: side\n        image: busybox\n"
	r := mustCode(t, apply("?fieldManager=kubectl", v1), 201)
	d := decode[api.Deployment](t, r)
	if d.UID == "" || len(d.Spec.Template.Spec.Containers) != 2 || d.Annotations[AppliedAnnotation] == "" {
		t.Fatalf("created: %s", r.body)
	}
	// Another writer labels it.
	mustCode(t, e.patch(depPath, mediaMergePatch, `{"metadata":{"labels":{"team":"x"}}}`), 200)
	v2 := strings.Replace(deploymentYAML, "replicas: 2", "replicas: 4", 1)
	v2 = strings.Replace(v2, "nginx:1.27", "nginx:1.28", 1)
	r = mustCode(t, apply("?fieldManager=kubectl&force=true", v2), 200)
	d = e.deployment("web")
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Image != "nginx:1.28" || *d.Spec.Replicas != 4 || d.Labels["team"] != "x" || d.Labels["app"] != "web" {
		t.Errorf("second apply: containers %+v replicas %d labels %v", cs, *d.Spec.Replicas, d.Labels)
	}
	// Idempotent: the same configuration changes nothing but the record.
	gen := d.Generation
	mustCode(t, apply("?fieldManager=kubectl", v2), 200)
	if d := e.deployment("web"); d.Generation != gen || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Errorf("re-apply changed the spec: generation %d, was %d", d.Generation, gen)
	}
	// Failures.
	for _, c := range []struct {
		query, body, mention string
		code                 int
	}{
		{"", v2, "fieldManager", 400},
		{"?fieldManager=" + strings.Repeat("m", 129), v2, "fieldManager", 400},
		{"?fieldManager=k&force=maybe", v2, "force", 400},
		{"?fieldManager=k", strings.Replace(v2, "name: web\n  labels", "name: other\n  labels", 1), "metadata.name", 400},
		{"?fieldManager=k", strings.Replace(v2, "replicas: 4", "replicas: -4", 1), "spec.replicas", 422},
		{"?fieldManager=k", strings.Replace(v2, "replicas: 4", "replicaz: 4", 1), "replicaz", 400},
	} {
		rev0, snap0 := e.snapshot()
		r := apply(c.query, c.body)
		if r.code != c.code || !strings.Contains(r.status(t).Message, c.mention) {
			t.Errorf("apply%s: %d %s, want %d mentioning %s", c.query, r.code, r.body, c.code, c.mention)
		}
		if rev, snap := e.snapshot(); rev != rev0 || !bytes.Equal(snap, snap0) {
			t.Errorf("a failed apply changed the store")
		}
	}
}

// TestScale: GET, PUT and PATCH (what kubectl scale sends) of /scale.
func TestScale(t *testing.T) {
	e := newEnv(t)
	mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", "application/yaml", deploymentYAML), 201)
	sp := depPath + "/scale"
	sc := decode[Scale](t, mustCode(t, e.get(sp), 200))
	if sc.Kind != "Scale" || sc.APIVersion != "autoscaling/v1" || sc.Spec.Replicas != 2 || sc.Status.Selector != "app=web" || sc.Metadata.Name != "web" {
		t.Fatalf("GET scale: %+v", sc)
	}
	// kubectl scale --replicas=5 (with --resource-version it adds metadata.resourceVersion).
	sc = decode[Scale](t, mustCode(t, e.patch(sp, mediaMergePatch, `{"spec":{"replicas":5}}`), 200))
	if sc.Spec.Replicas != 5 || *e.deployment("web").Spec.Replicas != 5 {
		t.Fatalf("PATCH scale: %+v", sc)
	}
	body := `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"default","resourceVersion":"` + sc.Metadata.ResourceVersion + `"},"spec":{"replicas":1}}`
	mustCode(t, e.put(sp, body), 200)
	if *e.deployment("web").Spec.Replicas != 1 {
		t.Fatalf("PUT scale did not scale")
	}
	mustCode(t, e.put(sp, body), 409) // that resourceVersion is gone
	mustCode(t, e.patch(sp, mediaJSONPatch, `[{"op":"replace","path":"/spec/replicas","value":3}]`), 200)
	rev0, snap0 := e.snapshot()
	for _, c := range []struct {
		method, ctype, body string
		code                int
	}{
		{http.MethodPatch, mediaMergePatch, `{"spec":{"replicas":-1}}`, 422},
		{http.MethodPut, "application/json", `{"spec":{"replicas":-1}}`, 422},
		{http.MethodPatch, mediaMergePatch, `{"spec":{"replicas":"x"}}`, 400},
		{http.MethodPatch, mediaMergePatch, `{"spec":{"replicaz":1}}`, 400},
		{http.MethodPatch, mediaApplyPatch, `{}`, 415},
		{http.MethodPut, "application/json", `{"metadata":{"name":"other"},"spec":{"replicas":1}}`, 400},
		{http.MethodDelete, "", ``, 405},
	} {
		if r := e.request(c.method, sp, c.ctype, c.body); r.code != c.code {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.body, r.code, c.code, r.body)
		}
	}
	if rev, snap := e.snapshot(); rev != rev0 || !bytes.Equal(snap, snap0) {
		t.Errorf("a failed scale changed the store")
	}
	if *e.deployment("web").Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *e.deployment("web").Spec.Replicas)
	}
	for _, kind := range []string{"ReplicaSet", "StatefulSet"} {
		res := strings.ToLower(kind) + "s"
		mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/"+res, "application/yaml",
			strings.Replace(deploymentYAML, "Deployment", kind, 1)), 201)
		p := "/apis/apps/v1/namespaces/default/" + res + "/web/scale"
		if sc := decode[Scale](t, mustCode(t, e.patch(p, mediaMergePatch, `{"spec":{"replicas":4}}`), 200)); sc.Spec.Replicas != 4 {
			t.Errorf("%s scale: %+v", kind, sc)
		}
		if sc := decode[Scale](t, mustCode(t, e.get(p), 200)); sc.Spec.Replicas != 4 || sc.Status.Selector != "app=web" {
			t.Errorf("%s scale: %+v", kind, sc)
		}
	}
	mustCode(t, e.get("/api/v1/namespaces/default/pods/x/scale"), 404)
	mustCode(t, e.get("/apis/apps/v1/namespaces/default/deployments/nope/scale"), 404)
	mustCode(t, e.get("/apis/apps/v1/namespaces/default/daemonsets/x/scale"), 404)
}

// TestDryRun: create, update, patch, apply, scale and delete with
// dryRun=All answer as if done, with defaults and validation, and leave
// the store as it was.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("cm", map[string]string{"a": "1"})), 201)
	mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", "application/yaml", deploymentYAML), 201)
	e.seed(boundPod("p", "n1"))
	rev0, snap0 := e.snapshot()
	const dr = "?dryRun=All"
	r := mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments"+dr, "application/yaml",
		strings.Replace(deploymentYAML, "name: web\n  labels", "name: web2\n  labels", 1)), 201)
	if d := decode[api.Deployment](t, r); d.Spec.Template.Spec.Containers[0].ImagePullPolicy == "" || d.UID == "" {
		t.Errorf("dry-run create is not defaulted and completed: %s", r.body)
	}
	mustCode(t, e.request(http.MethodPost, "/api/v1/namespaces/default/configmaps"+dr, "", configMapJSON("cm", nil)), 409)
	mustCode(t, e.request(http.MethodPost, "/api/v1/namespaces/default/configmaps"+dr, "", configMapJSON("Bad_Name", nil)), 422)
	r = mustCode(t, e.request(http.MethodPut, patchCMPath+dr, "", configMapJSON("cm", map[string]string{"b": "2"})), 200)
	if cm := decode[api.ConfigMap](t, r); cm.Data["b"] != "2" {
		t.Errorf("dry-run update answer: %s", r.body)
	}
	r = mustCode(t, e.patch(depPath+dr, mediaMergePatch, `{"spec":{"replicas":7}}`), 200)
	if d := decode[api.Deployment](t, r); *d.Spec.Replicas != 7 || d.Generation != e.deployment("web").Generation+1 {
		t.Errorf("dry-run patch answer: replicas %d generation %d", *d.Spec.Replicas, d.Generation)
	}
	mustCode(t, e.patch(depPath+dr, mediaMergePatch, `{"spec":{"replicas":-7}}`), 422)
	mustCode(t, e.patch(depPath+"/scale"+dr, mediaMergePatch, `{"spec":{"replicas":9}}`), 200)
	mustCode(t, e.request(http.MethodPatch, "/apis/apps/v1/namespaces/default/deployments/new"+dr+"&fieldManager=m", mediaApplyPatch,
		strings.Replace(deploymentYAML, "name: web\n  labels", "name: new\n  labels", 1)), 201)
	mustCode(t, e.request(http.MethodPatch, "/api/v1/namespaces/default/pods/p/status"+dr, mediaMergePatch, `{"status":{"phase":"Running"}}`), 200)
	r = mustCode(t, e.request(http.MethodDelete, "/api/v1/namespaces/default/pods/p"+dr, "", ""), 200)
	if p := decode[api.Pod](t, r); p.DeletionTimestamp == nil {
		t.Errorf("dry-run delete of a bound pod does not say it would be terminating: %s", r.body)
	}
	mustCode(t, e.request(http.MethodDelete, patchCMPath, "application/json", `{"kind":"DeleteOptions","apiVersion":"v1","dryRun":["All"]}`), 200)
	mustCode(t, e.request(http.MethodDelete, patchCMPath+"?dryRun=Some", "", ""), 400)
	if rev, snap := e.snapshot(); rev != rev0 || !bytes.Equal(snap, snap0) {
		t.Errorf("a dry run changed the store (revision %d, was %d)", rev, rev0)
	}
	if n := e.be.proposals.Load(); n != 2 {
		t.Errorf("%d proposals, want the 2 creates before the dry runs", n)
	}
}

// TestDeletePropagation: Orphan removes the owner's uid from its
// dependents' ownerReferences (so garbage collection keeps them) and
// deletes the owner; Background leaves them for garbage collection.
func TestDeletePropagation(t *testing.T) {
	e := newEnv(t)
	rsYAML := strings.NewReplacer("Deployment", "ReplicaSet", "name: web\n  labels", "name: rs\n  labels").Replace(deploymentYAML)
	for _, name := range []string{"rs", "rs2"} {
		body := strings.Replace(rsYAML, "name: rs\n", "name: "+name+"\n", 1)
		mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/replicasets", "application/yaml", body), 201)
	}
	owner := func(name string) api.OwnerReference {
		o, err := e.st.Get(store.Key{Kind: "ReplicaSet", Namespace: "default", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		yes := true
		return api.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: o.GetObjectMeta().UID, Controller: &yes}
	}
	other := api.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "keep", UID: "keep-uid"}
	for _, n := range []string{"a", "b"} {
		p := boundPod(n, "")
		p.OwnerReferences = []api.OwnerReference{owner("rs"), other}
		e.seed(p)
	}
	p := boundPod("c", "")
	p.OwnerReferences = []api.OwnerReference{owner("rs2")}
	e.seed(p)
	pod := func(name string) *api.Pod {
		o, err := e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Pod)
	}
	mustCode(t, e.request(http.MethodDelete, "/apis/apps/v1/namespaces/default/replicasets/rs", "application/json",
		`{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Orphan"}`), 200)
	if _, err := e.st.Get(store.Key{Kind: "ReplicaSet", Namespace: "default", Name: "rs"}); err == nil {
		t.Fatal("the ReplicaSet was not deleted")
	}
	for _, n := range []string{"a", "b"} {
		if refs := pod(n).OwnerReferences; len(refs) != 1 || refs[0].UID != "keep-uid" {
			t.Errorf("pod %s: ownerReferences %+v, want only the other owner", n, refs)
		}
	}
	mustCode(t, e.request(http.MethodDelete, "/apis/apps/v1/namespaces/default/replicasets/rs2?propagationPolicy=Background", "", ""), 200)
	if refs := pod("c").OwnerReferences; len(refs) != 1 {
		t.Errorf("Background orphaned the pod: %+v", refs)
	}
	for _, body := range []string{`{"propagationPolicy":"Sideways"}`, `{"propagationPolicy":"Orphan","orphanDependents":true}`} {
		mustCode(t, e.request(http.MethodDelete, "/api/v1/namespaces/default/pods/c", "application/json", body), 400)
	}
}

// TestOrphanRetriesDependents: a dependent changed between the read and
// the write is read again and orphaned.
func TestOrphanRetriesDependents(t *testing.T) {
	e := newEnv(t)
	rsYAML := strings.NewReplacer("Deployment", "ReplicaSet", "name: web\n  labels", "name: rs\n  labels").Replace(deploymentYAML)
	mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/replicasets", "application/yaml", rsYAML), 201)
	o, _ := e.st.Get(store.Key{Kind: "ReplicaSet", Namespace: "default", Name: "rs"})
	p := boundPod("a", "n1")
	p.OwnerReferences = []api.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: o.GetObjectMeta().UID}}
	e.seed(p)
	rb := &patchRaceBackend{testBackend: e.be, race: func() {
		o, _ := e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: "a"})
		c := o.DeepCopyObject().(*api.Pod)
		c.Status.Phase = api.PodRunning
		if res := e.st.Apply([]store.Op{{Type: store.OpUpdateStatus, Object: c}}); res[0].Err != nil {
			t.Error(res[0].Err)
		}
	}}
	rb.races.Store(1)
	e.srv.prop.backend = rb
	mustCode(t, e.request(http.MethodDelete, "/apis/apps/v1/namespaces/default/replicasets/rs?propagationPolicy=Orphan", "", ""), 200)
	o, err := e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if pp := o.(*api.Pod); len(pp.OwnerReferences) != 0 || pp.Status.Phase != api.PodRunning {
		b, _ := json.Marshal(pp)
		t.Errorf("pod after orphaning: %s", b)
	}
}
