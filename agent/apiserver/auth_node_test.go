package apiserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// seed writes obj to the store as the leader would have committed it.
func (e *env) seed(obj api.Object) {
	e.t.Helper()
	api.SetTypeMeta(obj)
	api.SetDefaults(obj)
	api.PrepareCreate(obj, testNow, api.NewUID())
	if res := e.st.Apply([]store.Op{{Type: store.OpCreate, Object: obj}}); res[0].Err != nil {
		e.t.Fatal(res[0].Err)
	}
}

func boundPod(name, node string) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}}
	p.Spec.Containers = []api.Container{{Name: "c", Image: "busybox"}}
	p.Spec.NodeName = node
	return p
}

// TestNodeRestriction: through the Server and a real store, with agent
// certificates over TLS, an agent writes only its own Node and the status
// of (and deletion of) pods bound to it.
func TestNodeRestriction(t *testing.T) {
	e := newEnv(t)
	f := newTLSFixture(t, e.srv.Handler())
	n1cert := f.ca.leaf(t, "n1", "worker")
	n1 := f.client(&n1cert)
	e.seed(&api.Node{ObjectMeta: api.ObjectMeta{Name: "n2"}})
	for name, node := range map[string]string{"mine": "n1", "theirs": "n2", "unbound": "", "gone": "n1"} {
		e.seed(boundPod(name, node))
	}
	get := func(kind, ns, name string) api.Object {
		t.Helper()
		o, err := e.st.Get(store.Key{Kind: kind, Namespace: ns, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return o.DeepCopyObject()
	}
	withPhase := func(name string, phase string) string {
		p := get("Pod", "default", name).(*api.Pod)
		p.Status.Phase = phase
		p.ResourceVersion = ""
		return mustJSON(t, p)
	}
	pods := "/api/v1/namespaces/default/pods/"

	refused := []struct {
		what, method, path, body string
	}{
		{"another node's pod status", "PUT", pods + "theirs/status", withPhase("theirs", api.PodRunning)},
		{"an unbound pod's status", "PUT", pods + "unbound/status", withPhase("unbound", api.PodRunning)},
		{"moving a pod to itself", "PUT", pods + "theirs", func() string {
			p := get("Pod", "default", "theirs").(*api.Pod)
			p.Spec.NodeName, p.ResourceVersion = "n1", ""
			return mustJSON(t, p)
		}()},
		{"binding an unbound pod to itself", "PUT", pods + "unbound", func() string {
			p := get("Pod", "default", "unbound").(*api.Pod)
			p.Spec.NodeName, p.ResourceVersion = "n1", ""
			return mustJSON(t, p)
		}()},
		{"its own pod's spec", "PUT", pods + "mine", func() string {
			p := get("Pod", "default", "mine").(*api.Pod)
			p.Labels, p.ResourceVersion = map[string]string{"x": "y"}, ""
			return mustJSON(t, p)
		}()},
		{"another node's pod deleted", "DELETE", pods + "theirs", ""},
		{"a pod created", "POST", "/api/v1/namespaces/default/pods", fmt.Sprintf(podJSON, "new", "new")},
		{"another Node updated", "PUT", "/api/v1/nodes/n2", `{"metadata":{"name":"n2","labels":{"x":"y"}}}`},
		{"another Node's status", "PUT", "/api/v1/nodes/n2/status", `{"metadata":{"name":"n2"},"status":{"capacity":{"pods":"1"}}}`},
		{"another Node created", "POST", "/api/v1/nodes", `{"metadata":{"name":"n3"}}`},
		{"its own Node deleted", "DELETE", "/api/v1/nodes/n1", ""},
		{"a Secret", "POST", "/api/v1/namespaces/default/secrets", `{"metadata":{"name":"s"}}`},
		{"a Namespace", "POST", "/api/v1/namespaces", `{"metadata":{"name":"ns2"}}`},
	}
	rev, before := e.snapshot()
	for _, c := range refused {
		r := f.do(n1, c.method, c.path, "", c.body, nil)
		if r.code != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403: %s", c.what, r.code, r.body)
			continue
		}
		if st := r.status(t); st.Reason != ReasonForbidden {
			t.Errorf("%s: status %+v", c.what, st)
		}
	}
	if rev2, after := e.snapshot(); rev2 != rev || string(after) != string(before) {
		t.Fatalf("a refused write changed the store (revision %d -> %d)", rev, rev2)
	}

	// What an agent may do: its own Node, and its pods' status and deletion.
	mustCode(t, f.do(n1, "POST", "/api/v1/nodes", "", `{"metadata":{"name":"n1"}}`, nil), http.StatusCreated)
	mustCode(t, f.do(n1, "PUT", "/api/v1/nodes/n1", "", `{"metadata":{"name":"n1","labels":{"zone":"a"}}}`, nil), http.StatusOK)
	mustCode(t, f.do(n1, "PUT", "/api/v1/nodes/n1/status", "", `{"metadata":{"name":"n1"},"status":{"capacity":{"pods":"10"}}}`, nil), http.StatusOK)
	if nd := get("Node", "", "n1").(*api.Node); nd.Labels["zone"] != "a" || len(nd.Status.Capacity) == 0 {
		t.Errorf("own Node not written: %+v", nd)
	}
	mustCode(t, f.do(n1, "PUT", pods+"mine/status", "", withPhase("mine", api.PodRunning), nil), http.StatusOK)
	if p := get("Pod", "default", "mine").(*api.Pod); p.Status.Phase != api.PodRunning {
		t.Errorf("own pod's status not written: %+v", p.Status)
	}
	mustCode(t, f.do(n1, "DELETE", pods+"gone", "", `{"gracePeriodSeconds":0}`, nil), http.StatusOK)
	if _, err := e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: "gone"}); err == nil {
		t.Errorf("own pod not deleted")
	}
	// Reads of anything, Secrets included (pods mount them).
	mustCode(t, f.do(n1, "GET", "/api/v1/namespaces/default/secrets", "", "", nil), http.StatusOK)
	// An admin token is not restricted by the certificate it arrives with.
	adminOK := f.do(n1, "PUT", "/api/v1/nodes/n2", "admin-token", `{"metadata":{"name":"n2","labels":{"x":"y"}}}`, nil)
	mustCode(t, adminOK, http.StatusOK)
}

// TestAdmitNode covers the object checks alone, with what Authorize lets
// through and what it should have stopped.
func TestAdmitNode(t *testing.T) {
	id := Identity{Node: "n1"}
	podA := func(verb, sub string) Attributes {
		return Attributes{Verb: verb, ResourceRequest: true, Version: "v1", Resource: "pods", Namespace: "default", Name: "p", Subresource: sub}
	}
	nodeA := Attributes{Verb: VerbUpdate, ResourceRequest: true, Version: "v1", Resource: "nodes", Name: "n1"}
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "p", Namespace: "default"}}
	cases := []struct {
		name      string
		a         Attributes
		old, next api.Object
		ok        bool
	}{
		{"own pod status", podA(VerbUpdate, "status"), boundPod("p", "n1"), boundPod("p", "n1"), true},
		{"own pod status, body names another node", podA(VerbUpdate, "status"), boundPod("p", "n1"), boundPod("p", "n2"), true}, // the stored spec is kept
		{"other pod status", podA(VerbUpdate, "status"), boundPod("p", "n2"), boundPod("p", "n1"), false},
		{"own pod delete", podA(VerbDelete, ""), boundPod("p", "n1"), nil, true},
		{"unbound pod delete", podA(VerbDelete, ""), boundPod("p", ""), nil, false},
		{"own pod spec", podA(VerbUpdate, ""), boundPod("p", "n1"), boundPod("p", "n1"), false},
		{"pod create", podA(VerbCreate, ""), nil, boundPod("p", "n1"), false},
		{"not a pod under pods", podA(VerbDelete, ""), cm, nil, false},
		{"own node", nodeA, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}, true},
		{"other node", nodeA, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n2"}}, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n2"}}, false},
		{"node renamed in body", nodeA, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}}, &api.Node{ObjectMeta: api.ObjectMeta{Name: "n2"}}, false},
		{"configmap", Attributes{Verb: VerbUpdate, ResourceRequest: true, Resource: "configmaps", Namespace: "default", Name: "p"}, cm, cm, false},
		{"deployment", Attributes{Verb: VerbUpdate, ResourceRequest: true, Group: "apps", Resource: "deployments", Namespace: "default", Name: "p"}, cm, cm, false},
		{"nothing", podA(VerbUpdate, "status"), nil, nil, false},
	}
	for _, c := range cases {
		if err := admitNode(id, c.a, c.old, c.next); (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// staleReader answers Get of one key with a fixed, stale object: the
// window in which the stored object changes between the check of an
// agent's write and its proposal.
type staleReader struct {
	*store.Store
	key   store.Key
	stale api.Object
}

func (r staleReader) Get(k store.Key) (api.Object, error) {
	if k == r.key {
		return r.stale.DeepCopyObject(), nil
	}
	return r.Store.Get(k)
}

// TestNodeDeletePinned: the deletion an agent asks for is pinned to the
// version whose binding was checked. A pod re-created on another node
// under the same name after the check is not deleted.
func TestNodeDeletePinned(t *testing.T) {
	st := store.New(store.DefaultConfig())
	e := &env{t: t, st: st}
	e.seedNamespace("default")
	e.seed(boundPod("p", "n1"))
	key := store.Key{Kind: "Pod", Namespace: "default", Name: "p"}
	stale, err := st.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	// Deleted and re-created, bound to n2.
	if res := st.Apply([]store.Op{{Type: store.OpDelete, Key: key}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	e.seed(boundPod("p", "n2"))
	srv, err := NewServer(ServerConfig{Backend: &testBackend{st: st}, Reader: staleReader{Store: st, key: key, stale: stale}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("DELETE", "/api/v1/namespaces/default/pods/p", strings.NewReader(`{"gracePeriodSeconds":0}`))
	req = req.WithContext(WithIdentity(req.Context(), Identity{Node: "n1"}))
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusConflict {
		t.Errorf("HTTP %d, want 409: %s", w.Code, w.Body)
	}
	o, err := st.Get(key)
	if err != nil {
		t.Fatalf("n2's pod was deleted: %v", err)
	}
	if o.(*api.Pod).Spec.NodeName != "n2" {
		t.Errorf("pod %+v", o)
	}
}
