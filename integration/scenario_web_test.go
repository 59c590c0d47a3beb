package integration

// What several scenarios share: the web Deployment of six replicas and its
// Service, the client pod that hits the Service in a loop, snapshots of
// pods and of the containers behind them, and a writer that records the
// writes the cluster acknowledged.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// webReplicas is the size of the web Deployment of the scenarios.
const webReplicas = 6

// webManifest is clusterManifest (Deployment and Service web) with six
// replicas of image.
func webManifest(image string) string {
	return strings.Replace(strings.ReplaceAll(clusterManifest, "IMAGE", image), "replicas: 3", fmt.Sprintf("replicas: %d", webReplicas), 1)
}

// ensureWeb applies the web Deployment and Service (of the test image)
// through the first running host and waits for full strength: six
// Ready pods, exactly those in the Endpoints.
func (sc *scCluster) ensureWeb(t *testing.T) {
	t.Helper()
	h := sc.Running()[0]
	sc.applyManifest(t, h, webManifest(sc.image))
	// Six Ready pods can be a mix of two templates while a rollout goes
	// on (one an earlier test left unfinished when it failed): wait for
	// the rollout's end first, so that no pod of this test's start is
	// replaced under it.
	sc.cli(t, h, "rollout", "status", "deployment/web", "--timeout", "240s")
	sc.waitWeb(t, "", 3*time.Minute)
}

// waitWeb waits until the web Deployment is at full strength with no pod
// on victim (if not "").
func (sc *scCluster) waitWeb(t *testing.T, victim string, timeout time.Duration) strength {
	t.Helper()
	var s strength
	c := sc.Client(sc.others(sc.Host(victim))[0])
	testenv.WaitFor(t, timeout, fmt.Sprintf("%d web pods Ready and exactly those in the Endpoints", webReplicas), func() bool {
		s = webStrength(context.Background(), c, victim)
		return webFull(s)
	})
	return s
}

// webFull: six Ready pods, none on the victim, exactly those in the
// Endpoints.
func webFull(s strength) bool {
	return s.ready == webReplicas && s.onVictim == 0 && s.endpointsMatch
}

// webPods are the web pods that are Running, Ready and not terminating.
func (sc *scCluster) webPods(t *testing.T, h *hosts.Host) []*api.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var objs []api.Object
	retry(t, "list the web pods", func() (err error) {
		objs, _, err = sc.Client(h).List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web"})
		return err
	})
	var out []*api.Pod
	for _, o := range objs {
		p := o.(*api.Pod)
		cd := api.FindCondition(p.Status.Conditions, api.PodReady)
		if p.DeletionTimestamp == nil && p.Status.Phase == api.PodRunning && cd != nil && cd.Status == api.ConditionTrue {
			out = append(out, p)
		}
	}
	return out
}

// serviceIP is Service web's ClusterIP.
func (sc *scCluster) serviceIP(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var o api.Object
	retry(t, "read Service web", func() (err error) {
		o, err = sc.Client(sc.Running()[0]).Get(ctx, "Service", "default", "web")
		return err
	})
	return o.(*api.Service).Spec.ClusterIP
}

// clientProgram is the client pod's program: it GETs its first argument
// every 20 ms (a new connection each time: every request goes through the
// Service's load balancing, and a name through DNS) and serves its
// counts on :8080 (/stats as JSON, /reset zeroes them, /healthz).
const clientProgram = `package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"time"
)

// phases notes when each step of one request happened (ms from its
// start), so that a failure says where it stopped: name lookup, connect,
// or waiting for the answer.
type phases struct {
	mu    sync.Mutex
	start time.Time
	steps []string
}

func (p *phases) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps = append(p.steps, fmt.Sprintf("%dms ", time.Since(p.start).Milliseconds())+fmt.Sprintf(format, args...))
}

func (p *phases) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.start.Format(time.RFC3339Nano) + " [" + strings.Join(p.steps, "; ") + "]"
}

func traced(p *phases) *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(i httptrace.DNSStartInfo) { p.note("lookup %s", i.Host) },
		DNSDone: func(i httptrace.DNSDoneInfo) { p.note("looked up %v err=%v", i.Addrs, i.Err) },
		ConnectStart: func(network, addr string) { p.note("connect %s", addr) },
		ConnectDone: func(network, addr string, err error) { p.note("connected %s err=%v", addr, err) },
		WroteRequest: func(i httptrace.WroteRequestInfo) { p.note("wrote request err=%v", i.Err) },
		GotFirstResponseByte: func() { p.note("first answer byte") },
	}
}

type stats struct {
	Total    int            ` + "`json:\"total\"`" + `
	Failed   int            ` + "`json:\"failed\"`" + `
	FirstErr string         ` + "`json:\"firstErr\"`" + `
	Seen     map[string]int ` + "`json:\"seen\"`" + `
	Failures []string       ` + "`json:\"failures\"`" + `
}

func main() {
	url := os.Args[1]
	var mu sync.Mutex
	st := stats{Seen: map[string]int{}}
	go func() {
		c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for {
			ph := &phases{start: time.Now()}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), traced(ph)))
			resp, err := c.Do(req)
			body := ""
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = strings.TrimSpace(string(b))
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			mu.Lock()
			st.Total++
			if err != nil {
				st.Failed++
				if st.FirstErr == "" {
					st.FirstErr = time.Now().Format(time.RFC3339Nano) + " " + err.Error()
				}
				if len(st.Failures) < 5 {
					st.Failures = append(st.Failures, err.Error()+" after "+ph.String())
				}
			} else {
				st.Seen[body]++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(st)
	})
	http.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		st = stats{Seen: map[string]int{}}
		fmt.Fprintln(w, "reset")
	})
	fmt.Println("client of", url)
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// clientStats is what the client pod counted.
type clientStats struct {
	Total    int            `json:"total"`
	Failed   int            `json:"failed"`
	FirstErr string         `json:"firstErr"`
	Seen     map[string]int `json:"seen"`
	// Failures says, for the first few failed requests, when each step
	// of the request happened.
	Failures []string `json:"failures"`
}

// clientPod is the client pod, running on a host, hitting a URL.
type clientPod struct {
	sc   *scCluster
	host *hosts.Host
	name string
	ip   string
}

// startClient runs a client pod named name on host on (spec.nodeName),
// hitting url, and waits until it is Running with an IP and has had one
// answer. It is deleted when the test ends.
func (sc *scCluster) startClient(t *testing.T, name string, on *hosts.Host, url string) *clientPod {
	t.Helper()
	ref, err := sc.PushImage("shoal/scenario-client", "v1", clientProgram)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := sc.Client(on)
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "scenario-client"}},
		Spec: api.PodSpec{NodeName: on.Name, Containers: []api.Container{{Name: "client", Image: ref, Args: []string{url}}}}}
	retry(t, "create client pod "+name, func() error {
		_, err := c.Create(ctx, pod)
		if api.IsAlreadyExists(err) {
			return nil // an attempt of unknown outcome did create it
		}
		return err
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if h := sc.others(); len(h) > 0 {
			if err := sc.Client(h[0]).Delete(ctx, "Pod", "default", name); err != nil && !api.IsNotFound(err) {
				t.Errorf("delete client pod %s: %v", name, err)
			}
		}
	})
	cp := &clientPod{sc: sc, host: on, name: name}
	testenv.WaitFor(t, 2*time.Minute, "client pod "+name+" Running with an IP", func() bool {
		o, err := c.Get(ctx, "Pod", "default", name)
		if err != nil {
			return false
		}
		p := o.(*api.Pod)
		cp.ip = p.Status.PodIP
		return p.Status.Phase == api.PodRunning && cp.ip != ""
	})
	testenv.WaitFor(t, time.Minute, "client pod "+name+" answered", func() bool {
		st, err := cp.stats()
		return err == nil && len(st.Seen) > 0
	})
	return cp
}

// stats reads the client's counts (from its host's namespace).
func (cp *clientPod) stats() (clientStats, error) {
	var st clientStats
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := cp.sc.Get(ctx, cp.host, "http://"+net.JoinHostPort(cp.ip, "8080")+"/stats")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(body), &st)
}

// statsAtLeast reads the client's counts once it has made at least n
// requests since its last reset, or when d has passed (the caller's check
// of the total then fails). A rollout that ends in under a second leaves
// fewer requests than a check needs to mean anything; the requests made
// just after it, while the old pods terminate, count as well.
func (cp *clientPod) statsAtLeast(t *testing.T, n int, d time.Duration) clientStats {
	t.Helper()
	var st clientStats
	hosts.WaitUntil(d, func() bool {
		var err error
		if st, err = cp.stats(); err != nil {
			t.Fatal(err)
		}
		return st.Total >= n
	})
	return st
}

// reset zeroes the client's counts.
func (cp *clientPod) reset(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cp.sc.Get(ctx, cp.host, "http://"+net.JoinHostPort(cp.ip, "8080")+"/reset"); err != nil {
		t.Fatal(err)
	}
}

// podState is what must not change about a pod when its agent restarts.
type podState struct {
	UID, IP      string
	ContainerIDs []string
	Restarts     []int32
}

// podStates are the pods bound to node, by name.
func (sc *scCluster) podStates(t *testing.T, via *hosts.Host, node string) map[string]podState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var objs []api.Object
	retry(t, "list the pods on "+node, func() (err error) {
		objs, _, err = sc.Client(via).List(ctx, "Pod", "", api.ListOptions{FieldSelector: "spec.nodeName=" + node})
		return err
	})
	out := map[string]podState{}
	for _, o := range objs {
		p := o.(*api.Pod)
		s := podState{UID: string(p.UID), IP: p.Status.PodIP}
		for _, cs := range p.Status.ContainerStatuses {
			s.ContainerIDs = append(s.ContainerIDs, cs.ContainerID)
			s.Restarts = append(s.Restarts, cs.RestartCount)
		}
		out[p.Namespace+"/"+p.Name] = s
	}
	return out
}

// writer writes ConfigMaps through some hosts, each in a loop of its own,
// and records which writes were acknowledged and when.
type writer struct {
	sc     *scCluster
	prefix string
	stop   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	acked  []ackedWrite
	failed map[string]int // by host
	errs   map[string]string
}

type ackedWrite struct {
	key, host  string
	start, end time.Time
}

// startWriter starts one write loop per host (a write every 50 ms at
// most). Stop it with stopWrites.
func (sc *scCluster) startWriter(prefix string, through ...*hosts.Host) *writer {
	w := &writer{sc: sc, prefix: prefix, stop: make(chan struct{}), failed: map[string]int{}, errs: map[string]string{}}
	for _, h := range through {
		c := sc.Client(h)
		w.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-w.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				key := fmt.Sprintf("%s-%s-%d", prefix, h.Name, i)
				cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: key, Namespace: "default", Labels: map[string]string{"scenario-writes": prefix}},
					Data: map[string]string{"k": key}}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := c.Create(ctx, cm)
				cancel()
				w.mu.Lock()
				if err == nil {
					w.acked = append(w.acked, ackedWrite{key: key, host: h.Name, start: start, end: time.Now()})
				} else {
					w.failed[h.Name]++
					if w.errs[h.Name] == "" {
						w.errs[h.Name] = err.Error()
					}
				}
				w.mu.Unlock()
			}
		})
	}
	return w
}

// stopWrites stops the loops and returns the acknowledged writes.
func (w *writer) stopWrites() []ackedWrite {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// count is how many writes were acknowledged so far.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// missing lists the acknowledged keys that a list of the writer's
// ConfigMaps through h does not hold (stale: h's own replica).
func (w *writer) missing(h *hosts.Host, acked []ackedWrite, stale bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	objs, _, err := w.sc.Client(h).List(ctx, "ConfigMap", "default", api.ListOptions{LabelSelector: "scenario-writes=" + w.prefix, Stale: stale})
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, o := range objs {
		have[o.(*api.ConfigMap).Name] = true
	}
	var miss []string
	for _, a := range acked {
		if !have[a.key] {
			miss = append(miss, a.key)
		}
	}
	return miss, nil
}

// cleanup deletes the writer's ConfigMaps (best effort: a cluster that
// is healthy deletes them at once).
func (w *writer) cleanup(t *testing.T, acked []ackedWrite) {
	h := w.sc.Running()[0]
	c := w.sc.Client(h)
	for _, a := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Delete(ctx, "ConfigMap", "default", a.key)
		cancel()
		if err != nil && !api.IsNotFound(err) {
			t.Logf("delete ConfigMap %s: %v", a.key, err)
			return
		}
	}
}
