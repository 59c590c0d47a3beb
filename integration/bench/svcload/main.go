// Command svcload loads a running cluster with many Services, each with
// hand-written Endpoints (no selector, so the control plane leaves them
// alone), then waits until the agent's load balancer holds them all and
// prints how long that took and the agent's resident memory. It measures
// the services issue's "agent RSS with 10,000 services × 10 endpoints".
//
// Used by integration/bench/services.sh against the `make demo` agent; the
// endpoint addresses are in 10.244.0.0/16 inside the demo's namespace and
// receive no traffic. An https -server (the demo is secure by default) is
// reached with the CA and admin token in -data-dir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// creds authenticate to an https server; nil for http.
var creds *testenv.Credentials

// client is an api.Client for the API at server (a URL).
func client(server string) *api.Client {
	opts := []api.ClientOption{api.WithRequestTimeout(30 * time.Second)}
	if creds != nil {
		opts = append(opts, api.WithTLSConfig(creds.TLSConfig()), api.WithBearerToken(creds.Token))
	}
	return api.NewClient(server, opts...)
}

func main() {
	server := flag.String("server", "https://127.0.0.1:7070", "the agent's API")
	dataDir := flag.String("data-dir", "/tmp/shoal-demo/data", "with an https -server: the data dir holding admin.token and tls/ca.crt (the demo agent's)")
	services := flag.Int("services", 10000, "how many Services")
	endpoints := flag.Int("endpoints", 10, "ready endpoints per Service")
	writers := flag.Int("writers", 32, "concurrent writers")
	pid := flag.Int("pid", 0, "the agent's process id (for its RSS)")
	netns := flag.String("netns", "shoal-demo", "the namespace holding the agent's nftables table")
	profile := flag.String("profile", "", "API of the measured agent, for its Go heap statistics (with --pprof); default -server")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	del := flag.Bool("delete", false, "delete the Services and Endpoints an earlier run made, then exit")
	flag.Parse()
	if strings.HasPrefix(*server, "https://") {
		var err error
		if creds, err = testenv.ReadCredentials(*dataDir); err != nil {
			fmt.Fprintln(os.Stderr, "svcload: -data-dir:", err)
			os.Exit(1)
		}
	}
	if *del {
		if err := deleteAll(*server, *services, *writers); err != nil {
			fmt.Fprintln(os.Stderr, "svcload:", err)
			os.Exit(1)
		}
		return
	}
	if *profile == "" {
		*profile = *server
	}
	if err := run(*server, *profile, *services, *endpoints, *writers, *pid, *netns, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "svcload:", err)
		os.Exit(1)
	}
}

func run(server, profile string, n, eps, writers, pid int, netns string, timeout time.Duration) error {
	if n < 1 || n > 60000 || eps < 1 || eps > 250 || writers < 1 {
		return errors.New("want 1 ≤ services ≤ 60000, 1 ≤ endpoints ≤ 250, writers ≥ 1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := client(server)
	before, _ := rss(pid)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := create(ctx, c, i, eps); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	written := time.Since(start)
	fmt.Printf("wrote %d services × %d endpoints in %v\n", n, eps, written.Round(time.Millisecond))
	// The table holds every Service's ClusterIP once the proxy has synced
	// them all.
	for {
		got, err := programmedClusterIPs(netns)
		if err == nil && got >= n {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the load balancer holds %d of %d services after %v (%v)", got, n, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("load balancer programmed %v after the first write\n", time.Since(start).Round(time.Millisecond))
	if pid > 0 {
		after, err := rss(pid)
		if err != nil {
			return err
		}
		fmt.Printf("agent RSS: %d MiB before, %d MiB with %d services × %d endpoints\n", before>>20, after>>20, n, eps)
		if anon, file, err := rssSplit(pid); err == nil {
			fmt.Printf("agent RSS split: %d MiB anonymous (Go heap, stacks), %d MiB file-backed (binary, bbolt mmap)\n", anon>>20, file>>20)
		}
		if h, err := goHeap(profile); err == nil {
			fmt.Println("agent Go heap:", h)
		}
	}
	return nil
}

// rssSplit reads /proc/PID/smaps_rollup: the anonymous and the file-backed
// parts of the resident set, in bytes.
func rssSplit(pid int) (anon, file int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss_Anon:":
			anon = kb << 10
		case "Pss_File:":
			file = kb << 10
		}
	}
	return anon, file, nil
}

// goHeap summarises the agent's Go memory statistics from its profiler
// (only when it runs with --pprof).
func goHeap(server string) (string, error) {
	resp, err := creds.HTTPClient(time.Minute).Get(server + "/debug/pprof/heap?debug=1")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", err
	}
	stats := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				stats[k] = n
			}
		}
	}
	if _, ok := stats["HeapAlloc"]; !ok {
		return "", errors.New("no heap statistics")
	}
	return fmt.Sprintf("%d MiB allocated (live at the last collection and since), %d MiB in use, %d MiB idle kept, next collection at %d MiB",
		stats["HeapAlloc"]>>20, stats["HeapInuse"]>>20, (stats["HeapIdle"]-stats["HeapReleased"])>>20, stats["NextGC"]>>20), nil
}

func create(ctx context.Context, c *api.Client, i, eps int) error {
	name := fmt.Sprintf("load-%05d", i)
	svc := &api.Service{
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"bench": "svcload"}},
		Spec:       api.ServiceSpec{Ports: []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}},
	}
	if _, err := c.Create(ctx, svc); err != nil && !api.IsAlreadyExists(err) {
		return fmt.Errorf("service %s: %w", name, err)
	}
	ep := &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"bench": "svcload"}}}
	ss := api.EndpointSubset{Ports: []api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}}}
	for j := range eps {
		// 10.244.128.0/17: inside the pod network, never a real pod of
		// the demo (whose node CIDR is the first /24).
		k := i*eps + j
		ss.Addresses = append(ss.Addresses, api.EndpointAddress{IP: fmt.Sprintf("10.244.%d.%d", 128+(k/250)%128, 1+k%250)})
	}
	ep.Subsets = []api.EndpointSubset{ss}
	if _, err := c.Create(ctx, ep); err != nil && !api.IsAlreadyExists(err) {
		return fmt.Errorf("endpoints %s: %w", name, err)
	}
	return nil
}

// deleteAll removes what create made, ignoring what is already gone.
func deleteAll(server string, n, writers int) error {
	c := client(server)
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				name := fmt.Sprintf("load-%05d", i)
				for _, kind := range []string{"Service", "Endpoints"} {
					if err := c.Delete(ctx, kind, "default", name); err != nil && !api.IsNotFound(err) {
						failed.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d deletes failed", f)
	}
	return nil
}

// programmedClusterIPs counts the ClusterIPs the load balancer holds (the set
// cluster-ips of table ip shoal): one per Service with rules.
func programmedClusterIPs(netns string) (int, error) {
	out, err := exec.Command("ip", "netns", "exec", netns, "nft", "list", "set", "ip", "shoal", "cluster-ips").Output()
	if err != nil {
		return 0, err
	}
	_, elems, ok := strings.Cut(string(out), "elements = {")
	if !ok {
		return 0, nil
	}
	elems, _, _ = strings.Cut(elems, "}")
	return len(strings.Split(elems, ",")), nil
}

// rss is the resident set of pid in bytes.
func rss(pid int) (int64, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}
