package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// These tests run the Go client (api.Client) against the real server.

func newClientEnv(t *testing.T, opts ...envOption) (*env, *api.Client, context.Context) {
	e := newEnv(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return e, api.NewClient(e.ts.URL), ctx
}

func testDeployment(name string, replicas int32) *api.Deployment {
	d := &api.Deployment{ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{"app": name}}}
	d.Spec.Replicas = &replicas
	d.Spec.Selector = &api.LabelSelector{MatchLabels: map[string]string{"app": name}}
	d.Spec.Template.Labels = map[string]string{"app": name}
	d.Spec.Template.Spec.Containers = []api.Container{{Name: "c", Image: "nginx:1.27"}}
	return d
}

func TestClientCRUD(t *testing.T) {
	e, c, ctx := newClientEnv(t)
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	created, err := c.Create(ctx, testDeployment("web", 2))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := created.(*api.Deployment)
	if !ok || d.Namespace != "default" || d.UID == "" || d.Generation != 1 {
		t.Fatalf("created %#v", created)
	}
	if _, err := c.Create(ctx, testDeployment("web", 2)); !api.IsAlreadyExists(err) {
		t.Errorf("second create: %v", err)
	}
	got, err := c.Get(ctx, "Deployment", "default", "web")
	if err != nil || got.GetObjectMeta().UID != d.UID {
		t.Fatalf("get: %v %v", got, err)
	}
	if _, err := c.Get(ctx, "deploy", "default", "nope"); !api.IsNotFound(err) {
		t.Errorf("get absent: %v", err)
	}
	if _, err := c.Get(ctx, "Widget", "default", "x"); err == nil {
		t.Errorf("unknown kind accepted")
	}

	upd := got.DeepCopyObject().(*api.Deployment)
	upd.Spec.Replicas = ptr[int32](5)
	out, err := c.Update(ctx, upd)
	if err != nil || *out.(*api.Deployment).Spec.Replicas != 5 {
		t.Fatalf("update: %v %v", out, err)
	}
	if _, err := c.Update(ctx, upd); !api.IsConflict(err) {
		t.Errorf("stale update: %v", err)
	}
	st := out.DeepCopyObject().(*api.Deployment)
	st.Status.ReadyReplicas = 3
	out, err = c.UpdateStatus(ctx, st)
	if err != nil || out.(*api.Deployment).Status.ReadyReplicas != 3 {
		t.Fatalf("update status: %v %v", out, err)
	}
	bad := testDeployment("bad", -1)
	_, err = c.Create(ctx, bad)
	if !api.IsInvalid(err) {
		t.Fatalf("invalid create: %v", err)
	}
	var se *api.StatusError
	if !errorsAs(err, &se) || se.Code() != 422 || se.ErrStatus.Details.Causes[0].Field != "spec.replicas" {
		t.Errorf("invalid create: %#v", err)
	}

	objs, rv, err := c.List(ctx, "Deployment", "", api.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(objs) != 1 || rv == "" {
		t.Fatalf("list: %v %q %v", objs, rv, err)
	}
	if _, _, err := c.List(ctx, "Deployment", "default", api.ListOptions{LabelSelector: "app in ("}); err == nil {
		t.Errorf("bad selector accepted")
	}
	nodes, _, err := c.List(ctx, "Node", "", api.ListOptions{Stale: true})
	if err != nil || len(nodes) != 0 {
		t.Errorf("nodes: %v %v", nodes, err)
	}

	if err := c.Delete(ctx, "Deployment", "default", "web"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "Deployment", "default", "web"); !api.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
	if rev := e.st.Revision(); rev == 0 {
		t.Errorf("store untouched")
	}
}

func errorsAs(err error, se **api.StatusError) bool {
	v, ok := err.(*api.StatusError)
	*se = v
	return ok
}

func TestClientApply(t *testing.T) {
	_, c, ctx := newClientEnv(t)
	res, action, err := c.Apply(ctx, testDeployment("web", 2))
	if err != nil || action != api.ApplyCreated {
		t.Fatalf("first apply: %s %v", action, err)
	}
	// The same manifest again: nothing to do, even though the server
	// defaulted fields the manifest leaves out.
	res2, action, err := c.Apply(ctx, testDeployment("web", 2))
	if err != nil || action != api.ApplyUnchanged || res2.GetObjectMeta().ResourceVersion != res.GetObjectMeta().ResourceVersion {
		t.Fatalf("second apply: %s %v", action, err)
	}
	d := testDeployment("web", 3)
	d.Annotations = map[string]string{"note": "x"}
	res3, action, err := c.Apply(ctx, d)
	if err != nil || action != api.ApplyConfigured || *res3.(*api.Deployment).Spec.Replicas != 3 || res3.GetObjectMeta().UID != res.GetObjectMeta().UID {
		t.Fatalf("changed apply: %s %v", action, err)
	}
	if _, action, _ := c.Apply(ctx, d); action != api.ApplyUnchanged {
		t.Errorf("re-apply of the change: %s", action)
	}
	// A label change alone is a change.
	d.Labels["tier"] = "front"
	if _, action, _ := c.Apply(ctx, d); action != api.ApplyConfigured {
		t.Errorf("label change: %s", action)
	}
	// An invalid manifest is refused on the update path too.
	d.Spec.Replicas = ptr[int32](-3)
	if _, _, err := c.Apply(ctx, d); !api.IsInvalid(err) {
		t.Errorf("invalid apply: %v", err)
	}
	// Apply into a missing namespace says so.
	d2 := testDeployment("x", 1)
	d2.Namespace = "nope"
	if _, _, err := c.Apply(ctx, d2); !api.IsNotFound(err) {
		t.Errorf("missing namespace: %v", err)
	}
}

func TestClientWatch(t *testing.T) {
	e, c, ctx := newClientEnv(t)
	for i := range 3 {
		if _, err := c.Create(ctx, testDeployment(fmt.Sprintf("d%d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	_, rv, err := c.List(ctx, "Deployment", "default", api.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := c.Watch(wctx, "Deployment", "default", api.ListOptions{}, rv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, testDeployment("d3", 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "Deployment", "default", "d0"); err != nil {
		t.Fatal(err)
	}
	next := func() api.WatchEvent {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed early")
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("timed out waiting for a watch event")
		}
		return api.WatchEvent{}
	}
	if ev := next(); ev.Type != "ADDED" || ev.Object.(*api.Deployment).Name != "d3" {
		t.Errorf("first event %s %v", ev.Type, ev.Object)
	}
	if ev := next(); ev.Type != "DELETED" || ev.Object.(*api.Deployment).Name != "d0" {
		t.Errorf("second event %s %v", ev.Type, ev.Object)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			// at most a stray event; the channel must close next
			<-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
	waitStopped(t, e.rec.all()[0])

	// Without a resourceVersion: the current objects first.
	ch, err = c.Watch(ctx, "deployments", "default", api.ListOptions{LabelSelector: "app=d1", TimeoutSeconds: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Type != "ADDED" || ev.Object.GetObjectMeta().Name != "d1" {
		t.Errorf("initial event %s %v", ev.Type, ev.Object)
	}
	select { // timeoutSeconds=1 ends it
	case _, ok := <-ch:
		if ok {
			t.Error("unexpected event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch with timeoutSeconds=1 did not end")
	}
}

func TestClientWatchGone(t *testing.T) {
	_, c, ctx := newClientEnv(t, func(c *store.Config, _ *ServerConfig) { c.HistorySize = 2 })
	for i := range 5 {
		if _, err := c.Create(ctx, testDeployment(fmt.Sprintf("d%d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	// The watch starts; its only event is the 410 (as Kubernetes sends it).
	ch, err := c.Watch(ctx, "Deployment", "default", api.ListOptions{}, "1")
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := <-ch
	if !ok || ev.Type != "ERROR" || !api.IsGone(ev.Err) {
		t.Errorf("watch from a compacted revision: %+v", ev)
	}
	if _, ok := <-ch; ok {
		t.Error("the watch went on after its ERROR event")
	}
}

func TestClientClusterRaft(t *testing.T) {
	_, c, ctx := newClientEnv(t, func(_ *store.Config, cfg *ServerConfig) {
		cfg.Status = func() any { return map[string]string{"state": "Leader"} }
	})
	raw, err := c.ClusterRaft(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil || m["state"] != "Leader" {
		t.Errorf("raft status %s: %v", raw, err)
	}
}

func BenchmarkClientCreate(b *testing.B) {
	e := newEnv(b)
	c := api.NewClient(e.ts.URL)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("c%d", i)}, Data: map[string]string{"k": "v"}}
		if _, err := c.Create(ctx, cm); err != nil {
			b.Fatal(err)
		}
	}
}
