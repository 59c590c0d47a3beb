package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/integration/bench/benchproc"
)

// Limits on the flags.
const (
	maxMembers = 5000
	maxSeeds   = 16
)

func main() {
	sizes := flag.String("n", "100", "comma-separated member counts, each measured on a fresh cluster (at most 5000)")
	seeds := flag.Int("seeds", 3, "members every other member joins through (its --join list)")
	encrypt := flag.Bool("encrypt", true, "encrypt gossip with an AES-256 key, as agents do")
	convergeFor := flag.Duration("converge-timeout", 3*time.Minute, "how long to wait for every member to see every member alive")
	settle := flag.Duration("settle", 5*time.Second, "wait after convergence before the steady-state window")
	window := flag.Duration("window", 10*time.Second, "steady-state window over which bytes and CPU are counted")
	deadFor := flag.Duration("dead-timeout", time.Minute, "how long to wait for every member to see the killed one dead")
	probeInterval := flag.Duration("probe-interval", 0, "memberlist probe interval (0: DefaultConfig's); with the flags below, timings for a process that carries members of many hosts on few cores")
	probeTimeout := flag.Duration("probe-timeout", 0, "memberlist probe timeout (0: DefaultConfig's)")
	suspicionMult := flag.Int("suspicion-mult", 0, "memberlist suspicion multiplier (0: DefaultConfig's)")
	joinRate := flag.Float64("join-rate", 0, "members that start their Join per second, in order, the seeds first (0: all at once, a simultaneous start)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail("-cpuprofile: %v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail("-cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}

	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > maxMembers {
			fail("-n: %q is not a member count from 2 to %d", s, maxMembers)
		}
		ns = append(ns, n)
	}
	if *seeds < 1 || *seeds > maxSeeds {
		fail("-seeds %d: want 1 to %d", *seeds, maxSeeds)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"converge-timeout", *convergeFor}, {"window", *window}, {"dead-timeout", *deadFor}} {
		if d.v <= 0 {
			fail("-%s %v must be positive", d.name, d.v)
		}
	}
	if *settle < 0 {
		fail("-settle %v must not be negative", *settle)
	}
	if *joinRate < 0 || *joinRate > 1e6 {
		fail("-join-rate %v: want 0 (all at once) up to 1e6 members a second", *joinRate)
	}
	raiseFileLimit(slices.Max(ns))

	kind := "production timings"
	for _, f := range []struct {
		name string
		v    time.Duration
		set  *time.Duration
	}{{"probe-interval", *probeInterval, &timings.ProbeInterval}, {"probe-timeout", *probeTimeout, &timings.ProbeTimeout}} {
		switch {
		case f.v < 0 || f.v > time.Minute:
			fail("-%s %v: want 0 (the default) up to 1m", f.name, f.v)
		case f.v > 0:
			*f.set, kind = f.v, "timings changed by flags"
		}
	}
	switch {
	case *suspicionMult < 0 || *suspicionMult > 100:
		fail("-suspicion-mult %d: want 0 (the default) up to 100", *suspicionMult)
	case *suspicionMult > 0:
		timings.SuspicionMult, kind = *suspicionMult, "timings changed by flags"
	}
	if timings.ProbeTimeout >= timings.ProbeInterval {
		fail("-probe-timeout %v must be shorter than the probe interval %v", timings.ProbeTimeout, timings.ProbeInterval)
	}
	cfg := timings
	fmt.Printf("gossip bench: "+kind+" (probe %v, timeout %v, suspicion mult %d, gossip %v to %d, retransmit mult %d, push/pull %v), encrypted=%v, %d seeds, GOMAXPROCS %d\n",
		cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult, cfg.GossipInterval, cfg.GossipNodes, cfg.RetransmitMult, cfg.PushPullInterval,
		*encrypt, *seeds, runtime.GOMAXPROCS(0))
	var rows []row
	for _, n := range ns {
		fmt.Printf("\n== %d members (load: %s)\n", n, benchproc.LoadAvg())
		r, err := measure(n, *seeds, *encrypt, *joinRate, *convergeFor, *settle, *window, *deadFor)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gossip bench: %d members: %v\n", n, err)
			break
		}
		rows = append(rows, r)
	}
	fmt.Println()
	printTable(rows)
}

// timings are every member's gossip timings: DefaultConfig's, changed by
// the flags.
var timings = gossip.DefaultConfig()

// row is one size's figures.
type row struct {
	n                      int
	joinRate               float64 // members a second; 0: all at once
	converged              bool
	seen                   int // members that saw all alive
	allSeeAll, p50SeeAll   time.Duration
	joinP50, joinAll       time.Duration
	convCPU                float64
	theory, serf           time.Duration
	udpOut, tcpOut, in     float64 // bytes per member per second
	cpu                    float64 // CPU seconds per second, whole process
	falseSusp              int64   // suspicions of live members in the window
	firstSuspect           time.Duration
	firstDead, p50Dead     time.Duration
	allDead                time.Duration
	sawDead                int
	expectDeadLo, expectHi time.Duration
	load                   string
}

func measure(n, seeds int, encrypt bool, joinRate float64, convergeFor, settle, window, deadFor time.Duration) (row, error) {
	r := row{n: n, joinRate: joinRate}
	cfg := timings
	r.theory = time.Duration(math.Ceil(math.Log(float64(n))/math.Log(float64(cfg.GossipNodes)))) * cfg.GossipInterval
	r.serf = serfModel(n, cfg.GossipNodes, cfg.GossipInterval, 0.9999)

	made := time.Now()
	c, err := newCluster(n, seeds, encrypt, nil)
	if err != nil {
		return r, err
	}
	defer c.shutdown()
	fmt.Printf("created %d members in %v\n", n, time.Since(made).Round(time.Millisecond))

	// A simultaneous start, or one at joinRate.
	start := time.Now()
	cpuStart := cpuTime()
	joinErrs := c.joinAll(joinRate)
	lastStart := joinDelay(n-1, joinRate)
	deadline := start.Add(lastStart + convergeFor)
	lastPrint := start
	for time.Now().Before(deadline) {
		seen, minAlive := 0, n
		for _, m := range c.members {
			if m.sawAll.Load() != 0 {
				seen++
			}
			minAlive = min(minAlive, int(m.alive.Load()))
		}
		r.seen = seen
		if seen == n {
			r.converged = true
			break
		}
		if time.Since(lastPrint) >= 10*time.Second {
			lastPrint = time.Now()
			fmt.Printf("  %v: %d of %d members see all alive; the least informed sees %d (load %s)\n",
				time.Since(start).Round(time.Second), seen, n, minAlive, benchproc.LoadAvg())
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.convCPU = (cpuTime() - cpuStart).Seconds() / time.Since(start).Seconds()
	var sawAll, joined []time.Duration
	for _, m := range c.members {
		if t := m.sawAll.Load(); t != 0 {
			sawAll = append(sawAll, time.Unix(0, t).Sub(start))
		}
		if t := m.joined.Load(); t != 0 {
			joined = append(joined, time.Unix(0, t).Sub(start))
		}
	}
	slices.Sort(sawAll)
	slices.Sort(joined)
	if len(joined) > 0 {
		r.joinP50, r.joinAll = pct(joined, 50), joined[len(joined)-1]
	}
	fmt.Printf("joins: %d of %d members' Join returned; median after %v, last after %v (a Join retries from 1 s, doubling, when no seed answered); process CPU during convergence %.2f cores\n",
		len(joined), n, r.joinP50.Round(time.Millisecond), r.joinAll.Round(time.Millisecond), r.convCPU)
	if len(sawAll) > 0 {
		r.p50SeeAll = pct(sawAll, 50)
		r.allSeeAll = sawAll[len(sawAll)-1]
	}
	if r.converged {
		fmt.Printf("converged: every member saw all %d alive after %v (median member %v); joins that gave up: %d\n",
			n, r.allSeeAll.Round(time.Millisecond), r.p50SeeAll.Round(time.Millisecond), joinErrs.Load())
		if joinRate > 0 {
			fmt.Printf("joins started at %.0f a second: the last after %v, every member saw all alive %v after it\n",
				joinRate, lastStart.Round(time.Millisecond), (r.allSeeAll - lastStart).Round(time.Millisecond))
		}
	} else {
		fmt.Printf("NOT converged after %v: %d of %d members saw all alive; joins that gave up: %d; last error logged: %q\n",
			convergeFor, r.seen, n, joinErrs.Load(), c.logs.lastError())
	}
	fmt.Printf("theory: log_%d(%d) = %.1f rounds of %v = %v for one message; Serf's simulator model: 99.99%% of members reached after %v\n",
		cfg.GossipNodes, n, math.Log(float64(n))/math.Log(float64(cfg.GossipNodes)), cfg.GossipInterval, r.theory, r.serf)

	// Steady state.
	time.Sleep(settle)
	uo0, ui0, to0, ti0 := total(countersOf(c))
	cpu0 := cpuTime()
	susp0 := c.logs.suspicions.Load()
	t0 := time.Now()
	time.Sleep(window)
	el := time.Since(t0).Seconds()
	uo1, ui1, to1, ti1 := total(countersOf(c))
	r.cpu = (cpuTime() - cpu0).Seconds() / el
	r.falseSusp = c.logs.suspicions.Load() - susp0
	per := func(b int64) float64 { return float64(b) / el / float64(n) }
	r.udpOut, r.tcpOut, r.in = per(uo1-uo0), per(to1-to0), per(ui1-ui0+ti1-ti0)
	fmt.Printf("steady state over %v: per member %.0f B/s sent by UDP + %.0f B/s by TCP, %.0f B/s received; process CPU %.2f cores; suspicions of live members: %d\n",
		window, r.udpOut, r.tcpOut, r.in, r.cpu, r.falseSusp)

	// One member crashes; in a cluster that has not converged, members
	// flap between alive and dead, and the figure would mean nothing.
	if !r.converged {
		fmt.Println("crash: not measured (the cluster did not converge)")
		r.load = benchproc.LoadAvg()
		return r, nil
	}
	victim := n - 1 // never a seed
	r.expectDeadLo, r.expectHi = expectDead(n, cfg)
	killed := time.Now()
	c.kill(victim)
	deadline = killed.Add(deadFor)
	for time.Now().Before(deadline) {
		if r.sawDead = countDead(c, victim); r.sawDead == n-1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var deads []time.Duration
	for i, m := range c.members {
		if t := m.dead.Load(); i != victim && t != 0 {
			deads = append(deads, time.Unix(0, t).Sub(killed))
		}
	}
	slices.Sort(deads)
	first, susp, timers := c.logs.victimFigures()
	if !first.IsZero() {
		r.firstSuspect = first.Sub(killed)
	}
	if len(deads) > 0 {
		r.firstDead, r.p50Dead, r.allDead = deads[0], pct(deads, 50), deads[len(deads)-1]
	}
	fmt.Printf("crash of %s: first suspected after %v (%d failed probes of it), first member saw it dead after %v, median %v, %d of %d after %v; %d members' own suspicion timers fired, the rest heard it; expected about %v to %v\n",
		c.members[victim].name, r.firstSuspect.Round(time.Millisecond), susp, r.firstDead.Round(time.Millisecond), r.p50Dead.Round(time.Millisecond),
		r.sawDead, n-1, r.allDead.Round(time.Millisecond), timers, r.expectDeadLo, r.expectHi)
	r.load = benchproc.LoadAvg()
	return r, nil
}

func countersOf(c *cluster) []*counters {
	var cs []*counters
	for _, m := range c.members {
		cs = append(cs, m.t.c)
	}
	return cs
}

func countDead(c *cluster, victim int) int {
	k := 0
	for i, m := range c.members {
		if i != victim && m.dead.Load() != 0 {
			k++
		}
	}
	return k
}

// serfModel is the time at which the model of Serf's convergence simulator
// (serf.io/docs/internals/simulator.html: a logistic infection curve with
// contact rate fanout/n * 0.5 per round) has reached fraction p of n members.
func serfModel(n, fanout int, interval time.Duration, p float64) time.Duration {
	k := 0.5 * float64(fanout)
	rounds := math.Ceil(math.Log(float64(n+1)/(1/p-1)) / k)
	return time.Duration(rounds) * interval
}

// expectDead brackets the time until all see a crashed member dead with
// memberlist's arithmetic (see gossip.DefaultConfig): a failed probe within
// one or two probe intervals, then the suspicion timeout, from its minimum
// (enough confirmations) to SuspicionMaxTimeoutMult times it, then the
// dead message's spread.
func expectDead(n int, cfg gossip.Config) (lo, hi time.Duration) {
	scale := max(1, math.Log10(float64(n)))
	minTO := time.Duration(float64(cfg.SuspicionMult) * scale * float64(cfg.ProbeInterval))
	spread := time.Duration(math.Ceil(math.Log(float64(n))/math.Log(float64(cfg.GossipNodes)))) * cfg.GossipInterval
	lo = cfg.ProbeTimeout + minTO
	hi = 2*cfg.ProbeInterval + time.Duration(cfg.SuspicionMaxTimeoutMult)*minTO + spread
	return lo.Round(100 * time.Millisecond), hi.Round(100 * time.Millisecond)
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

func printTable(rows []row) {
	fmt.Println("| members | all see all (median member) | theory log_k(N)·interval / Serf model | bytes/s per member sent (UDP+TCP) / received | CPU (cores) | false suspicions | crash: first suspect / first dead / median / all dead (expected) | load |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		conv := fmt.Sprintf("%v (%v)", r.allSeeAll.Round(10*time.Millisecond), r.p50SeeAll.Round(10*time.Millisecond))
		if r.joinRate > 0 {
			conv = fmt.Sprintf("joining %.0f/s, the last at %v: %s", r.joinRate,
				joinDelay(r.n-1, r.joinRate).Round(10*time.Millisecond), conv)
		}
		if !r.converged {
			conv = fmt.Sprintf("not converged: %d of %d", r.seen, r.n)
		}
		dead := fmt.Sprintf("%v / %v / %v / %v (%v–%v)", r.firstSuspect.Round(10*time.Millisecond), r.firstDead.Round(10*time.Millisecond),
			r.p50Dead.Round(10*time.Millisecond), r.allDead.Round(10*time.Millisecond), r.expectDeadLo, r.expectHi)
		switch {
		case !r.converged:
			dead = "not measured"
		case r.sawDead < r.n-1:
			dead += fmt.Sprintf(", only %d of %d saw it", r.sawDead, r.n-1)
		}
		fmt.Printf("| %d | %s | %v / %v | %.0f+%.0f / %.0f | %.2f | %d | %s | %s |\n", r.n, conv, r.theory, r.serf,
			r.udpOut, r.tcpOut, r.in, r.cpu, r.falseSusp, dead, r.load)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit lifts the soft file limit to the hard one: each member
// holds a UDP socket, a TCP listener and its streams.
func raiseFileLimit(n int) {
	if have, need := benchproc.RaiseFileLimit(), uint64(4*n+256); have < need {
		fmt.Fprintf(os.Stderr, "gossip bench: the file limit %d may be too low for %d members (about %d wanted)\n", have, n, need)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gossip bench: "+format+"\n", args...)
	os.Exit(1)
}
