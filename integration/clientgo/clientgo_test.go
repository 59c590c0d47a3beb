package clientgo

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

var syncPods = flag.Int("sync-pods", 1200, "pods in the store before TestInformerInitialSync starts its informer (the figure of issue 13 uses 10000)")

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}}},
	}
}

// TestTypedClients creates, gets, lists, updates and deletes a Pod, a
// Deployment, a Service and a ConfigMap through client-go's typed clients.
func TestTypedClients(t *testing.T) {
	s := startShoal(t, 10000)
	ctx := ctxFor(t)
	c := s.client

	pods := c.CoreV1().Pods("default")
	p, err := pods.Create(ctx, testPod("web-1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if p.UID == "" || p.ResourceVersion == "" {
		t.Fatalf("created pod lacks uid or resourceVersion: %+v", p.ObjectMeta)
	}
	p.Labels["tier"] = "front"
	if p, err = pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil || p.Labels["tier"] != "front" {
		t.Fatalf("update pod: %v", err)
	}
	if _, err := pods.Get(ctx, "web-1", metav1.GetOptions{}); err != nil {
		t.Fatalf("get pod: %v", err)
	}
	if l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "tier=front", FieldSelector: "metadata.name=web-1"}); err != nil || len(l.Items) != 1 {
		t.Fatalf("list pods: %v %v", l, err)
	}

	replicas := int32(2)
	deps := c.AppsV1().Deployments("default")
	d, err := deps.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       testPod("").Spec,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	replicas = 3
	d.Spec.Replicas = &replicas
	if d, err = deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil || *d.Spec.Replicas != 3 {
		t.Fatalf("update deployment: %v", err)
	}
	if l, err := deps.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 1 {
		t.Fatalf("list deployments: %v %v", l, err)
	}

	svcs := c.CoreV1().Services("default")
	svc, err := svcs.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	svc.Spec.Ports[0].Port = 81
	if svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil || svc.Spec.Ports[0].Port != 81 {
		t.Fatalf("update service: %v", err)
	}

	cms := c.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	cm.Data["k"] = "w"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil || cm.Data["k"] != "w" {
		t.Fatalf("update configmap: %v", err)
	}
	stale := cm.DeepCopy()
	stale.ResourceVersion = "1"
	if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want a Conflict", err)
	}

	for name, del := range map[string]func() error{
		"pod":        func() error { return pods.Delete(ctx, "web-1", metav1.DeleteOptions{}) },
		"deployment": func() error { return deps.Delete(ctx, "web", metav1.DeleteOptions{}) },
		"service":    func() error { return svcs.Delete(ctx, "web", metav1.DeleteOptions{}) },
		"configmap":  func() error { return cms.Delete(ctx, "cfg", metav1.DeleteOptions{}) },
	} {
		if err := del(); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	if _, err := cms.Get(ctx, "cfg", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get deleted configmap: %v, want NotFound", err)
	}
}

// seedPods puts n pods in the store directly, in batches.
func seedPods(t testing.TB, st *store.Store, n int) {
	t.Helper()
	const batch = 500
	for i := 0; i < n; i += batch {
		var ops []store.Op
		for j := i; j < min(n, i+batch); j++ {
			p := &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("seed-%05d", j), UID: api.NewUID(),
				Labels: map[string]string{"app": "seed"}}}
			p.Spec.Containers = []api.Container{{Name: "c", Image: "nginx:1.27"}}
			api.SetTypeMeta(p)
			ops = append(ops, store.Op{Type: store.OpCreate, Object: p})
		}
		for _, r := range st.Apply(ops) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
}

// podEvents records what an informer's handler saw.
type podEvents struct {
	mu                      sync.Mutex
	added, updated, deleted map[string]int
}

func (e *podEvents) count(m map[string]int, name string) {
	e.mu.Lock()
	m[name]++
	e.mu.Unlock()
}

func (e *podEvents) seen(m map[string]int, name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return m[name] > 0
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInformerInitialSync starts a SharedInformer on Pods over a store
// holding -sync-pods pods, reports how long the initial sync took, then
// checks that it sees an ADDED, a MODIFIED and a DELETED made through the
// API. It runs twice: with client-go's default streaming list (a watch with
// sendInitialEvents) and with the classic reflector (a list in pages of 500,
// then a watch with bookmarks).
func TestInformerInitialSync(t *testing.T) {
	t.Run("streaming", func(t *testing.T) {
		clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, true)
		testInformer(t, "sendInitialEvents=true")
	})
	t.Run("paginated", func(t *testing.T) {
		clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, false)
		testInformer(t, "limit=500")
	})
}

func testInformer(t *testing.T, wantRequest string) {
	s := startShoal(t, 10000)
	seedPods(t, s.st, *syncPods)
	ctx := ctxFor(t)

	ev := &podEvents{added: map[string]int{}, updated: map[string]int{}, deleted: map[string]int{}}
	factory := informers.NewSharedInformerFactory(s.client, 0)
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { ev.count(ev.added, o.(*corev1.Pod).Name) },
		UpdateFunc: func(_, o any) { ev.count(ev.updated, o.(*corev1.Pod).Name) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			ev.count(ev.deleted, o.(*corev1.Pod).Name)
		},
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop) // Shutdown waits for the informers to stop
		factory.Shutdown()
	})
	start := time.Now()
	factory.Start(stop)
	// cache.WaitForCacheSync polls every 100ms: too coarse for the figure.
	for !inf.HasSynced() {
		if ctx.Err() != nil {
			t.Fatal("the informer did not sync")
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	if n := len(inf.GetStore().List()); n != *syncPods {
		t.Fatalf("informer holds %d pods after sync, want %d", n, *syncPods)
	}
	t.Logf("informer initial sync of %d pods: %v", *syncPods, took)
	reqs := s.requested("/api/v1/pods?")
	for _, r := range reqs {
		t.Logf("informer request: %s", r)
	}
	if len(s.requested(wantRequest)) == 0 {
		t.Errorf("no informer request with %s", wantRequest)
	}

	pods := s.client.CoreV1().Pods("default")
	p, err := pods.Create(ctx, testPod("watched"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ADDED watched", func() bool { return ev.seen(ev.added, "watched") })
	p.Labels["v"] = "2"
	if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "MODIFIED watched", func() bool { return ev.seen(ev.updated, "watched") })
	if err := pods.Delete(ctx, "watched", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "DELETED watched", func() bool { return ev.seen(ev.deleted, "watched") })
	if _, ok, _ := inf.GetStore().GetByKey("default/watched"); ok {
		t.Fatal("the informer still holds the deleted pod")
	}
}
