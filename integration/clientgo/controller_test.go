package clientgo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// mirrorLabel marks the ConfigMaps the mirror controller owns; its value
// is the Deployment mirrored.
const mirrorLabel = "mirror-of"

// mirrorMaxDelay caps the queue's per-key back-off: client-go's default
// controller limiter doubles from 5 ms without a useful cap (1000 s), so
// a key that failed through a whole election would wait far longer than
// the election lasted. Operators tune this the same way.
const mirrorMaxDelay = 5 * time.Second

// mirror is a controller written the way client-go's sample-controller
// is: shared informers on Deployments and ConfigMaps, event handlers that
// put keys on a rate-limited workqueue, workers that reconcile one key at
// a time and requeue it with back-off on error. For every Deployment D it
// keeps a ConfigMap D-mirror (label mirror-of=D) holding D's first
// container image and replica count, and deletes mirrors whose
// Deployment is gone.
type mirror struct {
	client kubernetes.Interface
	deps   appslisters.DeploymentLister
	cms    corelisters.ConfigMapLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]

	reconciles, failures atomic.Int64
	mu                   sync.Mutex
	lastErr              error
}

func newMirror(client kubernetes.Interface) (*mirror, informers.SharedInformerFactory) {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace("default"))
	di, ci := f.Apps().V1().Deployments(), f.Core().V1().ConfigMaps()
	m := &mirror{
		client: client,
		deps:   di.Lister(),
		cms:    ci.Lister(),
		synced: []cache.InformerSynced{di.Informer().HasSynced, ci.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedWithMaxWaitRateLimiter(workqueue.DefaultTypedControllerRateLimiter[string](), mirrorMaxDelay),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "mirror"}),
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			m.queue.Add(key)
		}
	}
	di.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	// A mirror changed or deleted by someone else is repaired: its
	// Deployment's key is queued.
	owner := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Labels[mirrorLabel] != "" {
			m.queue.Add(cm.Namespace + "/" + cm.Labels[mirrorLabel])
		}
	}
	ci.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    owner,
		UpdateFunc: func(_, obj any) { owner(obj) },
		DeleteFunc: owner,
	})
	return m, f
}

// run starts workers that process the queue until ctx ends.
func (m *mirror) run(ctx context.Context, workers int) {
	go func() {
		<-ctx.Done()
		m.queue.ShutDown()
	}()
	for range workers {
		go func() {
			for m.next(ctx) {
			}
		}()
	}
}

func (m *mirror) next(ctx context.Context) bool {
	key, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(key)
	m.reconciles.Add(1)
	if err := m.reconcile(ctx, key); err != nil {
		m.failures.Add(1)
		m.mu.Lock()
		m.lastErr = fmt.Errorf("%s: %w", key, err)
		m.mu.Unlock()
		m.queue.AddRateLimited(key)
		return true
	}
	m.queue.Forget(key)
	return true
}

// desired is the mirror of d.
func desired(d *appsv1.Deployment) map[string]string {
	image := ""
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		image = cs[0].Image
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	return map[string]string{"image": image, "replicas": fmt.Sprint(replicas)}
}

// reconcile makes key's mirror match its Deployment (or removes it).
func (m *mirror) reconcile(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // a bad key never gets better
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cms := m.client.CoreV1().ConfigMaps(ns)
	cmName := name + "-mirror"
	d, err := m.deps.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		if _, err := m.cms.ConfigMaps(ns).Get(cmName); apierrors.IsNotFound(err) {
			return nil
		}
		if err := cms.Delete(ctx, cmName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	}
	if err != nil {
		return err
	}
	want := desired(d)
	cur, err := m.cms.ConfigMaps(ns).Get(cmName)
	if apierrors.IsNotFound(err) {
		_, err := cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: cmName, Namespace: ns, Labels: map[string]string{mirrorLabel: name}},
			Data:       want,
		}, metav1.CreateOptions{})
		return err // AlreadyExists: the cache is behind; retried
	}
	if err != nil {
		return err
	}
	if maps.Equal(cur.Data, want) && cur.Labels[mirrorLabel] == name {
		return nil
	}
	up := cur.DeepCopy()
	up.Data = want
	if up.Labels == nil {
		up.Labels = map[string]string{}
	}
	up.Labels[mirrorLabel] = name
	_, err = cms.Update(ctx, up, metav1.UpdateOptions{})
	return err // Conflict: the cache is behind; retried
}

// mirrored compares the server's Deployments and mirrors (a linearizable
// list through c): "" when every Deployment has its mirror and no mirror
// is left without one.
func mirrored(ctx context.Context, c kubernetes.Interface) string {
	deps, err := c.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	cms, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{LabelSelector: mirrorLabel})
	if err != nil {
		return err.Error()
	}
	have := map[string]map[string]string{}
	for _, cm := range cms.Items {
		have[cm.Labels[mirrorLabel]] = cm.Data
	}
	var bad []string
	for i := range deps.Items {
		d := &deps.Items[i]
		if got, want := have[d.Name], desired(d); !maps.Equal(got, want) {
			bad = append(bad, fmt.Sprintf("%s: mirror %v, want %v", d.Name, got, want))
		}
		delete(have, d.Name)
	}
	for _, n := range slices.Sorted(maps.Keys(have)) {
		bad = append(bad, "mirror of the deleted "+n+" left")
	}
	return strings.Join(bad, "; ")
}

func mirrorDeployment(name, image string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

// TestWorkqueueControllerAcrossFailover runs the mirror controller
// through the non-voter of a three-voter cluster: Deployments are
// created, changed and deleted through a follower, a mirror is deleted by
// hand, then the leader is killed and more changes follow. After each
// phase every Deployment must have its up-to-date mirror and no mirror
// may outlive its Deployment.
func TestWorkqueueControllerAcrossFailover(t *testing.T) {
	c := startCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	leader := c.leader()
	var via *agentProc
	for _, a := range c.agents[:3] {
		if a != leader {
			via = a
			break
		}
	}
	user := c.client(via)
	m, f := newMirror(c.client(c.agents[3]))
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), m.synced...) {
		t.Fatal("the controller's informers never synced")
	}
	m.run(ctx, 2)

	do := func(what string, op func(context.Context) error, ok func(error) bool) {
		t.Helper()
		if err := retry(ctx, op, ok); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	deps := user.AppsV1().Deployments("default")
	create := func(name, image string, replicas int32) {
		do("create "+name, func(ctx context.Context) error {
			_, err := deps.Create(ctx, mirrorDeployment(name, image, replicas), metav1.CreateOptions{})
			return err
		}, apierrors.IsAlreadyExists)
	}
	setImage := func(name, image string) {
		do("set the image of "+name, func(ctx context.Context) error {
			d, err := deps.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Spec.Template.Spec.Containers[0].Image = image
			_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
			return err
		}, func(error) bool { return false })
	}
	remove := func(name string) {
		do("delete "+name, func(ctx context.Context) error {
			return deps.Delete(ctx, name, metav1.DeleteOptions{})
		}, apierrors.IsNotFound)
	}
	converged := func(phase string) {
		t.Helper()
		start := time.Now()
		if msg := poll(2*time.Minute, func() string { return mirrored(ctx, user) }); msg != "" {
			m.mu.Lock()
			last := m.lastErr
			m.mu.Unlock()
			t.Fatalf("%s: the mirrors did not converge in 2m: %s (last reconcile error: %v)", phase, msg, last)
		}
		t.Logf("%s: converged in %v (%d reconciles, %d failed so far)", phase, time.Since(start).Round(time.Millisecond),
			m.reconciles.Load(), m.failures.Load())
	}

	for i := range 5 {
		create(fmt.Sprintf("d%d", i), "nginx:1.27", int32(i+1))
	}
	converged("created")
	setImage("d0", "nginx:1.28")
	remove("d1")
	do("delete d2's mirror by hand", func(ctx context.Context) error {
		return user.CoreV1().ConfigMaps("default").Delete(ctx, "d2-mirror", metav1.DeleteOptions{})
	}, apierrors.IsNotFound)
	converged("changed")

	c.kill(leader)
	create("d5", "nginx:1.29", 2)
	setImage("d3", "nginx:1.29")
	remove("d4")
	converged(fmt.Sprintf("after the leader %s was killed (new leader %s)", leader.name, c.leader().name))
}
