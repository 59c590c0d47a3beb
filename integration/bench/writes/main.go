// Command writes measures the write path of Shoal's replicated store as a
// client sees it: three `shoal agent` processes, voters with their Raft logs
// on disk, talking over loopback TCP, and writers creating 1 KiB ConfigMaps
// through the HTTP API.
// In the same run it measures etcd (three members on loopback, 1 KiB puts
// through etcd's v3 client, via the etcdload program) and prints the ratio.
// Rounds alternate between the two systems so that machine noise hits both.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// profileLeader, if set, is where a 4 s CPU profile of the Shoal leader
// taken at the start of the load goes.
var profileLeader string

type result struct {
	system   string
	writers  int
	ops      int
	failed   int
	opsPerS  float64
	p50, p99 float64 // milliseconds
}

func main() {
	rounds := flag.Int("rounds", 3, "rounds per system (min/median/max are over rounds)")
	duration := flag.Duration("duration", 5*time.Second, "length of one load run")
	writersFlag := flag.String("writers", "1,64", "comma-separated writer counts")
	size := flag.Int("size", 1024, "object payload in bytes")
	maxOps := flag.Int("max-ops", 200000, "cap on writes per load run")
	etcdBin := flag.String("etcd", "/usr/bin/etcd", "etcd server binary; empty skips etcd")
	etcdLoad := flag.String("etcdload", "bin/etcdload", "the etcdload program")
	shoalBin := flag.String("shoal", "bin/shoal", "the shoal binary")
	skipEtcd := flag.Bool("skip-etcd", false, "measure Shoal only")
	flag.StringVar(&profileLeader, "profile-leader", "", "write a CPU profile of the Shoal leader during the first load to this file")
	flag.Parse()
	if *skipEtcd {
		*etcdBin = ""
	}

	var writers []int
	for _, s := range strings.Split(*writersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1024 {
			fatalf("-writers: %q is not a count between 1 and 1024", s)
		}
		writers = append(writers, n)
	}
	withEtcd := *etcdBin != ""
	if withEtcd {
		if _, err := os.Stat(*etcdBin); err != nil {
			fatalf("-etcd: %v (install the Debian package etcd-server, or pass -etcd '' to skip)", err)
		}
	}

	var results []result
	for r := 1; r <= *rounds; r++ {
		fmt.Printf("round %d/%d\n", r, *rounds)
		res, err := shoalRound(*shoalBin, writers, *duration, *size, *maxOps)
		if err != nil {
			fatalf("shoal round %d: %v", r, err)
		}
		results = append(results, res...)
		if withEtcd {
			res, err := etcdRound(*etcdBin, *etcdLoad, writers, *duration, *size, *maxOps)
			if err != nil {
				fatalf("etcd round %d: %v", r, err)
			}
			results = append(results, res...)
		}
	}
	report(os.Stdout, results, writers, withEtcd)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "writes: "+format+"\n", args...)
	os.Exit(1)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// shoalRound starts three `shoal agent` processes, each with its own data
// directory, API, Raft and gossip listener, lets them form one cluster by
// themselves (--join the others, --bootstrap-expect 3: three voters), and
// loads the leader's API — the same shape as the etcd round: three server
// processes and a client process.
func shoalRound(shoalBin string, writers []int, d time.Duration, size, maxOps int) ([]result, error) {
	dir, err := os.MkdirTemp("", "shoal-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	type member struct{ name, api, raft, gossip string }
	var ms []member
	for i := 1; i <= 3; i++ {
		var addrs [3]string
		for j := range addrs {
			if addrs[j], err = freeAddr(); err != nil {
				return nil, err
			}
		}
		ms = append(ms, member{fmt.Sprintf("n%d", i), addrs[0], addrs[1], addrs[2]})
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	for _, m := range ms {
		logf, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		var join []string
		for _, o := range ms {
			if o.name != m.name {
				join = append(join, o.gossip)
			}
		}
		args := []string{"agent", "--node-name", m.name, "--data-dir", filepath.Join(dir, m.name),
			"--http-addr", m.api, "--raft-addr", m.raft, "--bind", m.gossip, "--join", strings.Join(join, ","),
			"--bootstrap-expect", "3", "--log-level", "warn", "--pprof",
			// The benchmark measures the control plane: no pods, so the
			// agents leave the machine's network alone.
			"--pods=false"}
		cmd := exec.Command(shoalBin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}, Timeout: 30 * time.Second}
	// Wait for the three voters, then load the leader's API directly.
	var base string
	if err := waitFor(30*time.Second, func() bool {
		resp, err := client.Get("http://" + ms[0].api + "/v1/cluster/raft")
		if err != nil {
			return false
		}
		var st struct {
			LeaderID string
			Voters   []struct{ ID string }
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.LeaderID == "" || len(st.Voters) != 3 {
			return false
		}
		for _, m := range ms {
			if m.name == st.LeaderID {
				base = "http://" + m.api
			}
		}
		return base != ""
	}); err != nil {
		return nil, fmt.Errorf("the three agents never formed a 3-voter cluster (logs in %s): %w", dir, err)
	}
	if err := waitFor(15*time.Second, func() bool {
		resp, err := client.Get(base + "/api/v1/namespaces/default")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}); err != nil {
		return nil, fmt.Errorf("the leader never served the default namespace (logs in %s): %w", dir, err)
	}
	// Every voter must hold the data before the load starts, so that no
	// follower is still catching up during the measurement.
	for _, m := range ms {
		u := "http://" + m.api + "/api/v1/namespaces/default?stale=true"
		if err := waitFor(15*time.Second, func() bool {
			resp, err := client.Get(u)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		}); err != nil {
			return nil, fmt.Errorf("%s never caught up: %w", m.name, err)
		}
	}
	payload := strings.Repeat("x", size)
	if profileLeader != "" {
		go func() {
			resp, err := http.Get(base + "/debug/pprof/profile?seconds=4")
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(profileLeader)
			if err == nil {
				io.Copy(f, resp.Body)
				f.Close()
			}
		}()
	}
	var out []result
	for run, w := range writers {
		r := load("shoal", w, d, maxOps, func(writer int, i int64) error {
			body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"r%d-w%d-%d"},"data":{"v":%q}}`, run, writer, i, payload)
			resp, err := client.Post(base+"/api/v1/namespaces/default/configmaps", "application/json", strings.NewReader(body))
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
			}
			return nil
		})
		out = append(out, r)
		fmt.Printf("  %s\n", r.line())
	}
	return out, nil
}

// load runs w writers for d (or maxOps writes) and measures each write.
func load(system string, w int, d time.Duration, maxOps int, write func(writer int, i int64) error) result {
	var next, failed atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, w)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1)
				if i > int64(maxOps) {
					return
				}
				t0 := time.Now()
				if err := write(k, i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				lat[k] = append(lat[k], time.Since(t0))
			}
		}(k)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "  %s: %d writes failed, first: %v\n", system, failed.Load(), e)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	return result{system: system, writers: w, ops: len(all), failed: int(failed.Load()),
		opsPerS: float64(len(all)) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99)}
}

func (r result) line() string {
	return fmt.Sprintf("%-5s writers=%-3d %8.0f writes/s  p50 %6.2f ms  p99 %7.2f ms  (%d ok, %d failed)",
		r.system, r.writers, r.opsPerS, r.p50, r.p99, r.ops, r.failed)
}

// etcdRound starts a three-member etcd cluster on loopback and runs etcdload
// against it once per writer count.
func etcdRound(etcdBin, etcdLoad string, writers []int, d time.Duration, size, maxOps int) ([]result, error) {
	dir, err := os.MkdirTemp("", "etcd-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	type member struct{ name, peer, client string }
	var ms []member
	for i := 1; i <= 3; i++ {
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{fmt.Sprintf("e%d", i), "http://" + p, "http://" + c})
	}
	var initial, endpoints []string
	for _, m := range ms {
		initial = append(initial, m.name+"="+m.peer)
		endpoints = append(endpoints, m.client)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	for _, m := range ms {
		logf, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		cmd := exec.Command(etcdBin,
			"--name", m.name,
			"--data-dir", filepath.Join(dir, m.name),
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "shoal-bench")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
	}
	var out []result
	for _, w := range writers {
		cmd := exec.Command(etcdLoad, "-endpoints", strings.Join(endpoints, ","), "-writers", strconv.Itoa(w),
			"-duration", d.String(), "-size", strconv.Itoa(size), "-max-ops", strconv.Itoa(maxOps))
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", etcdLoad, err)
		}
		r, err := parseResult(b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		fmt.Printf("  %s\n", r.line())
	}
	return out, nil
}

func parseResult(b []byte) (result, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "RESULT ") {
			continue
		}
		r := result{}
		for _, f := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(f, "=")
			num, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "system":
				r.system = v
			case "writers":
				r.writers = int(num)
			case "ops":
				r.ops = int(num)
			case "failed":
				r.failed = int(num)
			case "ops_per_s":
				r.opsPerS = num
			case "p50_ms":
				r.p50 = num
			case "p99_ms":
				r.p99 = num
			}
		}
		return r, nil
	}
	return result{}, errors.New("etcdload printed no RESULT line")
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// report prints min/median/max over rounds for each system and writer
// count, and the ratio of Shoal's median to etcd's.
func report(w io.Writer, rs []result, writers []int, withEtcd bool) {
	pick := func(system string, n int) []result {
		var out []result
		for _, r := range rs {
			if r.system == system && r.writers == n {
				out = append(out, r)
			}
		}
		return out
	}
	median := func(v []float64) float64 {
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-6s %-8s %28s %10s %10s\n", "system", "writers", "writes/s min / median / max", "p50 ms", "p99 ms")
	systems := []string{"shoal"}
	if withEtcd {
		systems = append(systems, "etcd")
	}
	med := map[string]float64{}
	for _, n := range writers {
		for _, s := range systems {
			got := pick(s, n)
			if len(got) == 0 {
				continue
			}
			var tput, p50, p99 []float64
			for _, r := range got {
				tput = append(tput, r.opsPerS)
				p50 = append(p50, r.p50)
				p99 = append(p99, r.p99)
			}
			m := median(append([]float64(nil), tput...))
			med[fmt.Sprintf("%s/%d", s, n)] = m
			sort.Float64s(tput)
			fmt.Fprintf(w, "%-6s %-8d %8.0f / %8.0f / %8.0f %10.2f %10.2f\n", s, n, tput[0], m, tput[len(tput)-1], median(p50), median(p99))
		}
	}
	if withEtcd {
		fmt.Fprintln(w)
		for _, n := range writers {
			e := med[fmt.Sprintf("etcd/%d", n)]
			if e > 0 {
				fmt.Fprintf(w, "ratio shoal/etcd at %d writers (median writes/s): %.2fx\n", n, med[fmt.Sprintf("shoal/%d", n)]/e)
			}
		}
	}
}
