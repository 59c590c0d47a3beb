package integration

// Root test of a 3-host cluster on one machine (the harness, three real
// agents with their own containerd and pod network namespace, is in
// cluster_hosts_test.go): a Deployment and Service across the hosts,
// routes, the Service's load balancing and DNS, logs and exec through any
// agent, zero failed requests through scale, rollout and undo, and a
// leader killed.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/testenv"
)

func TestClusterOfThreeHosts(t *testing.T) {
	c := startThreeHosts(t)
	hosts, bin, image, cidrs, start := c.hosts, c.bin, c.image, c.cidrs, c.start
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	manifest := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(clusterManifest, "IMAGE", image)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runShoal(bin, hosts[0], "apply", "-f", manifest); err != nil {
		t.Fatalf("shoal apply: %v\n%s", err, out)
	}

	// Three pods, Running and Ready, one per host (zones a, b, c), with IPs
	// from the three hosts' pod CIDRs.
	var pods []*api.Pod
	testenv.WaitFor(t, 180*time.Second, "3 web pods Running and Ready on 3 hosts", func() bool {
		objs, _, err := hosts[0].client.List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(objs) != 3 {
			return false
		}
		pods = pods[:0]
		nodes := map[string]bool{}
		for _, o := range objs {
			p := o.(*api.Pod)
			c := api.FindCondition(p.Status.Conditions, api.PodReady)
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if p.Status.Phase != "Running" || c == nil || c.Status != api.ConditionTrue || err != nil ||
				!cidrs[p.Spec.NodeName].Contains(ip) || p.DeletionTimestamp != nil {
				return false
			}
			nodes[p.Spec.NodeName] = true
			pods = append(pods, p)
		}
		return len(nodes) == 3
	})
	sort.Slice(pods, func(i, j int) bool { return pods[i].Spec.NodeName < pods[j].Spec.NodeName })
	t.Logf("3 pods Ready after %v: %s", time.Since(start).Round(time.Millisecond), podSummary(pods))
	if len(map[netip.Prefix]bool{cidrs["h1"]: true, cidrs["h2"]: true, cidrs["h3"]: true}) != 3 {
		t.Fatalf("pod CIDRs not distinct: %v", cidrs)
	}
	onHost3 := pods[2]
	if onHost3.Spec.NodeName != "h3" {
		t.Fatalf("no pod on host3: %s", podSummary(pods))
	}

	// From inside host 1's namespace, a pod on host 3 answers HTTP: over
	// host 1's route to host 3's pod CIDR via 10.250.0.3.
	hc := &http.Client{Transport: &http.Transport{DialContext: dialIn(hosts[0].ns.Path), DisableKeepAlives: true}, Timeout: 3 * time.Second}
	var body string
	testenv.WaitFor(t, 30*time.Second, "HTTP from host1's namespace to the pod on host3", func() bool {
		resp, err := hc.Get("http://" + net.JoinHostPort(onHost3.Status.PodIP, "8080") + "/hostname")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = strings.TrimSpace(string(b))
		return err == nil && resp.StatusCode == http.StatusOK
	})
	if body == "" {
		t.Fatal("the pod on host3 answered /hostname with nothing")
	}
	if out, err := hosts[0].ns.Exec("ip", "route", "get", onHost3.Status.PodIP); err != nil || !strings.Contains(out, "via 10.250.0.3") {
		t.Fatalf("host1's route to %s does not go via host3: %v\n%s", onHost3.Status.PodIP, err, out)
	}

	// The Service's Endpoints list all three pods.
	want := []string{pods[0].Status.PodIP, pods[1].Status.PodIP, pods[2].Status.PodIP}
	sort.Strings(want)
	var got []string
	testenv.WaitFor(t, 30*time.Second, "Endpoints web lists the 3 pods", func() bool {
		o, err := hosts[0].client.Get(ctx, "Endpoints", "default", "web")
		if err != nil {
			return false
		}
		got = got[:0]
		for _, s := range o.(*api.Endpoints).Subsets {
			for _, a := range s.Addresses {
				got = append(got, a.IP)
			}
		}
		sort.Strings(got)
		return slices.Equal(got, want)
	})

	// The Service answers on its ClusterIP from host 1's pod network (the
	// load balancer spreads over the pods of all hosts) and by name from
	// inside a pod on host 1 (cluster DNS, search domains).
	svcObj, err := hosts[0].client.Get(ctx, "Service", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	vip := svcObj.(*api.Service).Spec.ClusterIP
	seen := map[string]bool{}
	testenv.WaitFor(t, 30*time.Second, "the ClusterIP "+vip+" answering from two pods at least", func() bool {
		resp, err := hc.Get("http://" + net.JoinHostPort(vip, "80") + "/hostname")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			seen[strings.TrimSpace(string(b))] = true
		}
		return len(seen) >= 2
	})
	onHost1 := pods[0]
	for _, url := range []string{"http://web/hostname", "http://web.default.svc.cluster.local/hostname"} {
		var out string
		testenv.WaitFor(t, 30*time.Second, "GET "+url+" from a pod on host1", func() bool {
			out, err = runShoal(bin, hosts[0], "exec", onHost1.Name, "--", "/app", "get", url)
			return err == nil && strings.TrimSpace(out) != ""
		})
	}

	// logs and exec of the pod on host 3, asked of host 1's API.
	if out, err := runShoal(bin, hosts[0], "logs", onHost3.Name); err != nil || !strings.Contains(out, "listening on :8080") {
		t.Fatalf("shoal logs %s via host1: %v\n%s", onHost3.Name, err, out)
	}
	if out, err := runShoal(bin, hosts[0], "exec", onHost3.Name, "--", "/app", "echo", "exec-on-host3"); err != nil || !strings.Contains(out, "exec-on-host3") {
		t.Fatalf("shoal exec %s via host1: %v\n%s", onHost3.Name, err, out)
	}

	// Through the Service, not one request fails while the Deployment
	// scales down and up, rolls out a new template and is rolled back:
	// pods leave every agent's rules before they stop.
	var total, failures atomic.Int64
	var firstErr atomic.Value
	loadCtx, stopLoad := context.WithCancel(ctx)
	var loadWG sync.WaitGroup
	loadWG.Go(func() {
		for loadCtx.Err() == nil {
			total.Add(1)
			resp, err := hc.Get("http://" + net.JoinHostPort(vip, "80") + "/hostname")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			select {
			case <-loadCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	webPods := func(want int) func() bool {
		return func() bool {
			objs, _, err := hosts[0].client.List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(objs) != want {
				return false
			}
			for _, o := range objs {
				if c := api.FindCondition(o.(*api.Pod).Status.Conditions, api.PodReady); c == nil || c.Status != api.ConditionTrue {
					return false
				}
			}
			return true
		}
	}
	mustRunShoal := func(args ...string) {
		t.Helper()
		if out, err := runShoal(bin, hosts[0], args...); err != nil {
			t.Fatalf("shoal %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	mustRunShoal("scale", "deployment", "web", "--replicas", "2")
	testenv.WaitFor(t, 60*time.Second, "2 web pods (the third terminated)", webPods(2))
	mustRunShoal("scale", "deployment", "web", "--replicas", "3")
	testenv.WaitFor(t, 60*time.Second, "3 web pods again", webPods(3))
	v2 := strings.Replace(strings.ReplaceAll(clusterManifest, "IMAGE", image), `value: "1"`, `value: "2"`, 1)
	if err := os.WriteFile(manifest, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRunShoal("apply", "-f", manifest)
	mustRunShoal("rollout", "status", "deployment/web", "--timeout", "120s")
	testenv.WaitFor(t, 60*time.Second, "3 web pods after the rollout", webPods(3))
	mustRunShoal("rollout", "undo", "deployment/web")
	mustRunShoal("rollout", "status", "deployment/web", "--timeout", "120s")
	testenv.WaitFor(t, 60*time.Second, "3 web pods after the undo", webPods(3))
	stopLoad()
	loadWG.Wait()
	t.Logf("%d requests through the Service during scale-down, rollout and undo, %d failed", total.Load(), failures.Load())
	if failures.Load() > 0 || total.Load() < 50 {
		t.Fatalf("%d of %d requests through the Service failed (first: %v)", failures.Load(), total.Load(), firstErr.Load())
	}

	// Kill the leader (SIGKILL): another agent's API accepts a write within
	// a few seconds, and the killed host's Node goes NotReady.
	// First wait until all three are voters and followers of one leader:
	// the voter manager promotes agents one at a time after they are
	// stable, and a cluster of fewer voters cannot lose its leader.
	var leader *clusterHost
	testenv.WaitFor(t, 60*time.Second, "3 voters following one leader", func() bool {
		leader = threeVoterLeader(ctx, hosts)
		return leader != nil
	})
	var other *clusterHost
	for _, h := range hosts {
		if h != leader {
			other = h
			break
		}
	}
	if err := h2kill(leader); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var writeErr error
	ok := waitCond(30*time.Second, func() bool {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, writeErr = other.client.Create(wctx, &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "after-failover", Namespace: "default"}, Data: map[string]string{"k": "v"}})
		return writeErr == nil || api.IsAlreadyExists(writeErr)
	})
	if !ok {
		t.Fatalf("no write accepted through %s within 30 s of killing the leader %s: %v", other.name, leader.name, writeErr)
	}
	t.Logf("leader %s killed; write accepted by %s after %v", leader.name, other.name, time.Since(killed).Round(time.Millisecond))
	testenv.WaitFor(t, 60*time.Second, "node "+leader.name+" NotReady", func() bool {
		o, err := other.client.Get(ctx, "Node", "", leader.name)
		if err != nil {
			return false
		}
		c := api.FindCondition(o.(*api.Node).Status.Conditions, api.NodeReady)
		return c != nil && c.Status != api.ConditionTrue
	})
	t.Logf("node %s NotReady after %v", leader.name, time.Since(killed).Round(time.Millisecond))

	// The survivors' proxies follow the new control plane: a Service made
	// after the failover answers from a surviving host's pod network.
	web2 := &api.Service{ObjectMeta: api.ObjectMeta{Name: "web2", Namespace: "default"},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Name: "http", Port: 81, TargetPort: api.FromInt(8080)}}}}
	if _, err := other.client.Create(ctx, web2); err != nil {
		t.Fatal(err)
	}
	hcOther := &http.Client{Transport: &http.Transport{DialContext: dialIn(other.ns.Path), DisableKeepAlives: true}, Timeout: 3 * time.Second}
	testenv.WaitFor(t, 60*time.Second, "Service web2 (made after the failover) answering on "+other.name, func() bool {
		o, err := other.client.Get(ctx, "Service", "default", "web2")
		if err != nil || o.(*api.Service).Spec.ClusterIP == "" {
			return false
		}
		resp, err := hcOther.Get("http://" + net.JoinHostPort(o.(*api.Service).Spec.ClusterIP, "81") + "/hostname")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}

const clusterManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: web
          image: IMAGE
          args: ["serve", "--port", "8080"]
          env:
            - name: VERSION
              value: "1"
          ports:
            - containerPort: 8080
          lifecycle:
            preStop:
              # Keep serving while every agent drops the pod from its
              # rules, as one does for Kubernetes.
              sleep:
                seconds: 2
          resources:
            requests:
              cpu: 50m
              memory: 16Mi
          readinessProbe:
            httpGet:
              path: /healthz
              port: 8080
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: 8080
`
