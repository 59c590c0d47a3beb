package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/controllers"
	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/agent/internal/events"
	"github.com/shoal-dev/shoal/agent/internal/metrics"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/pki"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Agent is one running `shoal agent`. It is a voter (it runs Raft and holds
// a replica of the store) or a non-voter (no Raft at all: its API requests
// are forwarded); see cluster.go for how it moves between the two.
type Agent struct {
	// epochScanned is the gossip table version and cluster ID adoptEpoch
	// last scanned with (roleLoop's alone): no change, no scan.
	epochScanned struct {
		version uint64
		own     string
	}
	cfg    Config
	log    *slog.Logger
	server *apiserver.Server
	http   *http.Server
	ln     net.Listener
	gossip *gossip.Gossip
	client *api.Client // to this agent's own API (forwarded as needed)
	// apiStopping is closed when the API server shuts down (ends the
	// streams of forwarded writes, apiserver.ForwarderConfig.Done).
	apiStopping <-chan struct{}
	host        hostState // the node loop, once pods run here
	peers       *http.Client
	// tls is the source of every TLS configuration; nil in insecure mode
	// (plain http everywhere). peerTr carries every request to an agent.
	tls    TLSSource
	peerTr *http.Transport
	// selfTr serves client's requests (this agent's own) to its API in the
	// process.
	selfTr *selfTransport
	// apiConns tracks the API listener's connections.
	apiConns *newConns
	// gossipKey encrypts gossip: Config.GossipKey, else the identity's
	// primary at start (gossipKeys then follows rotations).
	gossipKey []byte
	// gossipKeys are the identity's gossip keys, primary (gossipKey)
	// first, under mu; nil when gossipKey is not the identity's (then
	// rotations pass this agent by). See identity_gossip.go.
	gossipKeys [][]byte
	// kek opens the CA key in the cluster record (voters only).
	kek []byte
	// pendingRecord is the cluster record a bootstrap made, until the
	// leader (this agent) has written it into the store.
	pendingRecord *identity.Record
	// idServer serves the join, renewal and token endpoints.
	idServer *identity.Server
	revoked  revocations // nodes whose certificates this voter refuses

	// raftAddr is the Raft listen address with its port resolved;
	// raftAdv what the others dial.
	raftAddr, raftAdv string
	apiAdv            string

	// events records this agent's Events (node loop, and the scheduler,
	// controllers and voter manager while it leads) through its API.
	events *events.Recorder

	mu        sync.Mutex
	node      *consensus.Node // nil while a non-voter
	st        *store.Store
	role      string // gossip.RoleNone, RoleVoter, RoleNonvoter
	clusterID string
	inConfig  bool // this voter has seen itself in the Raft configuration
	// leaderTerm is the Raft term in which this agent leads, 0 when it
	// does not; gossip advertises it (Meta.LeaderTerm).
	leaderTerm uint64

	roleReq chan roleRequest
	kicks   kickers
	leader  leaderCache
	// gossipLead caches gossipLeader's scan of the voters.
	gossipLead gossipLeaderCache
	runCtx     context.Context
	runCancel  context.CancelFunc
	wg         sync.WaitGroup
	crashed    bool
	fatal      error
	stale      error // gossip showed this voter's data predates a recovery
	shutOnce   sync.Once
	shutErr    error

	// metrics is the agent's Prometheus registry, served at /metrics.
	metrics *metrics.Metrics

	// wrapAPI, if set before Start, wraps everything the agent serves
	// over HTTP. Tests set it (to make an agent stop answering as a
	// paused process does); production leaves it nil.
	wrapAPI func(http.Handler) http.Handler
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
	}
	a.runCtx, a.runCancel = context.WithCancel(context.Background())
	a.metrics = a.newMetrics()
	a.raftAdv = a.advertised(raftAddr, "")
	hasState, err := consensus.HasState(a.raftDir())
	if err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	bootstrap := (cfg.Bootstrap || cfg.Dev) && !hasState
	if bootstrap && a.clusterID != "" {
		// A non-voter (or a demoted voter) of that cluster: a new Raft
		// cluster under its id would be a second cluster that gossip
		// cannot tell apart from the first (issue 9, defect 10).
		return nil, fmt.Errorf("--bootstrap: the data dir belongs to cluster %s (DATA_DIR/%s) but holds no Raft state; bootstrapping would form a second cluster under its id: start without --bootstrap to rejoin it, or with an empty --data-dir to form a new cluster", a.clusterID, clusterIDFile)
	}
	newCID := ""
	if bootstrap && a.clusterID == "" {
		newCID = newClusterID()
	}
	if !bootstrap && !hasState && !cfg.Insecure && cfg.TLS == nil && cfg.Token != "" && !identityOnDisk(cfg.DataDir) {
		// A bootstrap token: find the other initial agents first.
		if tok, err := pki.ParseJoinToken(cfg.Token); err == nil && tok.Bootstrap() {
			if newCID, err = a.bootstrapWithToken(tok); err != nil {
				return nil, err
			}
			bootstrap = newCID != ""
		}
	}
	if err := a.setupTLS(bootstrap, hasState, newCID); err != nil {
		return nil, err
	}
	if hasState || bootstrap || cfg.BootstrapExpect == 0 {
		if newCID != "" {
			if err := a.setClusterID(newCID); err != nil {
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
		Clock:   a.cfg.Clock.Now,
		Status:  a.statusView,
		Voters:  roleVoters{a},
		Members: a.membersView,
		Version: cfg.Version,
		Logger:  log,
		// The rules on workloads of this cluster (apiserver/policy.go).
		HostPathAllow: cfg.HostPathAllow,
		ClusterCIDR:   cfg.clusterNet().ClusterCIDR,
	})
	if err != nil {
		a.stopRaft()
		return nil, err
	}
	if a.tls != nil {
		if a.idServer, err = a.newIdentityServer(); err != nil {
			a.stopRaft()
			return nil, err
		}
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
	if a.tls != nil {
		// Client certificates are optional: a CLI presents a bearer
		// token instead. One that is presented must chain to the CA.
		ln = tls.NewListener(ln, a.tls.ServerConfig(false))
	}
	a.ln = ln
	a.apiAdv = a.advertised(ln.Addr().String(), "")
	if err := a.startGossip(); err != nil {
		ln.Close()
		a.stopRaft()
		return err
	}
	// The agent's own requests to its API are served in the process
	// (selfapi.go).
	a.selfTr = newSelfTransport(ln.Addr().String(), a.peerTr, a.tls, a.log)
	a.client = a.apiClientVia(a.selfTr, ln.Addr().String(), 10*time.Second)
	a.events = a.newRecorder(apiEvents{a.client})
	stopping := make(chan struct{})
	a.apiStopping = stopping
	handler := a.handler()
	if a.cfg.Pprof {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/", handler)
		handler = mux
	}
	// Everything, pprof included (admin only), behind authentication;
	// every request counted, refusals included.
	handler = a.metrics.API.Instrument(a.withAuth(handler))
	if a.wrapAPI != nil {
		handler = a.wrapAPI(handler)
	}
	a.selfTr.serve(handler)
	// No ReadTimeout: net/http cancels a request's context when the
	// connection's read deadline passes, which would cut watch streams (and
	// forwarded ones) after that long. Bodies are bounded in size instead.
	fresh := &newConns{}
	a.apiConns = fresh
	a.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ConnState: fresh.track, ErrorLog: newServerLog(a.log)}
	// Open watch streams end on shutdown instead of holding it for its
	// timeout, and so do connections that never sent a request.
	a.http.RegisterOnShutdown(a.server.Close)
	a.http.RegisterOnShutdown(fresh.closeAll)
	a.http.RegisterOnShutdown(sync.OnceFunc(func() { close(stopping) }))
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
	a.goLoop(func() { a.metaLoop(rctx) })
	a.goLoop(func() { a.joinLoop(rctx) })
	a.goLoop(func() { a.roleLoop(rctx) })
	a.goLoop(func() { a.registerLoop(rctx) })
	a.goLoop(func() { a.trackLeader(rctx) })
	a.goLoop(func() { a.events.Run(rctx) })
	if a.cfg.Host.Enabled {
		a.goLoop(func() { a.runHost(rctx) })
	}
	if h, ok := a.tls.(*pki.Holder); ok {
		a.goLoop(func() { a.runRenewer(rctx, h) })
		a.goLoop(func() { a.watchRevocations(rctx) })
		a.goLoop(func() { a.runGossipKeys(rctx) })
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

// Shutdown stops the API server, gossip and the Raft node. It does not hand
// anything over (Run does that first); it is idempotent.
func (a *Agent) Shutdown() error {
	a.shutOnce.Do(func() {
		a.runCancel()
		if a.selfTr != nil {
			a.selfTr.close()
		}
		var errs []error
		if a.http != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := a.http.Shutdown(sctx); err != nil {
				// Requests still running past the grace period are cut
				// rather than left to outlive the agent.
				a.http.Close()
				errs = append(errs, fmt.Errorf("api server: graceful stop: %w", err))
			}
		}
		if a.gossip != nil {
			a.gossip.Shutdown()
		}
		if err := a.stopRaft(); err != nil && !errors.Is(err, consensus.ErrShutdown) {
			errs = append(errs, err)
		}
		a.wg.Wait()
		a.peerTr.CloseIdleConnections()
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
		defer a.advertiseLeadership(0)
		for {
			select {
			case <-a.runCtx.Done():
				return
			case isLeader, ok := <-leaderCh:
				if !ok {
					return
				}
				var term uint64
				if isLeader {
					// Read after the news: a leader that stepped down
					// meanwhile (a higher term seen) must not advertise
					// the new term; its false follows.
					term = n.Term()
					if id, _ := n.Leader(); !n.IsLeader() || id != a.cfg.NodeName {
						term = 0
					}
				}
				a.advertiseLeadership(term)
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
		cc.Logger, cc.Metrics = a.log.With("loop", "controllers"), a.metrics.Controllers
		cc.Events = a.events
		cn := a.cfg.clusterNet()
		cn.Metrics = a.metrics.Scheduler
		controllers.Run(ctx, n.Store(), urgentProposer{n}, cc, controllers.Set(cn))
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
	// After the namespaces: on a new cluster, LeaderElected recorded
	// before "default" existed was refused (404) and lost.
	if ctx.Err() == nil {
		a.leaderEvents(ctx, n)
	}
	a.writePendingRecord(ctx, n)
	wg.Wait()
}

func (a *Agent) ensureNamespace(ctx context.Context, n *consensus.Node, name string) error {
	if _, err := n.Store().Get(store.Key{Kind: "Namespace", Name: name}); err == nil {
		return nil
	}
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{
		Name:              name,
		UID:               api.NewUID(),
		CreationTimestamp: api.NewTime(a.cfg.Clock.Now()),
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
