package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/integration/bench/benchproc"
)

// Limits on the flags.
const (
	maxWatchers = 10000
	maxRate     = 5000
)

// keepDir keeps the agents' data and logs (-keep).
var keepDir bool

// profileDir, if set, receives leader-W.prof for each watcher count W.
var profileDir string

func main() {
	shoalBin := flag.String("shoal", "bin/shoal", "the shoal binary")
	counts := flag.String("watchers", "100", "comma-separated watcher counts, one node each, measured one after another on the same cluster")
	rate := flag.Float64("rate", 50, "writes per second (pod creates, then updates), all on the leader")
	duration := flag.Duration("duration", 15*time.Second, "length of the write load for each watcher count")
	conc := flag.Int("conc", 32, "writes in flight at most; a tick finding them all busy is skipped and counted")
	stalled := flag.Int("stalled", 0, "extra watchers of every pod in the namespace that never read their stream (stuck clients)")
	every := flag.Int("every", 0, "extra watchers of every pod in the namespace that read their stream (as agents watch Nodes, Services and Endpoints unfiltered): each event is sent to all of them")
	agents := flag.Int("agents", 3, "agents (all voters) the watchers are spread over")
	flag.BoolVar(&keepDir, "keep", false, "keep the agents' data directories and logs")
	flag.StringVar(&profileDir, "profile", "", "write a CPU profile of the leader during each load (at most 10 s) to this directory")
	flag.Parse()

	var ws []int
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxWatchers {
			fail("-watchers: %q is not a count from 1 to %d", s, maxWatchers)
		}
		ws = append(ws, n)
	}
	switch {
	case *rate <= 0 || *rate > maxRate:
		fail("-rate %v: want more than 0 and at most %d", *rate, maxRate)
	case *duration <= 0:
		fail("-duration %v must be positive", *duration)
	case *conc < 1:
		fail("-conc %d must be at least 1", *conc)
	case *stalled < 0 || *stalled > maxWatchers:
		fail("-stalled %d: want 0 to %d", *stalled, maxWatchers)
	case *every < 0 || *every > maxWatchers:
		fail("-every %d: want 0 to %d", *every, maxWatchers)
	case *agents != 1 && *agents != 3 && *agents != 5:
		fail("-agents %d: want 1, 3 or 5 (voters)", *agents)
	}
	benchproc.RaiseFileLimit() // every watcher holds a connection

	c, err := startCluster(*shoalBin, *agents)
	if err != nil {
		fail("%v", err)
	}
	defer c.stop()
	fmt.Printf("watch fan-out: %d agents (all voters, secure), writes on the leader at %.0f/s for %v each, %d stuck and %d reading watchers of every pod; load %s\n",
		*agents, *rate, *duration, *stalled, *every, benchproc.LoadAvg())
	var rows []row
	for _, n := range ws {
		r, err := measure(c, n, *stalled, *every, *rate, *duration, *conc)
		if err != nil {
			c.stop()
			fail("%d watchers: %v", n, err)
		}
		rows = append(rows, r)
	}
	fmt.Println()
	fmt.Println("| watchers | open all | writes ok (failed, skipped) | events received / expected | ack → watcher p50 / p99 / max | send → watcher p50 / p99 | write latency p50 / p99 | agents' CPU (cores) | load |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %d%s | %v | %d (%d, %d) | %d / %d | %v / %v / %v | %v / %v | %v / %v | %.2f | %s |\n",
			r.watchers, r.stalledNote, r.open.Round(time.Millisecond), r.ok, r.failed, r.behind, r.matched, r.expected,
			ms(r.ackP50), ms(r.ackP99), ms(r.ackMax), ms(r.sendP50), ms(r.sendP99), ms(r.wP50), ms(r.wP99), r.agentCPU, r.load)
	}
}

// row is one watcher count's figures.
type row struct {
	watchers          int
	stalledNote       string
	open              time.Duration
	ok, failed        int
	behind            int64
	matched, expected int
	ackP50, ackP99    time.Duration
	ackMax            time.Duration
	sendP50, sendP99  time.Duration
	wP50, wP99        time.Duration
	agentCPU          float64
	selfCPU           float64 // this process: the watchers and the writer
	load              string
}

func measure(c *cluster, n, stalled, every int, rate float64, d time.Duration, conc int) (row, error) {
	r := row{watchers: n}
	if stalled > 0 {
		r.stalledNote = fmt.Sprintf(" + %d stuck", stalled)
	}
	if every > 0 {
		r.stalledNote += fmt.Sprintf(" + %d of every pod", every)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := fmt.Sprintf("w%d", n)
	var ws []*watcher
	var nodes []string
	for i := range n {
		node := fmt.Sprintf("%s-node%04d", prefix, i)
		nodes = append(nodes, node)
		ws = append(ws, &watcher{node: node, base: c.urls[i%len(c.urls)]})
	}
	for i := range stalled {
		ws = append(ws, &watcher{base: c.urls[i%len(c.urls)], stall: true})
	}
	for i := range every {
		ws = append(ws, &watcher{base: c.urls[i%len(c.urls)]})
	}
	defer func() {
		cancel()
		for _, w := range ws {
			w.close()
		}
	}()
	t0 := time.Now()
	if err := openAll(ctx, c, ws, 32); err != nil {
		return r, fmt.Errorf("opening the watches: %w", err)
	}
	r.open = time.Since(t0)
	var retries int64
	for _, w := range ws {
		retries += w.retries.Load()
	}
	fmt.Printf("\n== %d watchers: all open after %v, %d attempts retried (load %s)\n", n, r.open.Round(time.Millisecond), retries, benchproc.LoadAvg())

	wr := &writer{client: c.client(30 * time.Second), base: c.leader, nodes: nodes, prefix: prefix}
	defer wr.client.CloseIdleConnections()
	cpu0, self0 := c.cpu(), selfCPU()
	start := time.Now()
	profiled := make(chan struct{})
	if profileDir != "" {
		go func() {
			defer close(profiled)
			secs := int(min(max(d-2*time.Second, time.Second), 10*time.Second) / time.Second)
			if err := c.profileLeader(fmt.Sprintf("%s/leader-%d.prof", profileDir, n), secs); err != nil {
				fmt.Printf("profile: %v\n", err)
			}
		}()
	} else {
		close(profiled)
	}
	wr.run(ctx, rate, d, conc)
	<-profiled
	el := time.Since(start).Seconds()
	r.agentCPU = (c.cpu() - cpu0).Seconds() / el
	r.selfCPU = (selfCPU() - self0).Seconds() / el
	r.ok, r.failed, r.behind = len(wr.writes), int(wr.failed.Load()), wr.behind.Load()
	if wr.first != nil {
		fmt.Printf("first failed write: %v\n", wr.first)
	}

	// Wait for the events of every acknowledged write, then match.
	want := map[string]write{}
	for _, w := range wr.writes {
		want[w.name+"@"+w.rv] = w
	}
	r.expected = len(want)
	var got map[string]received
	onLeader := map[string]bool{} // event key -> received from the leader's API
	_ = waitFor(30*time.Second, func() bool {
		got = map[string]received{}
		for _, w := range ws[:n] {
			for _, e := range w.events() {
				got[e.name+"@"+e.rv] = e
				onLeader[e.name+"@"+e.rv] = w.base == c.leader
			}
		}
		k := 0
		for key := range want {
			if _, ok := got[key]; ok {
				k++
			}
		}
		r.matched = k
		return k == len(want)
	})
	var afterAck, afterSend, lat, leaderAck, followerAck []time.Duration
	before := 0
	for key, w := range want {
		lat = append(lat, w.ack.Sub(w.send))
		e, ok := got[key]
		if !ok {
			continue
		}
		da := e.at.Sub(w.ack)
		if da < 0 {
			before++
			da = 0
		}
		afterAck = append(afterAck, da)
		if onLeader[key] {
			leaderAck = append(leaderAck, da)
		} else {
			followerAck = append(followerAck, da)
		}
		afterSend = append(afterSend, e.at.Sub(w.send))
	}
	for _, s := range [][]time.Duration{afterAck, afterSend, lat, leaderAck, followerAck} {
		slices.Sort(s)
	}
	r.ackP50, r.ackP99 = pct(afterAck, 50), pct(afterAck, 99)
	if len(afterAck) > 0 {
		r.ackMax = afterAck[len(afterAck)-1]
	}
	r.sendP50, r.sendP99 = pct(afterSend, 50), pct(afterSend, 99)
	r.wP50, r.wP99 = pct(lat, 50), pct(lat, 99)
	r.load = benchproc.LoadAvg()
	var werrs int
	for _, w := range ws[:n] {
		w.mu.Lock()
		if w.err != nil {
			werrs++
		}
		w.mu.Unlock()
	}
	fmt.Printf("writes: %d acknowledged (%.0f/s), %d failed, %d ticks skipped; events: %d of %d received (%d before the write's answer); watch streams ended early: %d\n",
		r.ok, float64(r.ok)/d.Seconds(), r.failed, r.behind, r.matched, r.expected, before, werrs)
	fmt.Printf("ack → watcher p50 %v p99 %v max %v; send → watcher p50 %v p99 %v; write latency p50 %v p99 %v; agents' CPU %.2f cores\n",
		ms(r.ackP50), ms(r.ackP99), ms(r.ackMax), ms(r.sendP50), ms(r.sendP99), ms(r.wP50), ms(r.wP99), r.agentCPU)
	fmt.Printf("this process (watchers and writer) used %.2f cores\n", r.selfCPU)
	if every > 0 {
		short := 0
		for _, w := range ws[n+stalled:] {
			if len(w.events()) < r.ok {
				short++
			}
		}
		fmt.Printf("watchers of every pod: %d of %d received fewer events than the %d writes\n", short, every, r.ok)
	}
	fmt.Printf("ack → watcher p99 by the agent serving the watch: leader %v (%d events), followers %v (%d events)\n",
		ms(pct(leaderAck, 99)), len(leaderAck), ms(pct(followerAck, 99)), len(followerAck))
	return r, nil
}

// profileLeader saves a CPU profile of secs seconds of the leader.
func (c *cluster) profileLeader(path string, secs int) error {
	client := c.client(time.Duration(secs+30) * time.Second)
	defer client.CloseIdleConnections()
	resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", c.leader, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("leader profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpu is the CPU time all agents have used so far (/proc/PID/stat).
func (c *cluster) cpu() time.Duration {
	var total time.Duration
	for _, a := range c.agents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces).
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / 100 // USER_HZ
	}
	return total
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "watchfan: "+format+"\n", args...)
	os.Exit(1)
}
