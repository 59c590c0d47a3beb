package hollow

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// envInt reads a positive integer from the environment, def when unset.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// The bounded run's size: the 100 nodes issue 14 asks for. 20 were the
// most that passed under load until the agents looked members up by a
// sorted copy of the whole gossip table on every forwarded request's
// leader poll: at 100 nodes with four busy loops beside it, 300 pods took
// 108 s to run (their status writes starved); with lookups that copy
// nothing, 4.3-4.7 s, and all Ready 18-21 s after the first start.
// Under -race even 5 nodes failed two runs of three at load 40-55 (their
// Nodes not Ready within 3 minutes), so make test runs it without.
const boundedNodes = 100

// boundedOptions are timings for a process that carries every agent and
// gets a fraction of a core: probes that wait for a second before asking
// others, suspicion that lasts long enough to refute, and Raft timeouts of
// 10 s. On production timings (probe timeout 250 ms, Raft 1 s) such a
// process declares its own members suspect and its leader gone only
// because the goroutines that would answer did not run in time: an
// artefact of one process, not of a cluster.
func boundedOptions(o Options) Options {
	g := gossip.DefaultConfig()
	g.ProbeInterval, g.ProbeTimeout = 2*time.Second, time.Second
	g.SuspicionMult = 6
	g.GossipInterval = 300 * time.Millisecond
	g.PushPullInterval = 10 * time.Second
	o.Gossip = g
	o.RaftTimeout = 10 * time.Second
	return o
}

// openFDs counts this process's open file descriptors (sockets mostly):
// at 1,000 hollow nodes the process ran into this machine's limit.
func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// TestHollow runs hollow nodes against three real voters. By default it
// is the bounded run of make test: boundedNodes nodes, 3 pods each, not
// under -race, on timings for one starved process (see boundedOptions),
// with deadlines of minutes because the suite loads the machine. make
// scale sets SHOAL_HOLLOW_NODES and SHOAL_HOLLOW_PODS for the figures, on
// production gossip timings (SHOAL_HOLLOW_STARVED=1: the bounded run's),
// and adds the node-loss run.
func TestHollow(t *testing.T) {
	if testing.Short() {
		t.Skip("hollow nodes: not in -short")
	}
	full := os.Getenv("SHOAL_HOLLOW_NODES") != ""
	if raceEnabled && !full {
		t.Skip("hollow nodes: the bounded run is not reliable under -race on a loaded machine (5 nodes failed 2 runs of 3 at load 40-55); make test runs it without -race")
	}
	nodes := envInt(t, "SHOAL_HOLLOW_NODES", boundedNodes)
	pods := envInt(t, "SHOAL_HOLLOW_PODS", 3*nodes)
	// Generous deadlines: the machine is shared and loaded.
	scale := time.Duration(1 + nodes/100)
	if !full {
		scale = 3
	}
	ctx := context.Background()

	opts := Options{Dir: t.TempDir(), StartDelay: 100 * time.Millisecond, NodeLossGrace: 3 * time.Second, RaftTimeout: 5 * time.Second}
	if !full || os.Getenv("SHOAL_HOLLOW_STARVED") != "" {
		opts = boundedOptions(opts)
	}
	if p := os.Getenv("SHOAL_HOLLOW_LOGS"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opts.Logs = f
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Logf("load before: %s", loadavg())
	servePprof(t)
	if os.Getenv("SHOAL_HOLLOW_RAFT") != "" {
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		go watchRaft(mctx, t, c, 5*time.Second)
	}
	if err := c.StartVoters(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("voters up; starting %d hollow nodes", nodes)
	start := time.Now()
	if err := c.AddNodes(nodes, 64); err != nil {
		t.Fatal(err)
	}
	started := time.Since(start)
	conv, err := c.GossipConverged(ctx, nodes+3, start, scale*60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gossip converged after %v", conv)
	if err := c.WaitNodesReady(ctx, nodes, scale*60*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d hollow nodes: agents started in %v, gossip converged (every member sees %d alive) %v after the first start, all Ready %v",
		nodes, started.Round(time.Millisecond), nodes+3, conv.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// SHOAL_HOLLOW_SETTLE=DURATION waits that long before the apply: the
	// simultaneous start's gossip (every member re-sending every join
	// many times) goes on well after convergence and shares the process's
	// cores with the apply; a cluster is rarely deployed to seconds after
	// all its hosts started.
	if v := os.Getenv("SHOAL_HOLLOW_SETTLE"); v != "" {
		settle, err := time.ParseDuration(v)
		if err != nil || settle < 0 {
			t.Fatalf("SHOAL_HOLLOW_SETTLE=%q: want a duration such as 30s", v)
		}
		t.Logf("waiting %v before the apply (SHOAL_HOLLOW_SETTLE); load %s", settle, loadavg())
		time.Sleep(settle) // a pause the user asked for, not a synchronisation
		t.Logf("load after the wait: %s", loadavg())
	}
	stopProfile := profileApply(t)
	cpu0, asks0 := processCPU(t), c.LeaderAsks()
	res, err := c.Apply(ctx, "web", pods, scale*120*time.Second)
	cpu, asks := processCPU(t)-cpu0, c.LeaderAsks()-asks0
	stopProfile()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("apply %d pods onto %d nodes: all bound %v (%.0f pods/s; %v through the benchmark's watch), all Running %v (%.0f pods/s); %d writes (%.1f a pod); load %s",
		pods, nodes, res.AllBound.Round(time.Millisecond), res.BoundRate(), res.AllBoundWatch.Round(time.Millisecond),
		res.AllRunning.Round(time.Millisecond), res.RunningRate(),
		res.Writes, float64(res.Writes)/float64(pods), loadavg())
	// The process's CPU from the apply until all Running: the whole
	// cluster's work, gossip included, and less noisy than the wall
	// times when the machine is shared.
	t.Logf("apply CPU: %.2f CPU-seconds in the process (%.0f µs a pod, %.2f cores)",
		cpu.Seconds(), float64(cpu.Microseconds())/float64(pods), cpu.Seconds()/res.AllRunning.Seconds())
	t.Logf("leader asks: the hollow nodes asked the voters who leads %d times during the apply (%.2f a node a second)",
		asks, float64(asks)/float64(nodes)/res.AllRunning.Seconds())
	fds := openFDs()
	t.Logf("after the apply: %d open file descriptors in the process (%.1f a node)", fds, float64(fds)/float64(nodes+3))

	dead, err := c.GossipDeath(ctx, scale*60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one member crashed: every other member saw it dead after %v", dead.Round(time.Millisecond))
	if !full {
		return
	}
	// The pods must fit on what is left: the member crashed above and
	// the 10% crashed now take their capacity with them.
	const lost = 0.10
	if left := nodes - 1 - int(float64(nodes)*lost); pods > left*agent.DefaultMaxPods {
		t.Logf("node loss: skipped: %d pods do not fit on the %d nodes left (%d pods each)", pods, left, agent.DefaultMaxPods)
		return
	}
	k, took, err := c.NodeLoss(ctx, lost, pods, scale*120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node loss: %d nodes crashed at once, all %d pods Running elsewhere after %v; load %s", k, pods, took.Round(time.Millisecond), loadavg())
}
