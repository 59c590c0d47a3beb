package clientgo

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Limits of the failover tests.
const (
	// opTimeout bounds one write's retries: a write may fail while the
	// cluster has no leader.
	opTimeout = 90 * time.Second
	// convergeTimeout bounds the wait for an informer's store to equal
	// the server's list once the writes are done.
	convergeTimeout = 90 * time.Second
)

// requestLog counts the list and watch requests a client made.
type requestLog struct {
	lists, watches atomic.Int64
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodGet {
			if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
				l.watches.Add(1)
			} else {
				l.lists.Add(1)
			}
		}
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// retry runs op until it succeeds, or gives up after opTimeout. ok tells
// an error that means the op took effect (an earlier attempt that failed
// on the client's side committed) from one worth retrying.
func retry(ctx context.Context, op func(context.Context) error, ok func(error) bool) error {
	deadline := time.Now().Add(opTimeout)
	var err error
	for time.Now().Before(deadline) {
		octx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = op(octx)
		cancel()
		if err == nil || ok(err) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("after %v: %w", opTimeout, err)
}

// podWriter creates, relabels and deletes pods named w-NN through one
// client, idempotently (a retried create that meets AlreadyExists, or a
// retried delete that meets NotFound, took effect).
type podWriter struct {
	c    kubernetes.Interface
	rnd  *rand.Rand
	live map[string]bool
	gen  int
}

func (w *podWriter) step(ctx context.Context) error {
	w.gen++
	name := fmt.Sprintf("w-%02d", w.rnd.IntN(40))
	pods := w.c.CoreV1().Pods("default")
	switch {
	case !w.live[name]:
		w.live[name] = true
		p := testPod(name)
		return retry(ctx, func(ctx context.Context) error {
			_, err := pods.Create(ctx, p, metav1.CreateOptions{})
			return err
		}, apierrors.IsAlreadyExists)
	case w.rnd.IntN(3) == 0:
		delete(w.live, name)
		return retry(ctx, func(ctx context.Context) error {
			return pods.Delete(ctx, name, metav1.DeleteOptions{})
		}, apierrors.IsNotFound)
	default:
		patch := fmt.Sprintf(`{"metadata":{"labels":{"gen":"g%d"}}}`, w.gen)
		return retry(ctx, func(ctx context.Context) error {
			_, err := pods.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		}, func(error) bool { return false })
	}
}

// versions maps each pod's name to its resourceVersion.
func versions(pods []*corev1.Pod) map[string]string {
	m := make(map[string]string, len(pods))
	for _, p := range pods {
		m[p.Name] = p.ResourceVersion
	}
	return m
}

// diff describes how got (an informer's store) differs from want (the
// server's list): "" if equal.
func diff(got, want map[string]string) string {
	var out []string
	for n, rv := range want {
		switch g, ok := got[n]; {
		case !ok:
			out = append(out, "missing "+n+"@"+rv)
		case g != rv:
			out = append(out, fmt.Sprintf("stale %s@%s (server %s)", n, g, rv))
		}
	}
	for n, rv := range got {
		if _, ok := want[n]; !ok {
			out = append(out, "deleted on the server, still held: "+n+"@"+rv)
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return strings.Join(out, "; ")
}

// watched is an informer on the Pods of "default" through one agent.
type watched struct {
	agent *agentProc
	inf   cache.SharedIndexInformer
	reqs  *requestLog
}

func (c *cluster) podInformer(ctx context.Context, a *agentProc) *watched {
	c.t.Helper()
	w := &watched{agent: a, reqs: &requestLog{}}
	cfg := c.restConfig(a)
	cfg.WrapTransport = w.reqs.wrap
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("default"))
	w.inf = f.Core().V1().Pods().Informer()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), w.inf.HasSynced) {
		c.t.Fatalf("the informer through %s never synced", a.name)
	}
	return w
}

func (w *watched) store() map[string]string {
	m := map[string]string{}
	for _, o := range w.inf.GetStore().List() {
		p := o.(*corev1.Pod)
		m[p.Name] = p.ResourceVersion
	}
	return m
}

// serverPods lists the pods of "default" through a (a linearizable read).
func serverPods(ctx context.Context, c kubernetes.Interface) (map[string]string, error) {
	l, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, p := range l.Items {
		m[p.Name] = p.ResourceVersion
	}
	return m, nil
}

// TestInformerAcrossFailover runs Pod informers through a follower voter
// and through a non-voter of a three-voter cluster while pods are
// created, relabelled and deleted through the other follower; halfway the
// leader is killed (SIGKILL) and the writes go on through the surviving
// follower as soon as a new leader takes them. Once the writes are done,
// each informer's store must become exactly the server's list (the same
// pods at the same resourceVersions: nothing missed, nothing stale, no
// deleted pod left) within convergeTimeout. It runs with client-go's
// streaming list (a watch with sendInitialEvents) and with the classic
// reflector (a list, then a watch from the list's resourceVersion).
func TestInformerAcrossFailover(t *testing.T) {
	t.Run("streaming", func(t *testing.T) {
		clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, true)
		testInformerAcrossFailover(t)
	})
	t.Run("list-watch", func(t *testing.T) {
		clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, false)
		testInformerAcrossFailover(t)
	})
}

func testInformerAcrossFailover(t *testing.T) {
	c := startCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	leader := c.leader()
	var followers []*agentProc
	for _, a := range c.agents[:3] {
		if a != leader {
			followers = append(followers, a)
		}
	}
	nonVoter := c.agents[3]
	writeVia, watchVia := followers[0], followers[1]
	informers := []*watched{c.podInformer(ctx, watchVia), c.podInformer(ctx, nonVoter)}

	w := &podWriter{c: c.client(writeVia), rnd: rand.New(rand.NewPCG(1, 2)), live: map[string]bool{}}
	const before, after = 60, 120
	for range before {
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range after {
			if err := w.step(ctx); err != nil {
				writeErr = err
				return
			}
		}
	}()
	killed := time.Now()
	c.kill(leader)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("a write through %s after the leader %s died: %v", writeVia.name, leader.name, writeErr)
	}
	t.Logf("%d writes after killing the leader %s took %v (new leader %s)", after, leader.name, time.Since(killed).Round(time.Millisecond), c.leader().name)

	// The server's list now; the scheduler may still bind pods (with
	// pods off nothing else writes them), so the list is re-read on
	// every round.
	ref := c.client(writeVia)
	for _, inf := range informers {
		start := time.Now()
		msg := poll(convergeTimeout, func() string {
			want, err := serverPods(ctx, ref)
			if err != nil {
				return err.Error()
			}
			return diff(inf.store(), want)
		})
		if msg != "" {
			t.Errorf("the informer through %s did not converge in %v: %s", inf.agent.name, convergeTimeout, msg)
			continue
		}
		t.Logf("the informer through %s matched the server's %d pods %v after the writes (%d lists, %d watches)",
			inf.agent.name, len(inf.store()), time.Since(start).Round(time.Millisecond), inf.reqs.lists.Load(), inf.reqs.watches.Load())
	}
	if len(w.live) == 0 {
		t.Errorf("the writes left no pod: the check saw nothing")
	}
	if got, want := slices.Sorted(maps.Keys(informers[0].store())), slices.Sorted(maps.Keys(w.live)); !slices.Equal(got, want) {
		t.Errorf("the pods the informer holds %v are not the ones the writer left %v", got, want)
	}

	// The agents' metrics saw it: the survivors' probes of the dead
	// leader failed, and the follower written through forwarded.
	c.waitUntil(time.Minute, "probe failures counted on "+watchVia.name, func() string {
		if v := c.metric(watchVia, "shoal_gossip_probe_failures_total"); v < 1 {
			return fmt.Sprintf("shoal_gossip_probe_failures_total = %v", v)
		}
		return ""
	})
	// (Only the writes before the kill: it may have become the leader.)
	if v := c.metric(writeVia, "shoal_api_forwarded_requests_total"); v < before {
		t.Errorf("%s forwarded %v requests, want at least the %d writes made before the kill", writeVia.name, v, before)
	}
}

// metric sums the samples of family on a's /metrics (-1 if it cannot be
// read).
func (c *cluster) metric(a *agentProc, family string) float64 {
	resp, err := c.http.Get(c.creds.URL(a.api()) + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return -1
	}
	sum := 0.0
	for _, l := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(l, " ")
		if base, _, _ := strings.Cut(name, "{"); !ok || base != family {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest, &v); err == nil {
			sum += v
		}
	}
	return sum
}
