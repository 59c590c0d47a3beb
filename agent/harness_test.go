package agent

// An in-process multi-agent harness: every agent on 127.0.0.1 with its own
// data dir and ports, gossip.TestConfig and consensus.TestConfig timings.
// Test-only (STYLE item 11): conditions are waited on with a deadline.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// syncBuf collects an agent's logs; they are printed when a test fails.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// handed are the ports freePort gave out in this test binary.
var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

// freePort returns a port free for both TCP and UDP on 127.0.0.1, chosen
// below the kernel's ephemeral range: a port from that range, released and
// bound again later (Raft listens only once promoted), can meanwhile be
// taken as the local port of some outgoing connection.
func freePort(t testing.TB) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	// [10000, 20000) is this package's; integration's harness takes the
	// ports from 20000 up to the ephemeral range, so the two test binaries,
	// which run at the same time, never pick the same port.
	const base = 10000
	if low > 20000 {
		low = 20000
	}
	if low <= base+1000 {
		low = 65535 // no room below: take any port
	}
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 200 {
		port := base + rand.IntN(low-base)
		// A port handed out earlier may still be unbound (Raft binds on
		// promotion): never give it twice, or two agents of one test
		// collide (with 15 ports a round, 50 rounds made that likely).
		if handed[port] {
			continue
		}
		ln, err := net.Listen("tcp", loopback(port))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", loopback(port))
		ln.Close()
		if err == nil {
			pc.Close()
			handed[port] = true
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// timings selects the test preset or production timings (figures).
type timings int

const (
	fastTimings timings = iota
	prodTimings
)

// testAgent is one agent of a harness cluster and how to stop it.
type testAgent struct {
	*Agent
	cfg    Config
	ca     *testCA // the harness CA of a secure agent
	t      testing.TB
	logs   *syncBuf
	cancel context.CancelFunc
	done   chan error
	killed bool
}

// harness owns the agents of one test and stops them all at cleanup.
type harness struct {
	t      testing.TB
	tim    timings
	mu     sync.Mutex
	agents []*testAgent
	// gossip addresses of every agent made so far, for --join
	seeds []string
	// ca, if set (newSecureHarness), issues the agents' certificates.
	ca *testCA
}

func newHarness(t testing.TB, tim timings) *harness {
	h := &harness{t: t, tim: tim}
	// The test's temporary directory is made before stopAll is
	// registered, so that its removal (a cleanup registered by the
	// first TempDir) runs after the agents have stopped writing to it;
	// made later, it was removed first and could meet an agent's write
	// ("directory not empty").
	t.TempDir()
	t.Cleanup(h.stopAll)
	return h
}

// config returns a loopback configuration for name with fresh ports and data
// dir. Every agent joins every seed known so far.
func (h *harness) config(name, zone string) Config {
	h.t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.Zone = zone
	cfg.DataDir = h.t.TempDir()
	cfg.HTTPAddr = loopback(freePort(h.t))
	cfg.RaftAddr = loopback(freePort(h.t))
	cfg.GossipAddr = loopback(freePort(h.t))
	cfg.Version = "test"
	// Loopback only: security off unless the harness is secure.
	cfg.Insecure = true
	var rc consensus.Config
	var gc gossip.Config
	if h.tim == fastTimings {
		rc, gc = consensus.TestConfig(), gossip.TestConfig()
		// Raft's 300 ms test preset is for the consensus package's lone
		// nodes. Five agents under -race in one process on a loaded
		// machine miss that many heartbeats: leaders flapped for tens of
		// seconds and clusters never settled. A second keeps failover
		// quick and lets a starved process keep its leader.
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = time.Second, time.Second, time.Second
		cfg.Interval = 100 * time.Millisecond
		cfg.DeadGrace = 1 * time.Second
		cfg.Stabilize = 200 * time.Millisecond
		cfg.LeaveTimeout = 5 * time.Second
		cfg.VoterSettle = 300 * time.Millisecond
	} else {
		rc, gc = consensus.DefaultConfig(), gossip.DefaultConfig()
	}
	cfg.Raft, cfg.Gossip = &rc, &gc
	if h.ca != nil {
		cfg = h.secure(cfg, pki.RoleVoter)
	}
	h.mu.Lock()
	cfg.Join = append([]string(nil), h.seeds...)
	h.seeds = append(h.seeds, cfg.GossipAddr)
	h.mu.Unlock()
	return cfg
}

// configs makes n configurations a0..a(n-1) in zones z0..z2, each joining
// all the others.
func (h *harness) configs(n int, prefix string) []Config {
	cfgs := make([]Config, n)
	for i := range cfgs {
		cfgs[i] = h.config(fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("z%d", i%3))
	}
	var all []string
	for _, c := range cfgs {
		all = append(all, c.GossipAddr)
	}
	for i := range cfgs {
		cfgs[i].Join = nil
		for _, a := range all {
			if a != cfgs[i].GossipAddr {
				cfgs[i].Join = append(cfgs[i].Join, a)
			}
		}
	}
	return cfgs
}

// start builds every agent, then runs them all at the same instant.
func (h *harness) start(cfgs ...Config) []*testAgent {
	h.t.Helper()
	tas := make([]*testAgent, len(cfgs))
	for i, cfg := range cfgs {
		tas[i] = h.build(cfg)
	}
	gate := make(chan struct{})
	for _, ta := range tas {
		h.run(ta, gate)
	}
	close(gate)
	return tas
}

func (h *harness) build(cfg Config) *testAgent {
	h.t.Helper()
	ta, err := h.tryBuild(cfg)
	if err != nil {
		h.t.Fatalf("new %s: %v", cfg.NodeName, err)
	}
	return ta
}

// tryBuild is build that returns New's error (callable from any goroutine).
func (h *harness) tryBuild(cfg Config) (*testAgent, error) {
	logs := &syncBuf{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rc := *cfg.Raft
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: logs})
	cfg.Raft = &rc
	a, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w\nlogs:\n%s", err, logs.String())
	}
	ta := &testAgent{Agent: a, cfg: cfg, logs: logs, done: make(chan error, 1), ca: h.ca, t: h.t}
	if cfg.Insecure {
		ta.ca = nil
	}
	h.mu.Lock()
	h.agents = append(h.agents, ta)
	h.mu.Unlock()
	return ta, nil
}

func (h *harness) run(ta *testAgent, gate <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	ta.cancel = cancel
	go func() {
		if gate != nil {
			<-gate
		}
		ta.done <- ta.Run(ctx)
	}()
}

// kill crashes ta (no hand-over) and waits for Run to return.
func (h *harness) kill(ta *testAgent) {
	h.t.Helper()
	ta.killed = true
	ta.kill()
	h.wait(ta)
}

// stop stops ta gracefully (SIGTERM) and waits for Run to return.
func (h *harness) stop(ta *testAgent) error {
	h.t.Helper()
	ta.killed = true
	ta.cancel()
	return h.wait(ta)
}

func (h *harness) wait(ta *testAgent) error {
	h.t.Helper()
	select {
	case err := <-ta.done:
		ta.done <- err // later waits see it too
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatalf("%s did not stop; goroutines in a shutdown:\n%s", ta.cfg.NodeName, stuckStacks())
		return nil
	}
}

// stuckStacks returns the stacks of this process's goroutines that are in
// an agent's or a Raft node's shutdown path (every agent of the test is in
// this process), so that a stop that hangs says where.
func stuckStacks() string {
	out := stacksWith("Shutdown", "becomeNonvoter", "(*Agent).leave")
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("... %d more", len(out)-40))
	}
	return strings.Join(out, "\n\n")
}

// startStacks returns the stacks of this process's goroutines inside an
// agent's Start.
func startStacks() string { return strings.Join(stacksWith("(*Agent).Start("), "\n\n") }

// stacksWith returns the stacks of this process's goroutines that mention
// any of subs.
func stacksWith(subs ...string) []string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, sub := range subs {
			if strings.Contains(g, sub) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// stopAll crashes every agent still running; cleanup must be quick.
func (h *harness) stopAll() {
	h.mu.Lock()
	agents := h.agents
	h.mu.Unlock()
	if h.t.Failed() {
		for _, ta := range agents {
			h.t.Logf("logs of %s:\n%s", ta.cfg.NodeName, ta.logs.String())
			// An agent whose Run ended early (a Start that failed: a
			// port taken, a bind refused) may have logged nothing.
			select {
			case err := <-ta.done:
				ta.done <- err
				h.t.Logf("%s: Run had returned before the end of the test: %v", ta.cfg.NodeName, err)
			default:
				if ta.logs.String() == "" {
					h.t.Logf("%s logged nothing and is still running; goroutines in Start:\n%s", ta.cfg.NodeName, startStacks())
				}
			}
		}
	}
	for _, ta := range agents {
		if !ta.killed {
			ta.killed = true
			ta.kill()
		}
	}
	for _, ta := range agents {
		if ta.cancel != nil {
			select {
			case err := <-ta.done:
				ta.done <- err
			case <-time.After(30 * time.Second):
				h.t.Errorf("%s did not stop", ta.cfg.NodeName)
			}
		} else {
			ta.Shutdown()
		}
	}
}

// alive are the agents not stopped.
func alive(tas []*testAgent) []*testAgent {
	var out []*testAgent
	for _, ta := range tas {
		if !ta.killed {
			out = append(out, ta)
		}
	}
	return out
}

// waitFor polls cond until it returns "" or the deadline passes, then fails
// with cond's last complaint.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, d, why)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// clusterView summarises the alive agents: the leaders, the cluster ids, the
// voters of the leader's configuration, the agents running Raft.
type clusterView struct {
	leaders    []*testAgent
	clusterIDs map[string][]string
	config     []string // leader's voters
	running    []string // agents with a Raft node
}

func viewOf(tas []*testAgent) clusterView {
	v := clusterView{clusterIDs: map[string][]string{}}
	for _, ta := range alive(tas) {
		v.clusterIDs[ta.ClusterID()] = append(v.clusterIDs[ta.ClusterID()], ta.cfg.NodeName)
		n := ta.Node()
		if n == nil {
			continue
		}
		v.running = append(v.running, ta.cfg.NodeName)
		if n.IsLeader() {
			v.leaders = append(v.leaders, ta)
			v.config = nil
			for _, s := range n.Status().Voters {
				if s.Suffrage == "Voter" {
					v.config = append(v.config, s.ID)
				}
			}
		}
	}
	return v
}

// settled says why the alive agents are not one cluster with one leader and
// want voters all running Raft, and the non-voters without Raft ("" when
// they are).
func settled(tas []*testAgent, want int) string {
	v := viewOf(tas)
	switch {
	case len(v.clusterIDs) != 1:
		return fmt.Sprintf("cluster ids %v", v.clusterIDs)
	case v.clusterIDs[""] != nil:
		return fmt.Sprintf("agents in no cluster: %v", v.clusterIDs[""])
	case len(v.leaders) != 1:
		return fmt.Sprintf("%d leaders", len(v.leaders))
	case len(v.config) != want:
		return fmt.Sprintf("voters %v, want %d", v.config, want)
	case len(v.running) != want || !sameSet(v.running, v.config):
		return fmt.Sprintf("agents running raft %v, want the %d voters %v", v.running, want, v.config)
	case len(v.leaders[0].Node().Status().Voters) != want:
		// A staged non-voter is still in the configuration.
		return fmt.Sprintf("configuration %v holds more than the %d voters", v.leaders[0].Node().Status().Voters, want)
	}
	// Every voter has caught up with the leader's configuration: a voter
	// added a moment ago with an empty log cannot help elect the next
	// leader if this one dies now. (Compared with what the leader's own
	// store applied, not its commit index: no-op and barrier entries
	// never reach a store, so a commit index ending on one is never
	// "applied".)
	lst := v.leaders[0].Node().Status()
	for _, ta := range alive(tas) {
		n := ta.Node()
		if n == nil {
			continue
		}
		if st := n.Status(); st.LeaderID != lst.ID || st.AppliedIndex < lst.AppliedIndex || !slices.Equal(st.Voters, lst.Voters) {
			return fmt.Sprintf("voter %s behind the leader: applied %d of %d, configuration %v, the leader's %v", ta.cfg.NodeName, st.AppliedIndex, lst.AppliedIndex, st.Voters, lst.Voters)
		}
	}
	return ""
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}

func leaderOf(tas []*testAgent) *testAgent {
	v := viewOf(tas)
	if len(v.leaders) != 1 {
		return nil
	}
	return v.leaders[0]
}

// client is an API client of ta as an admin (on a secure agent, with an
// admin API token).
func (ta *testAgent) client() *api.Client {
	if ta.ca == nil {
		return ta.apiClientFor(nil, "")
	}
	return ta.apiClientFor(ta.ca, ta.ca.token(ta.t, "admin"))
}

func configMap(name string) *api.ConfigMap {
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string]string{"k": name}}
	api.SetTypeMeta(cm)
	return cm
}

// nodeReady is the Ready condition's status on ta's Node, read through
// from's API.
func nodeReady(ctx context.Context, from *testAgent, name string) string {
	obj, err := from.client().Get(ctx, "Node", "", name)
	if err != nil {
		return "error: " + err.Error()
	}
	c := api.FindCondition(obj.(*api.Node).Status.Conditions, api.NodeReady)
	if c == nil {
		return "none"
	}
	return c.Status
}

// kill stops the agent at once as a crash would: no hand-over, no gossip
// leave. Run returns. Tests use it to fail agents.
func (a *Agent) kill() {
	a.mu.Lock()
	a.crashed = true
	a.mu.Unlock()
	if a.gossip != nil {
		a.gossip.Shutdown()
	}
	a.stopRaft()
	if a.ln != nil {
		a.ln.Close()
	}
	a.runCancel()
}
