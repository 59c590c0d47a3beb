// Command writes measures the write path of Shoal's replicated store as a
// client sees it: three `shoal agent` processes, voters with their Raft logs
// on disk, and a fourth agent that is not a voter, talking over loopback
// TCP, and writers creating 1 KiB ConfigMaps through the HTTP API in two
// shapes (issue 14): "leader", every write on the leader's API, and
// "spread", each write on the next of the four agents in turn (followers
// and the non-voter forward to the leader), as users talk to whichever
// agent is nearest.
//
// Each round measures the same cluster shape twice: secure, as every
// agent runs by default (issue 10: a bootstrap token, mutual TLS between
// agents, HTTPS and a bearer token for the writers), and with --insecure
// (plain HTTP and TCP, no authentication; allowed on loopback only), and
// prints the ratio, the cost of security (target: secure at most 1.2x
// slower). It also measures etcd (three members on loopback, 1 KiB puts
// through etcd's v3 client, via the etcdload program) as an anchor, in the
// same two shapes (all puts to the leader member; spread over the three
// members by etcd's client), run two ways (-etcd-modes): "etcd", in
// plaintext, the anchor for insecure, and "etcd-tls", as Kubernetes runs
// etcd, the anchor for secure: HTTPS client URLs with client certificates
// required, and mutual TLS between members, with certificates from a
// throwaway CA the bench generates. The summary gives secure/etcd-tls and
// insecure/etcd against their targets, and secure/etcd (the plaintext
// anchor earlier figures used). It also times
// the join of a fourth agent with the worker join token: from its start
// to its Node Ready. The systems' order changes from round to round so
// that machine noise hits all of them, and so does the order of the loads
// in a round (roundLoads), the same for every system of the round.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// profileDir, if set, is where CPU profiles of the Shoal leader, a
// follower and the non-voter go, with their allocation profiles and
// execution traces (1 s), taken during every load of each mode's first
// round.
var profileDir string

// warmup is how long each load runs unmeasured before it is measured.
var warmup time.Duration

// The shapes of the load.
const (
	leaderShape = "leader" // every writer on the leader
	spreadShape = "spread" // writers spread over all agents (members)
	// nonvoterShape: every write on the non-voter, so every write is
	// forwarded (Shoal only: etcd has no member that forwards writes
	// without holding the log); the cost of the hop alone.
	nonvoterShape = "nonvoter"
)

var shapes = []string{leaderShape, spreadShape}

// loadSpec is one load of a round: a shape and a number of writers.
type loadSpec struct {
	shape   string
	writers int
}

// roundLoads lists round r's loads: every shape with every writer count,
// the list turned by r-1 places, so that over as many rounds as there are
// loads each takes every place in a round once. The place matters: on a
// fresh cluster Shoal's first load was measured faster than its later ones
// (one writer: 741 then 517 and 575 writes/s; 878 then 600 and 464 with
// raft-wal), where etcd's were not (750, 753, 776), and a fixed order gave
// that to the same figure in every round.
func roundLoads(r int, writers []int) []loadSpec {
	var all []loadSpec
	for _, shape := range shapes {
		for _, w := range writers {
			all = append(all, loadSpec{shape, w})
		}
	}
	k := (r - 1) % len(all)
	return slices.Concat(all[k:], all[:k])
}

// The systems measured.
const (
	secure   = "secure"
	insecure = "insecure"
	etcd     = "etcd"     // etcd in plaintext: the anchor for insecure
	etcdTLS  = "etcd-tls" // etcd with client and peer TLS: the anchor for secure
	base     = "base"     // secure, with the binary of -base-shoal: before/after in one run
)

type result struct {
	system   string
	shape    string
	writers  int
	ops      int
	failed   int
	opsPerS  float64
	p50, p99 float64 // milliseconds
	// cpuUS: the servers' CPU (every Shoal agent, or every etcd member)
	// per successful write, in microseconds (cpu.go).
	cpuUS float64
}

func main() {
	rounds := flag.Int("rounds", 3, "rounds per system (min/median/max are over rounds)")
	duration := flag.Duration("duration", 5*time.Second, "length of one load run")
	flag.DurationVar(&warmup, "warmup", time.Second, "unmeasured load before each Shoal load run, with the same writers (connections open, as a long-lived client's are)")
	writersFlag := flag.String("writers", "1,64", "comma-separated writer counts")
	size := flag.Int("size", 1024, "object payload in bytes")
	maxOps := flag.Int("max-ops", 200000, "cap on writes per load run")
	joins := flag.Int("joins", 2, "per round: agents joined one after another to the secure cluster with the worker token, timed from start to Node Ready (0: none; at most 10)")
	etcdBin := flag.String("etcd", "/usr/bin/etcd", "etcd server binary; empty skips etcd")
	etcdLoad := flag.String("etcdload", "bin/etcdload", "the etcdload program")
	shoalBin := flag.String("shoal", "bin/shoal", "the shoal binary")
	baseBin := flag.String("base-shoal", "", "another shoal binary (a build before a change), measured secure as system \"base\" in the same rounds; the report gives secure/base")
	shoalArgs := flag.String("shoal-args", "", "extra `shoal agent` flags, space-separated, for the secure and insecure systems (e.g. --raft-log-store=wal)")
	baseArgs := flag.String("base-args", "", "extra `shoal agent` flags, space-separated, for the base system (-base-shoal may be bin/shoal itself: the same binary with other flags)")
	skipEtcd := flag.Bool("skip-etcd", false, "measure Shoal only")
	etcdModes := flag.String("etcd-modes", "plain,tls", "the etcd systems measured, comma-separated: plain (system etcd, the anchor for insecure), tls (system etcd-tls: client certificates and mutual TLS between members, as Kubernetes runs etcd; the anchor for secure)")
	modes := flag.String("modes", "secure,insecure", "the Shoal modes measured, comma-separated (both: the ratio, the cost of security)")
	shapesFlag := flag.String("shapes", strings.Join(shapes, ","), "the shapes measured, comma-separated: leader (every write on the leader), spread (over all agents), nonvoter (every write on the non-voter, Shoal only: the forwarding hop alone)")
	nonvoter := flag.Bool("nonvoter", true, "add a fourth Shoal agent, not a voter, that the spread shape loads too")
	flag.StringVar(&profileDir, "profile", "", "write CPU profiles of the Shoal leader, a follower and the non-voter, their allocations and 1 s execution traces, during every load of the first round to this directory")
	flag.Parse()
	if *skipEtcd {
		*etcdBin = ""
	}
	if *joins < 0 || *joins > 10 {
		fatalf("-joins: %d is not between 0 and 10", *joins)
	}

	var sh []string
	for _, s := range strings.Split(*shapesFlag, ",") {
		if s = strings.TrimSpace(s); s != leaderShape && s != spreadShape && s != nonvoterShape {
			fatalf("-shapes: %q is none of %s, %s, %s", s, leaderShape, spreadShape, nonvoterShape)
		}
		if s == nonvoterShape && !*nonvoter {
			fatalf("-shapes: %s needs -nonvoter", s)
		}
		sh = append(sh, s)
	}
	shapes = sh
	var writers []int
	for _, s := range strings.Split(*writersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1024 {
			fatalf("-writers: %q is not a count between 1 and 1024", s)
		}
		writers = append(writers, n)
	}
	var etcds []string
	for _, m := range strings.Split(*etcdModes, ",") {
		switch strings.TrimSpace(m) {
		case "plain":
			etcds = append(etcds, etcd)
		case "tls":
			etcds = append(etcds, etcdTLS)
		case "":
		default:
			fatalf("-etcd-modes: %q is neither plain nor tls", m)
		}
	}
	withEtcd := *etcdBin != "" && len(etcds) > 0
	if withEtcd {
		if _, err := os.Stat(*etcdBin); err != nil {
			fatalf("-etcd: %v (install the Debian package etcd-server, or pass -etcd '' to skip)", err)
		}
	}
	var systems []string
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); m != secure && m != insecure {
			fatalf("-modes: %q is neither %s nor %s", m, secure, insecure)
		}
		systems = append(systems, strings.TrimSpace(m))
	}
	if *baseBin != "" {
		systems = append(systems, base)
	}
	if withEtcd {
		systems = append(systems, etcds...)
	}

	var results []result
	var joined []time.Duration
	for r := 1; r <= *rounds; r++ {
		fmt.Printf("round %d/%d\n", r, *rounds)
		// Rotate the order: each system goes first in some round.
		order := append(append([]string(nil), systems[(r-1)%len(systems):]...), systems[:(r-1)%len(systems)]...)
		for _, sys := range order {
			var res []result
			var err error
			switch sys {
			case etcd, etcdTLS:
				res, err = etcdRound(sys, *etcdBin, *etcdLoad, roundLoads(r, writers), *duration, *size, *maxOps)
			default:
				var js []time.Duration
				n, bin, args := 0, *shoalBin, strings.Fields(*shoalArgs)
				if sys == secure {
					n = *joins
				}
				if sys == base {
					bin, args = *baseBin, strings.Fields(*baseArgs)
				}
				res, js, err = shoalRound(bin, sys, args, *nonvoter, roundLoads(r, writers), *duration, *size, *maxOps, n, r == 1)
				joined = append(joined, js...)
			}
			if err != nil {
				fatalf("%s round %d: %v", sys, r, err)
			}
			results = append(results, res...)
		}
	}
	report(os.Stdout, results, writers, systems, joined)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "writes: "+format+"\n", args...)
	os.Exit(1)
}

// load runs w writers for d (or maxOps writes) and measures each write.
func load(system, shape string, w int, d time.Duration, maxOps int, write func(writer int, i int64) error) result {
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
	return result{system: system, shape: shape, writers: w, ops: len(all), failed: int(failed.Load()),
		opsPerS: float64(len(all)) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99)}
}

func (r result) line() string {
	return fmt.Sprintf("%-8s %-6s writers=%-3d %8.0f writes/s  p50 %6.2f ms  p99 %7.2f ms  cpu %5.0f us/write  (%d ok, %d failed)",
		r.system, r.shape, r.writers, r.opsPerS, r.p50, r.p99, r.cpuUS, r.ops, r.failed)
}

// report prints min/median/max over rounds for each shape, writer count
// and system (and the median CPU per write), then per shape and writer
// count one line per comparison of medians: secure/base, the cost of
// security (insecure / secure), each Shoal mode against its etcd anchor
// (secure and base against etcd-tls, insecure against etcd; with their
// targets), secure and base against plaintext etcd as earlier figures
// were (no target), etcd's own cost of TLS (etcd-tls / etcd), each with
// the ratio of CPU per write; and the join times.
func report(w io.Writer, rs []result, writers []int, systems []string, joined []time.Duration) {
	median := func(v []float64) float64 {
		v = append([]float64(nil), v...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-6s %-8s %-8s %28s %10s %10s %12s\n", "shape", "system", "writers", "writes/s min / median / max", "p50 ms", "p99 ms", "cpu us/write")
	med, medCPU := map[string]float64{}, map[string]float64{}
	key := func(shape, system string, n int) string { return fmt.Sprintf("%s/%s/%d", shape, system, n) }
	for _, shape := range shapes {
		for _, n := range writers {
			for _, s := range systems {
				var tput, p50, p99, cpu []float64
				for _, r := range rs {
					if r.system == s && r.shape == shape && r.writers == n {
						tput, p50, p99, cpu = append(tput, r.opsPerS), append(p50, r.p50), append(p99, r.p99), append(cpu, r.cpuUS)
					}
				}
				if len(tput) == 0 {
					continue
				}
				m := median(tput)
				med[key(shape, s, n)] = m
				medCPU[key(shape, s, n)] = median(cpu)
				sort.Float64s(tput)
				fmt.Fprintf(w, "%-6s %-8s %-8d %8.0f / %8.0f / %8.0f %10.2f %10.2f %12.0f\n", shape, s, n, tput[0], m, tput[len(tput)-1], median(p50), median(p99), median(cpu))
			}
		}
	}
	fmt.Fprintln(w)
	// The comparisons, numerator over denominator; target: against the
	// goal (>= 1.0x at 64 writers, >= 0.9x at 1 writer).
	type cmp struct {
		num, den string
		target   bool
		note     string
	}
	cmps := []cmp{
		{num: secure, den: base, note: "before/after"},
		{num: insecure, den: secure}, // the cost of security: its own verdict
		{num: secure, den: etcdTLS, target: true},
		{num: base, den: etcdTLS, target: true},
		{num: insecure, den: etcd, target: true},
		{num: secure, den: etcd, note: "plaintext etcd, the anchor of earlier figures; no target"},
		{num: base, den: etcd, note: "plaintext etcd; no target"},
		{num: etcdTLS, den: etcd, note: "etcd's own cost of TLS"},
	}
	for _, shape := range shapes {
		for _, n := range writers {
			target := 1.0
			if n == 1 {
				target = 0.9
			}
			for _, c := range cmps {
				v, d := med[key(shape, c.num, n)], med[key(shape, c.den, n)]
				if v == 0 || d == 0 {
					continue
				}
				line := fmt.Sprintf("%s/%s %.2fx", c.num, c.den, v/d)
				switch {
				case c.num == insecure && c.den == secure:
					verdict := "within 1.2x"
					if v/d > 1.2 {
						verdict = "OVER 1.2x"
					}
					line += " (" + verdict + ")"
				case c.target:
					verdict := "met"
					if v/d < target {
						verdict = "below"
					}
					line += fmt.Sprintf(" (target >= %.1fx: %s)", target, verdict)
				case c.note != "":
					line += " (" + c.note + ")"
				}
				if vc, dc := medCPU[key(shape, c.num, n)], medCPU[key(shape, c.den, n)]; vc > 0 && dc > 0 {
					line += fmt.Sprintf("; cpu/write %s/%s %.2fx", c.num, c.den, vc/dc)
				}
				fmt.Fprintf(w, "%-6s writers=%-3d %s\n", shape, n, line)
			}
		}
	}
	if len(joined) > 0 {
		d := append([]time.Duration(nil), joined...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Fprintf(w, "join with the worker token, agent start to Node Ready (%d joins): min %v / median %v / max %v\n",
			len(d), d[0].Round(time.Millisecond), d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
}
