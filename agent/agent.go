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
	"path/filepath"
	"regexp"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Config is the configuration of one agent.
type Config struct {
	// NodeName names this host in the cluster; it is also its Raft server ID.
	NodeName string
	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string
	// HTTPAddr is where the API is served.
	HTTPAddr string
	// RaftAddr is the Raft TCP address.
	RaftAddr string
	// Bootstrap makes this agent form a one-voter cluster if it has no state.
	Bootstrap bool
	// Dev runs a single-node cluster: bootstrap, loopback addresses.
	Dev bool
	// Raft overrides the consensus settings; zero means consensus.DefaultConfig.
	Raft *consensus.Config
	// Pprof serves Go's profiler under /debug/pprof/ on the API address.
	Pprof bool
	// Logger receives the agent's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the settings of a production agent on this host.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName: host,
		DataDir:  "/var/lib/shoal",
		HTTPAddr: "0.0.0.0:7070",
		RaftAddr: "0.0.0.0:7071",
	}
}

// DevConfig is a single-node agent on loopback, for trying Shoal out.
func DevConfig() Config {
	c := DefaultConfig()
	c.Dev = true
	c.Bootstrap = true
	c.HTTPAddr = "127.0.0.1:7070"
	c.RaftAddr = "127.0.0.1:7071"
	if c.NodeName == "" {
		c.NodeName = "dev"
	}
	return c
}

// Validate reports the first configuration error, naming the field.
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
	return nil
}

var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Agent is one running `shoal agent`.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	store  *store.Store
	node   *consensus.Node
	server *Server
	http   *http.Server
	ln     net.Listener
}

// New builds an agent: its store, Raft node and API server. Start serves.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	rc := consensus.DefaultConfig()
	if cfg.Raft != nil {
		rc = *cfg.Raft
	}
	rc.ID = cfg.NodeName
	rc.DataDir = filepath.Join(cfg.DataDir, "raft")
	rc.BindAddr = cfg.RaftAddr
	rc.Bootstrap = cfg.Bootstrap || cfg.Dev
	st := store.New(store.DefaultConfig())
	node, err := consensus.NewNode(rc, st)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	a := &Agent{cfg: cfg, log: log, store: st, node: node}
	a.server, err = NewServer(ServerConfig{
		Backend: node,
		Reader:  st,
		Clock:   time.Now,
		Status:  func() any { return node.Status() },
		Voters:  node,
		Logger:  log,
	})
	if err != nil {
		node.Shutdown()
		return nil, err
	}
	return a, nil
}

// Node is the agent's Raft node.
func (a *Agent) Node() *consensus.Node { return a.node }

// Store is the agent's local replica of the store.
func (a *Agent) Store() *store.Store { return a.store }

// Addr is the address the API listens on, once Start has returned.
func (a *Agent) Addr() string {
	if a.ln == nil {
		return a.cfg.HTTPAddr
	}
	return a.ln.Addr().String()
}

// Start listens on the API address and serves in the background.
func (a *Agent) Start() error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http-addr: %w", err)
	}
	a.ln = ln
	handler := a.server.Handler()
	if a.cfg.Pprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/", handler)
		handler = mux
	}
	a.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	// Open watch streams end on shutdown instead of holding it for its timeout.
	a.http.RegisterOnShutdown(a.server.Close)
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("api server stopped", "err", err)
		}
	}()
	a.log.Info("agent started", "node", a.cfg.NodeName, "api", ln.Addr().String(), "raft", a.cfg.RaftAddr)
	return nil
}

// Run starts the agent (unless Start was called already) and the leader loop, and blocks until ctx ends; it
// then stops serving and shuts Raft down.
func (a *Agent) Run(ctx context.Context) error {
	if a.ln == nil {
		if err := a.Start(); err != nil {
			a.node.Shutdown()
			return err
		}
	}
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		a.leaderLoop(ctx)
	}()
	<-ctx.Done()
	<-leaderDone
	return a.Shutdown()
}

// Shutdown stops the API server and the Raft node.
func (a *Agent) Shutdown() error {
	var errs []error
	if a.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.http.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := a.node.Shutdown(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// leaderLoop runs leader-only work whenever this agent holds leadership
// (STYLE item 8): one goroutine watches leadership changes and starts or
// stops the work.
func (a *Agent) leaderLoop(ctx context.Context) {
	var stop context.CancelFunc
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	// One subscription for the agent's lifetime: it delivers the current
	// state first, then every change, and is closed when Raft shuts down.
	leaderCh := a.node.LeaderCh()
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader, ok := <-leaderCh:
			if !ok {
				return
			}
			switch {
			case isLeader && stop == nil:
				lctx, cancel := context.WithCancel(ctx)
				stop = cancel
				go a.leaderWork(lctx)
			case !isLeader && stop != nil:
				stop()
				stop = nil
			}
		}
	}
}

// leaderWork is what the leader does on taking office: make sure the
// built-in namespaces exist. Controllers join here in later issues.
func (a *Agent) leaderWork(ctx context.Context) {
	for _, ns := range []string{"default", "shoal-system"} {
		for ctx.Err() == nil {
			err := a.ensureNamespace(ctx, ns)
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
}

func (a *Agent) ensureNamespace(ctx context.Context, name string) error {
	if _, err := a.store.Get(store.Key{Kind: "Namespace", Name: name}); err == nil {
		return nil
	}
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{
		Name:              name,
		UID:               NewUID(),
		CreationTimestamp: api.NewTime(time.Now()),
	}, Status: api.NamespaceStatus{Phase: "Active"}}
	api.SetTypeMeta(ns)
	res, err := a.node.Propose(ctx, []store.Op{{Type: store.OpCreate, Object: ns}})
	if err != nil {
		return err
	}
	if err := res[0].Err; err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return err
	}
	return nil
}
