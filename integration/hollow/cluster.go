package hollow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/agent/controllers"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/pki"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Limits of a hollow cluster.
const (
	MaxNodes = 5000 // hollow nodes in one process
	// ClusterCIDR leaves room for 16,384 /24 pod subnets; it stays clear
	// of the default service range 10.96.0.0/16.
	ClusterCIDR = "10.128.0.0/10"
)

// Options configure a Cluster.
type Options struct {
	Dir        string        // data directories go below (required)
	StartDelay time.Duration // a hollow container's start → Running
	// Gossip is the memberlist timing of every agent; zero means
	// gossip.DefaultConfig (production LAN timings).
	Gossip gossip.Config
	// NodeLossGrace: how long a dead node's pods wait before they move;
	// 0 means the default.
	NodeLossGrace time.Duration
	Logs          io.Writer // agents' logs at Warn; nil discards them
	// RaftTimeout, when set, is the voters' Raft heartbeat and election
	// timeout (leader lease: half); 0 keeps consensus.DefaultConfig's.
	RaftTimeout time.Duration
}

// Cluster is three real voters and any number of hollow nodes.
type Cluster struct {
	opts   Options
	ca     *pki.CA
	admin  string // API token of role admin
	mu     sync.Mutex
	voters []*Member
	nodes  []*Member
}

// Member is one running agent.
type Member struct {
	Agent  *agent.Agent
	cancel context.CancelFunc
	done   chan error
	killed atomic.Bool // crashed: read by the benchmark's waits while Close crashes
}

// New makes the CA of a cluster.
func New(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("hollow: Options.Dir: must not be empty")
	}
	if opts.StartDelay < 0 {
		return nil, fmt.Errorf("hollow: Options.StartDelay: %v must not be negative", opts.StartDelay)
	}
	if opts.Gossip.ProbeInterval == 0 {
		opts.Gossip = gossip.DefaultConfig()
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	now := time.Now()
	ca, err := pki.NewCA("hollow", now)
	if err != nil {
		return nil, err
	}
	tok, err := ca.SignToken(pki.Claims{ID: "hollow-admin", Name: "hollow-admin", Role: pki.TokenRoleAdmin,
		IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	return &Cluster{opts: opts, ca: ca, admin: tok}, nil
}

// holder issues a certificate of role for node, signed by the cluster CA.
func (c *Cluster) holder(node string, role pki.Role) (*pki.Holder, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	certPEM, err := c.ca.Issue(pki.NodeRequest{Node: node, Role: role, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		PublicKey: key.Public()}, time.Now(), 24*time.Hour)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.MarshalKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return pki.NewHolder(c.ca.CertPEM, certPEM, keyPEM)
}

func (c *Cluster) config(name string, role pki.Role) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	cfg.NodeName = name
	cfg.DataDir = filepath.Join(c.opts.Dir, name)
	cfg.HTTPAddr, cfg.GossipAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Version = "hollow"
	rc := consensus.DefaultConfig()
	// One process carries every agent: on a loaded machine it is starved
	// for seconds at a time, and production's one-second Raft timeouts
	// then elect leader after leader. RaftTimeout widens them.
	if c.opts.RaftTimeout > 0 {
		rc.HeartbeatTimeout, rc.ElectionTimeout = c.opts.RaftTimeout, c.opts.RaftTimeout
		rc.LeaderLeaseTimeout = c.opts.RaftTimeout / 2
	}
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: c.opts.Logs})
	gc := c.opts.Gossip
	cfg.Raft, cfg.Gossip = &rc, &gc
	cfg.ClusterNet = controllers.DefaultClusterConfig()
	cfg.ClusterNet.ClusterCIDR = ClusterCIDR
	if c.opts.NodeLossGrace > 0 {
		cfg.ClusterNet.NodeLossGrace = c.opts.NodeLossGrace
	}
	cfg.Logger = slog.New(slog.NewTextHandler(c.opts.Logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := c.holder(name, role)
	if err != nil {
		return cfg, err
	}
	cfg.TLS = h
	return cfg, nil
}

// StartVoters starts the three voters and waits until they form a cluster
// with a leader that answers, or ctx ends.
func (c *Cluster) StartVoters(ctx context.Context) error {
	var cfgs []agent.Config
	var gossipAddrs []string
	for i := range 3 {
		cfg, err := c.config(fmt.Sprintf("voter-%d", i), pki.RoleVoter)
		if err != nil {
			return err
		}
		cfg.Zone = fmt.Sprintf("z%d", i)
		var ports [3]int
		for k := range ports {
			if ports[k], err = freePort(); err != nil {
				return err
			}
		}
		cfg.HTTPAddr, cfg.RaftAddr, cfg.GossipAddr = loopback(ports[0]), loopback(ports[1]), loopback(ports[2])
		gossipAddrs = append(gossipAddrs, cfg.GossipAddr)
		cfgs = append(cfgs, cfg)
	}
	for i := range cfgs {
		for j, g := range gossipAddrs {
			if i != j {
				cfgs[i].Join = append(cfgs[i].Join, g)
			}
		}
	}
	for _, cfg := range cfgs {
		m, err := c.run(cfg)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.voters = append(c.voters, m)
		c.mu.Unlock()
	}
	// All three seated before any hollow node starts: the voter manager
	// promotes the second and third voter over the API, and under the
	// load of a hundred agents starting those calls timed out for
	// minutes, leaving one voter to carry everything.
	return waitUntil(ctx, 120*time.Second, "a leader with three voters seated", func() bool {
		l := c.Leader()
		if l == nil {
			return false
		}
		voters := 0
		for _, s := range l.Node().Status().Voters {
			if s.Suffrage == "Voter" {
				voters++
			}
		}
		_, _, err := l.Store().List("Node", "", store.Selector{})
		return err == nil && voters == 3
	})
}

// run builds and runs one agent.
func (c *Cluster) run(cfg agent.Config) (*Member, error) {
	a, err := agent.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.NodeName, err)
	}
	if err := a.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.NodeName, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Member{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- a.Run(ctx) }()
	return m, nil
}

// Leader is the voter whose Raft node leads, or nil.
func (c *Cluster) Leader() *agent.Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.voters {
		if n := m.Agent.Node(); n != nil && !m.killed.Load() && n.IsLeader() {
			return m.Agent
		}
	}
	return nil
}

// LeaderAsks is how many requests the hollow nodes have sent to the
// voters to learn who leads (agent.Agent.LeaderAsks).
func (c *Cluster) LeaderAsks() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, m := range c.nodes {
		n += m.Agent.LeaderAsks()
	}
	return n
}

// freshest is the running voter whose store has the highest revision (the
// leader's, or a follower's when leadership is changing), or nil.
func (c *Cluster) freshest() *store.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *store.Store
	for _, m := range c.voters {
		if m.killed.Load() {
			continue
		}
		if st := m.Agent.Store(); st != nil && (best == nil || st.Revision() > best.Revision()) {
			best = st
		}
	}
	return best
}

// AddNodes starts n hollow nodes (parallel at most par at a time) joined
// to the voters. They are named hollow-00000 upwards.
func (c *Cluster) AddNodes(n, par int) error {
	c.mu.Lock()
	first := len(c.nodes)
	var join []string
	for _, v := range c.voters {
		join = append(join, v.Agent.GossipAddr())
	}
	c.mu.Unlock()
	if first+n > MaxNodes {
		return fmt.Errorf("hollow: %d nodes: at most %d", first+n, MaxNodes)
	}
	if par < 1 {
		par = 1
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := first; i < first+n; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cfg, err := c.config(fmt.Sprintf("hollow-%05d", i), pki.RoleWorker)
			if err == nil {
				cfg.Zone = fmt.Sprintf("z%d", i%3)
				cfg.Join = join
				cfg.Host = agent.HostConfig{Enabled: true, Fake: &agent.FakeHost{
					Runtime: NewRuntime(c.opts.StartDelay), Network: NewNetwork(), Volumes: NewVolumes()}}
				var m *Member
				m, err = c.run(cfg)
				if err == nil {
					c.mu.Lock()
					c.nodes = append(c.nodes, m)
					c.mu.Unlock()
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Nodes are the hollow nodes started so far.
func (c *Cluster) Nodes() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.nodes...)
}

// Client is an admin API client of the leader (any voter when none).
func (c *Cluster) Client() (*api.Client, error) {
	a := c.Leader()
	if a == nil {
		c.mu.Lock()
		a = c.voters[0].Agent
		c.mu.Unlock()
	}
	tlsCfg, err := api.TLSConfigFromCA(c.ca.CertPEM)
	if err != nil {
		return nil, err
	}
	return api.NewClient("https://"+a.Addr(), api.WithTLSConfig(tlsCfg), api.WithBearerToken(c.admin),
		api.WithRequestTimeout(30*time.Second)), nil
}

// Crash stops m as a crash would: gossip goes silent without leaving,
// then the agent's loops end.
func (m *Member) Crash() {
	m.killed.Store(true)
	if g := m.Agent.Gossip(); g != nil {
		g.Shutdown()
	}
	m.cancel()
}

// all is a snapshot of every member, hollow nodes then voters, crashed ones
// included.
func (c *Cluster) all() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(append([]*Member(nil), c.nodes...), c.voters...)
}

// Close stops every agent and waits (bounded) for each.
func (c *Cluster) Close() {
	all := c.all()
	// In parallel: one memberlist shutdown waits for its listeners, which
	// on a starved machine took seconds each, minutes for a hundred.
	var wg sync.WaitGroup
	for _, m := range all {
		if !m.killed.Load() {
			wg.Go(m.Crash)
		}
	}
	wg.Wait()
	deadline := time.After(60 * time.Second)
	for _, m := range all {
		select {
		case <-m.done:
		case <-deadline:
			return
		}
	}
}

// waitUntil polls cond every 50ms until it holds, d passes or ctx ends.
func waitUntil(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("hollow: waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Ports freePort hands out: from portLow up, leaving out the kernel's
// ephemeral range. (agent's test harness takes [10000, 20000).)
const portLow = 20000

// handed are the ports freePort gave out in this process: a voter's Raft
// port stays unbound until the voter is promoted, so a later probe would
// find it free and could hand it out again.
var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

// freePort is a loopback port free for TCP and UDP, never handed out before
// in this process, and outside the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a voter binds its Raft port only when it
// is promoted, seconds after the probe, and meanwhile a port of that range
// can become the local port of any process's outgoing connection. Raft's
// listener then fails with "address already in use" for as long as that
// connection lives and its TIME_WAIT (60 s) after, and StartVoters' wait
// for three seated voters took a minute longer, or timed out.
func freePort() (int, error) {
	ports := portsOutsideEphemeral()
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 200 {
		p := ports.pick(rand.IntN(ports.size()))
		if handed[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		handed[p] = true
		return p, nil
	}
	return 0, errors.New("hollow: no free port")
}

// portSet is [portLow, 65536) less [ephLow, ephHigh].
type portSet struct{ ephLow, ephHigh int }

func (s portSet) size() int { return 65536 - portLow - (s.ephHigh - s.ephLow + 1) }

// pick is the i-th port of s, 0 <= i < size.
func (s portSet) pick(i int) int {
	if p := portLow + i; p < s.ephLow {
		return p
	}
	return portLow + i + (s.ephHigh - s.ephLow + 1)
}

// portsOutsideEphemeral reads the ephemeral range (Linux's default when it
// cannot); with fewer than 1,000 ports left outside it, it takes every port
// from portLow up.
func portsOutsideEphemeral() portSet {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l <= h {
				lo, hi = l, h
			}
		}
	}
	lo, hi = max(lo, portLow), min(hi, 65535)
	s := portSet{ephLow: lo, ephHigh: hi}
	if lo > hi || s.size() < 1000 {
		return portSet{ephLow: 65536, ephHigh: 65535} // nothing left out
	}
	return s
}
