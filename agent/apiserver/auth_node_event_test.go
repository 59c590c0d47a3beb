package apiserver

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

func eventJSON(t *testing.T, name, ns string, ref api.ObjectReference, host, rv string) string {
	t.Helper()
	e := &api.Event{ObjectMeta: api.ObjectMeta{Name: name, Namespace: ns, ResourceVersion: rv}, InvolvedObject: ref,
		Reason: "Started", Message: "Started container c", Type: api.EventTypeNormal, Count: 1,
		Source: api.EventSource{Component: "kubelet", Host: host}}
	api.SetTypeMeta(e)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNodeRestrictionEvents: through the Server, a real store and agent
// certificates over TLS, an agent writes Events about its own Node and the
// pods bound to it, from its own host, and nothing else.
func TestNodeRestrictionEvents(t *testing.T) {
	e := newEnv(t)
	f := newTLSFixture(t, e.srv.Handler())
	n1cert := f.ca.leaf(t, "n1", "worker")
	n1 := f.client(&n1cert)
	for name, node := range map[string]string{"mine": "n1", "theirs": "n2", "unbound": ""} {
		e.seed(boundPod(name, node))
	}
	pod := func(name string) api.ObjectReference {
		o, err := e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return api.RefTo(o)
	}
	evs := "/api/v1/namespaces/default/events"
	mine := pod("mine")
	otherUID := mine
	otherUID.UID = "not-the-stored-one"
	refused := []struct{ what, method, path, body string }{
		{"about another node's pod", "POST", evs, eventJSON(t, "a", "default", pod("theirs"), "n1", "")},
		{"about an unbound pod", "POST", evs, eventJSON(t, "b", "default", pod("unbound"), "n1", "")},
		{"about a pod that does not exist", "POST", evs, eventJSON(t, "c", "default", api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "ghost"}, "n1", "")},
		{"about an older pod of that name", "POST", evs, eventJSON(t, "d", "default", otherUID, "n1", "")},
		{"about another Node", "POST", evs, eventJSON(t, "e", "default", api.NodeRef("n2"), "n1", "")},
		{"about a ReplicaSet", "POST", evs, eventJSON(t, "f", "default", api.ObjectReference{Kind: "ReplicaSet", Namespace: "default", Name: "rs"}, "n1", "")},
		{"claiming another host", "POST", evs, eventJSON(t, "g", "default", mine, "n2", "")},
	}
	rev, before := e.snapshot()
	for _, c := range refused {
		r := f.do(n1, c.method, c.path, "", c.body, nil)
		if r.code != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403: %s", c.what, r.code, r.body)
		}
	}
	if rev2, after := e.snapshot(); rev2 != rev || string(after) != string(before) {
		t.Fatalf("a refused write changed the store (revision %d -> %d)", rev, rev2)
	}

	// Allowed: about its pod, about its Node; updates of those.
	mustCode(t, f.do(n1, "POST", evs, "", eventJSON(t, "mine.1", "default", mine, "n1", ""), nil), http.StatusCreated)
	mustCode(t, f.do(n1, "POST", evs, "", eventJSON(t, "n1.1", "default", api.NodeRef("n1"), "n1", ""), nil), http.StatusCreated)
	stored, err := e.st.Get(store.Key{Kind: "Event", Namespace: "default", Name: "mine.1"})
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, f.do(n1, "PUT", evs+"/mine.1", "", eventJSON(t, "mine.1", "default", mine, "n1", stored.GetObjectMeta().ResourceVersion), nil), http.StatusOK)
	// Turning its Event into one about another node's pod is refused.
	r := f.do(n1, "PUT", evs+"/mine.1", "", eventJSON(t, "mine.1", "default", pod("theirs"), "n1", ""), nil)
	mustCode(t, r, http.StatusForbidden)
	// An agent never deletes Events.
	mustCode(t, f.do(n1, "DELETE", evs+"/mine.1", "", "", nil), http.StatusForbidden)
	// A voter's certificate (the leader's scheduler) writes Events about
	// any object, from its own host only.
	v1cert := f.ca.leaf(t, "v1", "voter")
	v1 := f.client(&v1cert)
	mustCode(t, f.do(v1, "POST", evs, "", eventJSON(t, "theirs.v1", "default", pod("theirs"), "v1", ""), nil), http.StatusCreated)
	mustCode(t, f.do(v1, "POST", evs, "", eventJSON(t, "theirs.v2", "default", pod("theirs"), "n2", ""), nil), http.StatusForbidden)
	mustCode(t, f.do(v1, "DELETE", evs+"/theirs.v1", "", "", nil), http.StatusForbidden)
	// An Event someone else wrote about another node's pod cannot be taken over.
	e.seed(&api.Event{ObjectMeta: api.ObjectMeta{Name: "theirs.1", Namespace: "default"}, InvolvedObject: pod("theirs"),
		Reason: "Started", Type: api.EventTypeNormal})
	mustCode(t, f.do(n1, "PUT", evs+"/theirs.1", "", eventJSON(t, "theirs.1", "default", mine, "n1", ""), nil), http.StatusForbidden)
}
