package apiserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/controllers"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// TestOrphanKeepsPodsUnderControllers: with the real controllers running
// (ReplicaSet, Deployment, garbage collection), deleting a Deployment with
// propagationPolicy=Orphan keeps its ReplicaSet and that ReplicaSet's
// pods, while a Deployment deleted in the background loses both.
func TestOrphanKeepsPodsUnderControllers(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cfg := controllers.LoopConfig{Resync: 20 * time.Millisecond, Settle: time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		controllers.Run(ctx, e.st, e.be, cfg, controllers.Set(controllers.DefaultClusterConfig()))
	}()
	defer func() { cancel(); wg.Wait() }()

	deps := "/apis/apps/v1/namespaces/default/deployments"
	for _, name := range []string{"keep", "gone"} {
		body := strings.NewReplacer("name: web\n  labels", "name: "+name+"\n  labels", "app: web", "app: "+name).Replace(deploymentYAML)
		mustCode(t, e.request(http.MethodPost, deps, "application/yaml", body), 201)
	}
	list := func(kind, app string) []api.Object {
		sel, _ := api.ParseSelector("app=" + app)
		objs, _, err := e.st.List(kind, "default", store.Selector{Labels: sel})
		if err != nil {
			t.Fatal(err)
		}
		var live []api.Object
		for _, o := range objs {
			if o.GetObjectMeta().DeletionTimestamp == nil {
				live = append(live, o)
			}
		}
		return live
	}
	waitFor := func(what string, cond func() string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			msg := cond()
			if msg == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %s", what, msg)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, app := range []string{"keep", "gone"} {
		waitFor(app+"'s ReplicaSet and 2 pods", func() string {
			rs, pods := list("ReplicaSet", app), list("Pod", app)
			if len(rs) != 1 || len(pods) != 2 {
				return fmt.Sprintf("%d ReplicaSets, %d pods", len(rs), len(pods))
			}
			return ""
		})
	}
	keptPods := map[string]string{}
	for _, p := range list("Pod", "keep") {
		keptPods[p.GetObjectMeta().Name] = p.GetObjectMeta().UID
	}
	mustCode(t, e.request(http.MethodDelete, deps+"/keep", "application/json", `{"propagationPolicy":"Orphan"}`), 200)
	mustCode(t, e.request(http.MethodDelete, deps+"/gone", "application/json", `{"propagationPolicy":"Background"}`), 200)
	// Once garbage collection has removed gone's ReplicaSet and pods, it
	// has also judged keep's, which were orphaned before.
	waitFor("gone's ReplicaSet and pods collected", func() string {
		if rs, pods := list("ReplicaSet", "gone"), list("Pod", "gone"); len(rs)+len(pods) > 0 {
			return fmt.Sprintf("%d ReplicaSets, %d pods left", len(rs), len(pods))
		}
		return ""
	})
	rs := list("ReplicaSet", "keep")
	if len(rs) != 1 || len(rs[0].GetObjectMeta().OwnerReferences) != 0 {
		t.Fatalf("keep's ReplicaSet after an orphaning delete: %+v", rs)
	}
	pods := list("Pod", "keep")
	if len(pods) != 2 {
		t.Fatalf("keep's pods: %d, want the same 2", len(pods))
	}
	for _, p := range pods {
		m := p.GetObjectMeta()
		if keptPods[m.Name] != m.UID {
			t.Errorf("pod %s is not one of the pods before the delete", m.Name)
		}
		if c := api.ControllerOf(m); c == nil || c.UID != rs[0].GetObjectMeta().UID {
			t.Errorf("pod %s is no longer owned by its ReplicaSet: %+v", m.Name, m.OwnerReferences)
		}
	}
}

// nthBackend runs hook just before its nth proposal.
type nthBackend struct {
	*testBackend
	n, seen int
	hook    func()
}

func (b *nthBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if b.seen++; b.seen == b.n {
		b.hook()
	}
	return b.testBackend.Propose(ctx, ops)
}

// TestOrphanOwnerChangedBeforeDelete: the owner, marked and its dependents
// orphaned, is changed before the final delete: the delete's loop reads it
// again and deletes the new version instead of leaving it marked.
func TestOrphanOwnerChangedBeforeDelete(t *testing.T) {
	e := newEnv(t)
	rsYAML := strings.NewReplacer("Deployment", "ReplicaSet", "name: web\n  labels", "name: rs\n  labels").Replace(deploymentYAML)
	mustCode(t, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/replicasets", "application/yaml", rsYAML), 201)
	key := store.Key{Kind: "ReplicaSet", Namespace: "default", Name: "rs"}
	o, _ := e.st.Get(key)
	p := boundPod("a", "")
	p.OwnerReferences = []api.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: o.GetObjectMeta().UID}}
	e.seed(p)
	e.srv.prop.backend = &nthBackend{testBackend: e.be, n: 2, hook: func() {
		o, _ := e.st.Get(key)
		c := o.DeepCopyObject().(*api.ReplicaSet)
		c.Status.Replicas = 7
		if res := e.st.Apply([]store.Op{{Type: store.OpUpdateStatus, Object: c}}); res[0].Err != nil {
			t.Error(res[0].Err)
		}
	}}
	mustCode(t, e.request(http.MethodDelete, "/apis/apps/v1/namespaces/default/replicasets/rs?propagationPolicy=Orphan", "", ""), 200)
	if _, err := e.st.Get(key); err == nil {
		t.Fatal("the owner is still there")
	}
}
