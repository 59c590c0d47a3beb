package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The client is tested against the real server in package agent; these
// tests cover what needs no server: URLs, error decoding, the watch stream.

func TestResourcePath(t *testing.T) {
	pod, _ := LookupKind("Pod")
	dep, _ := LookupKind("Deployment")
	node, _ := LookupKind("Node")
	ns, _ := LookupKind("Namespace")
	cases := []struct {
		k        KindInfo
		ns, name string
		status   bool
		want     string
	}{
		{pod, "default", "", false, "/api/v1/namespaces/default/pods"},
		{pod, "", "", false, "/api/v1/pods"},
		{pod, "", "web", false, "/api/v1/namespaces/default/pods/web"},
		{pod, "kube", "web", true, "/api/v1/namespaces/kube/pods/web/status"},
		{dep, "x", "web", false, "/apis/apps/v1/namespaces/x/deployments/web"},
		{dep, "", "", false, "/apis/apps/v1/deployments"},
		{node, "ignored", "n1", true, "/api/v1/nodes/n1/status"},
		{ns, "", "team", false, "/api/v1/namespaces/team"},
		{pod, "a b", "c/d", false, "/api/v1/namespaces/a%20b/pods/c%2Fd"},
	}
	for _, c := range cases {
		if got := resourcePath(c.k, c.ns, c.name, c.status); got != c.want {
			t.Errorf("%s %q %q: %s, want %s", c.k.Kind, c.ns, c.name, got, c.want)
		}
	}
}

func TestLookupClientKind(t *testing.T) {
	for _, s := range []string{"Deployment", "deploy", "deployments", "deployment"} {
		if k, err := lookupClientKind(s); err != nil || k.Kind != "Deployment" {
			t.Errorf("%s: %v %v", s, k.Kind, err)
		}
	}
	if _, err := lookupClientKind("widget"); err == nil || !strings.Contains(err.Error(), "widget") {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/namespaces/default/pods/a": // a Status
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"a\" not found","reason":"NotFound","code":404}`)
		case "/api/v1/namespaces/default/pods/b": // a proxy's plain text
			w.WriteHeader(502)
			fmt.Fprint(w, "bad gateway\n")
		case "/api/v1/namespaces/default/pods/c": // 409 without reason
			w.WriteHeader(409)
		case "/api/v1/namespaces/default/pods/d": // not JSON at all on 200
			fmt.Fprint(w, "<html>")
		case "/api/v1/namespaces/default/pods/e": // slow
			<-r.Context().Done()
		}
	}))
	defer ts.Close()
	c := NewClient(ts.URL+"/", WithRequestTimeout(time.Second))
	ctx := context.Background()

	_, err := c.Get(ctx, "Pod", "default", "a")
	if !IsNotFound(err) || err.Error() != `pods "a" not found` {
		t.Errorf("a: %v", err)
	}
	var se *StatusError
	_, err = c.Get(ctx, "Pod", "default", "b")
	if !errors.As(err, &se) || se.Code() != 502 || !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("b: %v", err)
	}
	_, err = c.Get(ctx, "Pod", "default", "c")
	if !IsConflict(err) || IsAlreadyExists(err) {
		t.Errorf("c: %v", err)
	}
	if _, err = c.Get(ctx, "Pod", "default", "d"); err == nil {
		t.Errorf("d: garbage accepted")
	}
	start := time.Now()
	if _, err = c.Get(ctx, "Pod", "default", "e"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("e: %v after %v", err, time.Since(start))
	}
	if _, err := c.Get(ctx, "Pod", "default", ""); err == nil {
		t.Errorf("empty name accepted")
	}
	if err := c.Delete(ctx, "Pod", "default", ""); err == nil {
		t.Errorf("empty name accepted by Delete")
	}
	if _, err := c.Update(ctx, &Pod{}); err == nil || !strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("update without name: %v", err)
	}
}

func TestStatusHelpers(t *testing.T) {
	pod, _ := LookupKind("Pod")
	dep, _ := LookupKind("Deployment")
	cases := []struct {
		err                                   error
		notFound, conflict, exists, gone, inv bool
	}{
		{NewNotFound(pod, "a"), true, false, false, false, false},
		{NewConflict(pod, "a", "x"), false, true, false, false, false},
		{NewAlreadyExists(pod, "a"), false, false, true, false, false},
		{NewGone("x"), false, false, false, true, false},
		{NewInvalid(dep, "a", []StatusCause{{Field: "spec.x", Message: "bad"}}), false, false, false, false, true},
		{fmt.Errorf("wrapped: %w", NewNotFound(pod, "a")), true, false, false, false, false},
		{errors.New("plain"), false, false, false, false, false},
		{nil, false, false, false, false, false},
	}
	for _, c := range cases {
		if IsNotFound(c.err) != c.notFound || IsConflict(c.err) != c.conflict || IsAlreadyExists(c.err) != c.exists || IsGone(c.err) != c.gone || IsInvalid(c.err) != c.inv {
			t.Errorf("%v: wrong classification", c.err)
		}
	}
	if m := NewNotFound(dep, "web").Error(); m != `deployments.apps "web" not found` {
		t.Errorf("not found message %q", m)
	}
	inv := NewInvalid(dep, "web", []StatusCause{{Field: "spec.a", Message: "x"}, {Field: "spec.b", Message: "y"}})
	if m := inv.Error(); m != `Deployment.apps "web" is invalid: [spec.a: x; spec.b: y]` {
		t.Errorf("invalid message %q", m)
	}
	if s := inv.Status(); s.Kind != "Status" || s.Status != StatusFailure || s.Code != 422 {
		t.Errorf("status %+v", s)
	}
}

func TestClientWatchStream(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") != "true" || r.URL.Query().Get("resourceVersion") != "7" || r.URL.Query().Get("timeoutSeconds") != "30" {
			w.WriteHeader(400)
			return
		}
		fmt.Fprintln(w, `{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"8"},"data":{"k":"v"}}}`)
		fmt.Fprintln(w, `{"type":"DELETED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"9"}}}`)
		fmt.Fprintln(w, `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"fell behind","reason":"Expired","code":410}}`)
		fmt.Fprintln(w, `{"type":"ADDED","object":{}}`) // never delivered: ERROR is last
	}))
	defer ts.Close()
	c := NewClient(ts.URL)
	ch, err := c.Watch(context.Background(), "ConfigMap", "default", ListOptions{TimeoutSeconds: 30}, "7")
	if err != nil {
		t.Fatal(err)
	}
	var got []WatchEvent
	timeout := time.After(5 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-ch:
			if !ok {
				done = true
				break
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatal("watch channel never closed")
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	if cm, ok := got[0].Object.(*ConfigMap); !ok || got[0].Type != "ADDED" || cm.Data["k"] != "v" {
		t.Errorf("event 0: %+v", got[0])
	}
	if got[1].Type != "DELETED" || got[1].Object.GetObjectMeta().ResourceVersion != "9" {
		t.Errorf("event 1: %+v", got[1])
	}
	if got[2].Type != WatchEventError || !IsGone(got[2].Err) || got[2].Object != nil {
		t.Errorf("event 2: %+v", got[2])
	}

	// A refused watch is an error from Watch itself.
	if _, err := c.Watch(context.Background(), "ConfigMap", "default", ListOptions{}, "1"); err == nil {
		t.Error("refused watch returned no error")
	}
}

func TestSameIntent(t *testing.T) {
	a := &ConfigMap{ObjectMeta: ObjectMeta{Name: "a", Labels: map[string]string{}}, Data: map[string]string{"k": "v"}}
	b := a.DeepCopyObject().(*ConfigMap)
	b.ResourceVersion, b.UID, b.Labels = "9", "u", nil
	if !sameIntent(a, b) {
		t.Error("server-owned metadata or nil vs empty labels made a difference")
	}
	b.Data["k"] = "w"
	if sameIntent(a, b) {
		t.Error("a data change went unnoticed")
	}
	b.Data["k"] = "v"
	b.Annotations = map[string]string{"x": "y"}
	if sameIntent(a, b) {
		t.Error("an annotation change went unnoticed")
	}
}

func TestKeepServerFields(t *testing.T) {
	cur := &Service{ObjectMeta: ObjectMeta{Name: "web", Annotations: map[string]string{"shoal.dev/x": "1", "user": "old"}},
		Spec: ServiceSpec{ClusterIP: "10.96.0.7", Ports: []ServicePort{{Port: 80, Protocol: "TCP", NodePort: 30080}}}}
	want := &Service{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ServiceSpec{Ports: []ServicePort{{Port: 80}}}}
	keepServerFields(want, cur)
	if want.Spec.ClusterIP != "10.96.0.7" || want.Spec.Ports[0].NodePort != 30080 {
		t.Errorf("allocations not kept: %+v", want.Spec)
	}
	if want.Annotations["shoal.dev/x"] != "1" {
		t.Errorf("control-plane annotation dropped: %v", want.Annotations)
	}
	if _, ok := want.Annotations["user"]; ok {
		t.Errorf("a user annotation the manifest removed came back: %v", want.Annotations)
	}
	pinned := &Service{ObjectMeta: ObjectMeta{Name: "web"}, Spec: ServiceSpec{ClusterIP: "10.96.0.9"}}
	keepServerFields(pinned, cur)
	if pinned.Spec.ClusterIP != "10.96.0.9" {
		t.Errorf("the manifest's own clusterIP was overwritten: %s", pinned.Spec.ClusterIP)
	}
}

// fakeServiceServer stores one Service the way an agent does: defaulted,
// validated, with a clusterIP and node ports allocated. It counts updates.
type fakeServiceServer struct {
	t       *testing.T
	mu      sync.Mutex
	stored  *Service
	rv      int
	updates int
}

func (f *fakeServiceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, _ := LookupKind("Service")
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if err := json.NewEncoder(w).Encode(v); err != nil {
			f.t.Errorf("fake server: %v", err)
		}
	}
	switch r.Method {
	case http.MethodGet:
		if f.stored == nil {
			reply(http.StatusNotFound, NewNotFound(info, "web").Status())
			return
		}
		reply(http.StatusOK, f.stored)
	case http.MethodPost, http.MethodPut:
		if r.Method == http.MethodPost && f.stored != nil {
			reply(http.StatusConflict, NewAlreadyExists(info, "web").Status())
			return
		}
		var svc Service
		if err := json.NewDecoder(r.Body).Decode(&svc); err != nil {
			reply(http.StatusBadRequest, NewBadRequest("%v", err).Status())
			return
		}
		SetDefaults(&svc)
		if errs := Validate(&svc); errs != nil {
			f.t.Errorf("fake server: the client sent an invalid Service: %v", errs)
			reply(http.StatusUnprocessableEntity, NewBadRequest("%v", errs).Status())
			return
		}
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.0.7", []string{"10.96.0.7"}
		}
		for i := range svc.Spec.Ports {
			if svc.Spec.Type == ServiceTypeNodePort && svc.Spec.Ports[i].NodePort == 0 {
				svc.Spec.Ports[i].NodePort = int32(30080 + i)
			}
		}
		if r.Method == http.MethodPut {
			f.updates++
		}
		f.rv++
		svc.ResourceVersion = fmt.Sprint(f.rv)
		f.stored = &svc
		reply(http.StatusOK, &svc)
	}
}

// Re-applying a manifest that leaves out what the server fills in
// (defaults that depend on other fields, allocations) is "unchanged".
func TestApplyServiceDefaultsAreUnchanged(t *testing.T) {
	fake := &fakeServiceServer{t: t}
	ts := httptest.NewServer(fake)
	defer ts.Close()
	c := NewClient(ts.URL)
	ctx := context.Background()
	manifest := func(extra string) Object {
		t.Helper()
		o, err := DecodeObject([]byte(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{name: http, port: 80, targetPort: 8080}, {name: dns, port: 53, protocol: UDP}]
` + extra))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	steps := []struct {
		extra       string
		want        string
		wantUpdates int
	}{
		{"", ApplyCreated, 0},
		{"", ApplyUnchanged, 0},
		{"  publishNotReadyAddresses: true\n", ApplyConfigured, 1},
		{"  publishNotReadyAddresses: true\n", ApplyUnchanged, 1},
		{"  externalTrafficPolicy: Local\n", ApplyConfigured, 2},
		{"  externalTrafficPolicy: Local\n", ApplyUnchanged, 2},
		{"  externalTrafficPolicy: Cluster\n  internalTrafficPolicy: Cluster\n" +
			"  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10800}}\n", ApplyConfigured, 3},
		{"", ApplyUnchanged, 3}, // the defaults spelled out and left out are the same
	}
	for i, st := range steps {
		_, did, err := c.Apply(ctx, manifest(st.extra))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		fake.mu.Lock()
		updates := fake.updates
		fake.mu.Unlock()
		if did != st.want || updates != st.wantUpdates {
			t.Fatalf("step %d (%q): %s after %d updates, want %s after %d", i, st.extra, did, updates, st.want, st.wantUpdates)
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	s := fake.stored.Spec
	if s.SessionAffinityConfig == nil || *s.SessionAffinityConfig.ClientIP.TimeoutSeconds != DefaultSessionAffinityTimeoutSeconds ||
		s.ExternalTrafficPolicy != TrafficPolicyCluster || s.InternalTrafficPolicy != TrafficPolicyCluster || s.Ports[1].NodePort != 30081 {
		t.Errorf("stored spec = %+v", s)
	}
}
