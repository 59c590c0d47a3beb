package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/controllers"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Config is the configuration of one agent. Start from DefaultConfig or
// DevConfig; New calls Validate. Errors name the command-line flag.
type Config struct {
	// NodeName names this host in the cluster; it is also its Raft server
	// ID and its gossip name, so it must be unique (--node-name).
	NodeName string
	// DataDir holds the Raft log, stable store and snapshots (raft/) and
	// the cluster id (cluster-id) (--data-dir).
	DataDir string
	// HTTPAddr is where the API is served (--http-addr).
	HTTPAddr string
	// RaftAddr is where Raft listens while this agent is a voter
	// (--raft-addr). Port 0 picks a free port once, at New, and keeps it.
	RaftAddr string
	// GossipAddr is where gossip listens, UDP and TCP (--bind).
	GossipAddr string
	// Advertise is the IP the others use to reach this agent's gossip,
	// API and Raft when those bind to 0.0.0.0 (--advertise). Empty: the
	// bind address if it is specific, else the address gossip picks.
	Advertise string
	// NodeIP is the address this host's Node reports as InternalIP and
	// status.hostIP, and that other nodes route this node's pod CIDR via
	// (--node-ip). Empty: the API's advertised IP. Set it when pods are
	// reached over another network than the agents' own (tests that run
	// several hosts' pod networks in namespaces of one machine).
	NodeIP string
	// Join lists gossip addresses (host:port) of agents to join (--join).
	Join []string
	// Zone is this host's failure zone; voters are spread across zones
	// (--zone).
	Zone string
	// GossipKey encrypts gossip: 16, 24 or 32 bytes (--gossip-key, base64).
	GossipKey []byte
	// Labels go on this agent's Node object (--label k=v).
	Labels map[string]string

	// BootstrapExpect: wait until this many agents in no cluster are alive
	// in gossip; the lowest-named of them forms the cluster
	// (--bootstrap-expect). 0 means never bootstrap automatically: Raft
	// starts at once, empty, and waits to be added by hand
	// (`shoal raft add-voter`).
	BootstrapExpect int
	// Voters is the target number of Raft voters: odd, at least 1
	// (--voters). Capped by the number of alive agents.
	Voters int
	// Bootstrap makes this agent form a one-voter cluster at once if it has
	// no Raft state (--bootstrap); the voter manager then grows it.
	Bootstrap bool
	// Dev runs a single-node cluster: bootstrap at once, loopback.
	Dev bool

	// DeadGrace is how long a voter may be dead in gossip before the
	// leader replaces it. Stabilize is how long an agent must have been
	// alive before it is promoted. Interval is how often the bootstrap
	// decision, the voter manager and the readiness loop run without a
	// gossip event. LeaveTimeout bounds the hand-over on a graceful stop.
	// Zero means the default.
	DeadGrace    time.Duration
	Stabilize    time.Duration
	Interval     time.Duration
	LeaveTimeout time.Duration

	// Raft overrides the consensus settings; nil means consensus.DefaultConfig.
	Raft *consensus.Config
	// Gossip overrides the gossip timings; nil means gossip.DefaultConfig.
	// Its identity, addresses, Join, key and Logger are set from the fields
	// above.
	Gossip *gossip.Config
	// Version is advertised in gossip and served at /version.
	Version string
	// ClusterNet holds the address ranges and scheduling settings the
	// leader's controllers use; zero means controllers.DefaultClusterConfig.
	ClusterNet controllers.ClusterConfig
	// Host says whether and how this agent runs the pods bound to it.
	Host HostConfig
	// Pprof serves Go's profiler under /debug/pprof/ on the API address.
	Pprof bool
	// Logger receives the agent's logs.
	Logger *slog.Logger
}

// Defaults of the cluster settings.
const (
	DefaultBootstrapExpect = 3
	DefaultVoters          = 3
	DefaultDeadGrace       = 10 * time.Second
	DefaultStabilize       = 3 * time.Second
	DefaultInterval        = time.Second
	DefaultLeaveTimeout    = 15 * time.Second
	DefaultGossipPort      = 7946
)

// DefaultConfig returns the settings of a production agent on this host.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:        strings.ToLower(host),
		DataDir:         "/var/lib/shoal",
		HTTPAddr:        "0.0.0.0:7070",
		RaftAddr:        "0.0.0.0:7071",
		GossipAddr:      "0.0.0.0:" + strconv.Itoa(DefaultGossipPort),
		BootstrapExpect: DefaultBootstrapExpect,
		Voters:          DefaultVoters,
		DeadGrace:       DefaultDeadGrace,
		Stabilize:       DefaultStabilize,
		Interval:        DefaultInterval,
		LeaveTimeout:    DefaultLeaveTimeout,
	}
}

// DevConfig is a single-node agent on loopback, for trying Shoal out. It
// bootstraps at once (Dev), so BootstrapExpect is left at 0. Gossip binds a
// free loopback port; `shoal agent -dev` binds 127.0.0.1:7946.
func DevConfig() Config {
	c := DefaultConfig()
	c.Dev = true
	c.Bootstrap = true
	c.BootstrapExpect = 0
	c.HTTPAddr = "127.0.0.1:7070"
	c.RaftAddr = "127.0.0.1:7071"
	c.GossipAddr = "127.0.0.1:0"
	if c.NodeName == "" {
		c.NodeName = "dev"
	}
	return c
}

// Validate reports the first configuration error, naming the flag.
func (c Config) Validate() error {
	if c.NodeName == "" {
		return errors.New("node-name: must not be empty")
	}
	if len(c.NodeName) > 63 || !nodeNameRE.MatchString(c.NodeName) {
		return fmt.Errorf("node-name: %q must be a DNS-1123 label (lower case letters, digits, '-', at most 63 characters)", c.NodeName)
	}
	if c.DataDir == "" {
		return errors.New("data-dir: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("http-addr: %v", err)
	}
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("raft-addr: %v", err)
	}
	host, port, err := net.SplitHostPort(c.GossipAddr)
	if err != nil {
		return fmt.Errorf("bind: %v", err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("bind: %q is not an IP address", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bind: port %q: want 0-65535", port)
	}
	if c.Advertise != "" {
		ip := net.ParseIP(c.Advertise)
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("advertise: %q must be a specific IP address", c.Advertise)
		}
	}
	if c.NodeIP != "" {
		ip := net.ParseIP(c.NodeIP)
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("node-ip: %q must be a specific IP address", c.NodeIP)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join: %q: want host:port: %v", j, err)
		}
	}
	if c.GossipKey != nil {
		switch len(c.GossipKey) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("gossip-key: %d bytes; want 16, 24 or 32", len(c.GossipKey))
		}
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("bootstrap-expect: %d must not be negative", c.BootstrapExpect)
	}
	if c.Voters < 1 || c.Voters%2 == 0 {
		return fmt.Errorf("voters: %d must be odd and at least 1 (an even count adds a voter without surviving one more failure)", c.Voters)
	}
	for k, v := range c.Labels {
		if k == "" {
			return fmt.Errorf("label: empty key (value %q)", v)
		}
	}
	for name, d := range map[string]time.Duration{"DeadGrace": c.DeadGrace, "Stabilize": c.Stabilize,
		"Interval": c.Interval, "LeaveTimeout": c.LeaveTimeout} {
		if d < 0 {
			return fmt.Errorf("%s: %v must not be negative", name, d)
		}
	}
	return nil
}

var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// withDefaults fills zero durations.
func (c Config) withDefaults() Config {
	if c.DeadGrace == 0 {
		c.DeadGrace = DefaultDeadGrace
	}
	if c.Stabilize == 0 {
		c.Stabilize = DefaultStabilize
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = DefaultLeaveTimeout
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c
}

// Agent is one running `shoal agent`. It is a voter (it runs Raft and holds
// a replica of the store) or a non-voter (no Raft at all: its API requests
// are forwarded); see cluster.go for how it moves between the two.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	server *apiserver.Server
	http   *http.Server
	ln     net.Listener
	gossip *gossip.Gossip
	client *api.Client // to this agent's own API (forwarded as needed)
	host   hostState   // the node loop, once pods run here
	peers  *http.Client

	// raftAddr is the Raft listen address with its port resolved;
	// raftAdv what the others dial.
	raftAddr, raftAdv string
	apiAdv            string

	mu        sync.Mutex
	node      *consensus.Node // nil while a non-voter
	st        *store.Store
	role      string // gossip.RoleNone, RoleVoter, RoleNonvoter
	clusterID string
	inConfig  bool // this voter has seen itself in the Raft configuration

	roleReq   chan roleRequest
	kicks     kickers
	leader    leaderCache
	runCtx    context.Context
	runCancel context.CancelFunc
	wg        sync.WaitGroup
	crashed   bool
	fatal     error
	shutOnce  sync.Once
	shutErr   error
}

// New builds an agent: its store, API server and, if it is a voter already
// (Raft state on disk, --bootstrap, -dev, or --bootstrap-expect 0), its Raft
// node. Start serves; Run starts gossip and the loops.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", cfg.NodeName)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	raftAddr, err := resolvePort(cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("raft-addr: %w", err)
	}
	cid, err := readClusterID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:       cfg,
		log:       log,
		raftAddr:  raftAddr,
		st:        store.New(store.DefaultConfig()),
		clusterID: cid,
		roleReq:   make(chan roleRequest),
		kicks:     newKickers(),
		peers:     &http.Client{Timeout: 30 * time.Second},
	}
	a.runCtx, a.runCancel = context.WithCancel(context.Background())
	a.raftAdv = a.advertised(raftAddr, "")
	hasState, err := consensus.HasState(a.raftDir())
	if err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	bootstrap := (cfg.Bootstrap || cfg.Dev) && !hasState
	if hasState || bootstrap || cfg.BootstrapExpect == 0 {
		if bootstrap && a.clusterID == "" {
			if err := a.setClusterID(newClusterID()); err != nil {
				return nil, err
			}
		}
		if err := a.startRaft(bootstrap); err != nil {
			return nil, err
		}
		if bootstrap {
			log.Info("bootstrapped a new cluster", "cluster", a.clusterID)
		}
	}
	a.server, err = apiserver.NewServer(apiserver.ServerConfig{
		Backend: roleBackend{a},
		Reader:  roleReader{a},
		Clock:   time.Now,
		Status:  a.statusView,
		Voters:  roleVoters{a},
		Members: a.membersView,
		Version: cfg.Version,
		Logger:  log,
	})
	if err != nil {
		a.stopRaft()
		return nil, err
	}
	return a, nil
}

// Node is the agent's Raft node, nil while the agent is not a voter.
func (a *Agent) Node() *consensus.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.node
}

// Store is the agent's local replica of the store (empty on a non-voter).
func (a *Agent) Store() *store.Store {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st
}

// Role is the agent's current role: "voter", "nonvoter" or "" (in no
// cluster yet).
func (a *Agent) Role() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.role
}

// ClusterID is the id of the cluster this agent belongs to, "" before it
// joins or forms one.
func (a *Agent) ClusterID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.clusterID
}

// Name is the agent's node name.
func (a *Agent) Name() string { return a.cfg.NodeName }

// Addr is the address the API listens on, once Start has returned.
func (a *Agent) Addr() string {
	if a.ln == nil {
		return a.cfg.HTTPAddr
	}
	return a.ln.Addr().String()
}

// GossipAddr is the host:port others join, once Start has returned.
func (a *Agent) GossipAddr() string {
	if a.gossip == nil {
		return a.cfg.GossipAddr
	}
	return a.gossip.Local().Address()
}

// Gossip is the agent's membership, once Start has returned.
func (a *Agent) Gossip() *gossip.Gossip { return a.gossip }

// Start listens on the API address, starts gossip (without joining yet) and
// serves in the background.
func (a *Agent) Start() error {
	if a.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		a.stopRaft()
		return fmt.Errorf("http-addr: %w", err)
	}
	a.ln = ln
	a.apiAdv = a.advertised(ln.Addr().String(), "")
	if err := a.startGossip(); err != nil {
		ln.Close()
		a.stopRaft()
		return err
	}
	a.client = api.NewClient("http://"+ln.Addr().String(), api.WithRequestTimeout(10*time.Second))
	handler := a.handler()
	if a.cfg.Pprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/", handler)
		handler = mux
	}
	// No ReadTimeout: net/http cancels a request's context when the
	// connection's read deadline passes, which would cut watch streams (and
	// forwarded ones) after that long. Bodies are bounded in size instead.
	a.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	// Open watch streams end on shutdown instead of holding it for its timeout.
	a.http.RegisterOnShutdown(a.server.Close)
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("api server stopped", "err", err)
		}
	}()
	a.log.Info("agent started", "api", a.apiAdv, "raft", a.raftAdv, "gossip", a.GossipAddr(),
		"role", roleName(a.Role()), "cluster", a.ClusterID())
	return nil
}

// Run starts the agent (unless Start was called already), joins gossip and
// runs the loops until ctx ends. It then hands this agent's duties over
// (leadership, voter seat, gossip membership; see leave) and shuts down.
// It returns early with the error when joining fails for good (a node name
// clash, a wrong gossip key).
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, a.runCancel)
	defer stop()
	rctx := a.runCtx
	// Before roleLoop starts: from then on it alone starts Raft nodes and
	// their leadership watchers.
	if n := a.Node(); n != nil {
		a.watchLeadership(n)
	}
	a.goLoop(func() { a.pumpEvents(rctx) })
	a.goLoop(func() { a.joinLoop(rctx) })
	a.goLoop(func() { a.roleLoop(rctx) })
	a.goLoop(func() { a.registerLoop(rctx) })
	a.goLoop(func() { a.trackLeader(rctx) })
	if a.cfg.Host.Enabled {
		a.goLoop(func() { a.runHost(rctx) })
	}
	<-rctx.Done()
	a.mu.Lock()
	graceful := !a.crashed && a.fatal == nil
	fatal := a.fatal
	a.mu.Unlock()
	if graceful {
		a.leave()
	}
	a.wg.Wait()
	err := a.Shutdown()
	if fatal != nil {
		return fatal
	}
	return err
}

// goLoop runs f as one of the agent's loops, waited for on shutdown.
func (a *Agent) goLoop(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// Kill stops the agent at once as a crash would: no hand-over, no gossip
// leave. Run returns. Tests use it to fail agents.
func (a *Agent) Kill() {
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

// Shutdown stops the API server, gossip and the Raft node. It does not hand
// anything over (Run does that first); it is idempotent.
func (a *Agent) Shutdown() error {
	a.shutOnce.Do(func() {
		a.runCancel()
		var errs []error
		if a.http != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := a.http.Shutdown(sctx); err != nil {
				errs = append(errs, err)
			}
		}
		if a.gossip != nil {
			a.gossip.Shutdown()
		}
		if err := a.stopRaft(); err != nil && !errors.Is(err, consensus.ErrShutdown) {
			errs = append(errs, err)
		}
		a.wg.Wait()
		a.shutErr = errors.Join(errs...)
	})
	return a.shutErr
}

// watchLeadership runs leader-only work whenever n holds leadership (STYLE
// item 8): one goroutine per Raft node watches leadership changes and starts
// or stops the work. It ends when n shuts down (demotion, stop).
func (a *Agent) watchLeadership(n *consensus.Node) {
	leaderCh := n.LeaderCh() // one subscription, current state first
	a.goLoop(func() {
		var stop context.CancelFunc
		var done chan struct{}
		halt := func() {
			if stop != nil {
				stop()
				<-done
				stop, done = nil, nil
			}
		}
		defer halt()
		for {
			select {
			case <-a.runCtx.Done():
				return
			case isLeader, ok := <-leaderCh:
				if !ok {
					return
				}
				switch {
				case isLeader && stop == nil:
					lctx, cancel := context.WithCancel(a.runCtx)
					stop, done = cancel, make(chan struct{})
					a.log.Info("leadership acquired: starting leader work")
					go func() {
						defer close(done)
						a.leaderWork(lctx, n)
					}()
				case !isLeader && stop != nil:
					a.log.Info("leadership lost: stopping leader work")
					halt()
				}
			}
		}
	})
}

// leaderWork is what the leader does while in office: make sure the
// built-in namespaces exist, manage the voters, derive node readiness from
// gossip, and run the controllers (scheduler, workloads, endpoints, address
// allocation, garbage collection, node loss).
func (a *Agent) leaderWork(ctx context.Context, n *consensus.Node) {
	// Raft announces leadership before the new leader has applied what the
	// old one committed; decisions made from a store that lags would be
	// wrong (a ReplicaSet short of pods it already has). Wait until the
	// store has caught up, as Nomad's establishLeadership does.
	for {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.ReadBarrier(bctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("leader: waiting for the store to catch up", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.voterManager(ctx, n) }()
	go func() { defer wg.Done(); a.readinessLoop(ctx, n) }()
	go func() {
		defer wg.Done()
		cc := controllers.DefaultLoopConfig()
		cc.Logger = a.log.With("loop", "controllers")
		controllers.Run(ctx, n.Store(), n, cc, controllers.Set(a.cfg.clusterNet()))
	}()
	for _, ns := range []string{"default", "shoal-system"} {
		for ctx.Err() == nil {
			err := a.ensureNamespace(ctx, n, ns)
			if err == nil {
				break
			}
			a.log.Warn("creating namespace", "namespace", ns, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	wg.Wait()
}

func (a *Agent) ensureNamespace(ctx context.Context, n *consensus.Node, name string) error {
	if _, err := n.Store().Get(store.Key{Kind: "Namespace", Name: name}); err == nil {
		return nil
	}
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{
		Name:              name,
		UID:               api.NewUID(),
		CreationTimestamp: api.NewTime(time.Now()),
	}, Status: api.NamespaceStatus{Phase: "Active"}}
	api.SetTypeMeta(ns)
	res, err := n.Propose(ctx, []store.Op{{Type: store.OpCreate, Object: ns}})
	if err != nil {
		return err
	}
	if err := res[0].Err; err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return err
	}
	return nil
}

func (c Config) clusterNet() controllers.ClusterConfig {
	if c.ClusterNet.ClusterCIDR == "" {
		return controllers.DefaultClusterConfig()
	}
	return c.ClusterNet
}
