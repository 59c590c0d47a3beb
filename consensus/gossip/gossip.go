package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Gossip is one agent's membership: its memberlist instance, its metadata and
// its member table. All methods are safe for concurrent use.
type Gossip struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	ml  *memberlist.Memberlist
	// keyring is memberlist's (nil without encryption); keyMu serialises
	// SetKeys.
	keyring *memberlist.Keyring
	keyMu   sync.Mutex

	// updateMu serialises the operations that change this node's
	// metadata or lifecycle (UpdateMeta, Leave, Shutdown), so that their
	// broadcasts go out in order and Leave never races Shutdown.
	updateMu sync.Mutex
	left     bool // under updateMu

	// metaMu guards the local metadata, which memberlist reads through
	// NodeMeta from its own goroutines.
	metaMu  sync.Mutex
	meta    Meta
	metaBuf []byte

	// mu guards the member table and everything memberlist's callbacks
	// touch. It is only ever held briefly: callbacks must not block.
	mu             sync.Mutex
	table          *table
	events         chan Event
	closed         bool                 // events is closed
	mergeClash     *NameClashError      // found by NotifyMerge during our Join
	mergeRefused   *ClusterRefusedError // found by NotifyMerge during our Join
	conflictLogged map[string]time.Time // rate limit of NotifyConflict logs

	joining atomic.Int32 // >0 while Join is talking to a seed
	dropped atomic.Uint64
	shut    atomic.Bool
	once    sync.Once
}

// conflictLogEvery limits how often one name conflict is logged: memberlist
// reports it on every gossip message about the contested member.
const conflictLogEvery = time.Minute

// New validates cfg and meta, starts memberlist (listening on
// BindAddr:BindPort unless cfg.Transport is set) and returns a Gossip that
// knows only itself. Call Join to meet the others and Shutdown to stop.
func New(cfg Config, meta Meta) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	meta.Leaving = false
	buf, err := encodeMeta(meta)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gossip{
		cfg:            cfg,
		log:            cfg.Logger.With("node", cfg.NodeName),
		now:            cfg.Now,
		meta:           meta,
		metaBuf:        buf,
		table:          newTable(cfg.DeadRetention),
		events:         make(chan Event, cfg.EventBuffer),
		conflictLogged: map[string]time.Time{},
	}
	mc := cfg.memberlistConfig()
	g.keyring = mc.Keyring
	h := &hooks{g: g}
	mc.Delegate = h
	mc.Events = h
	mc.Conflict = h
	mc.Merge = h
	mc.Logger = newMemberlistLogger(g.log)
	var own *Transport
	if cfg.Transport == nil {
		if own, err = NewTransport(cfg.BindAddr, cfg.BindPort, g.log); err != nil {
			return nil, fmt.Errorf("gossip: start: %w", err)
		}
		mc.Transport = own
		mc.BindPort = own.Port()
		if cfg.AdvertisePort == 0 {
			mc.AdvertisePort = own.Port()
		}
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if own != nil {
			own.Shutdown()
			return nil, fmt.Errorf("gossip: start on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
		}
		return nil, fmt.Errorf("gossip: start: %w", err)
	}
	g.ml = ml
	return g, nil
}

// Join contacts every address in Config.Join and succeeds as soon as one
// attempt reached at least one of them; memberlist then learns the rest of
// the cluster from it. Until then it retries with exponential back-off
// (JoinRetryMin doubling up to JoinRetryMax), logging each failed attempt,
// and gives up with ctx's error when ctx ends. With no addresses it returns
// nil at once: this is the first node.
//
// Three failures end Join at once, because retrying cannot fix them: a
// *NameClashError when an alive member already uses this node's name at
// another address (nothing is merged, the existing member keeps its name),
// a *ClusterRefusedError when Config.CheckCluster refuses the cluster id a
// member advertises, and ErrGossipKey when the seeds answer but the exchange fails the way a
// differing gossip key makes it fail.
//
// An attempt in flight when ctx ends is abandoned, not interrupted: it may
// still complete within Config.StreamTimeout per address. The caller
// normally calls Shutdown after a failed Join.
func (g *Gossip) Join(ctx context.Context) error {
	addrs := g.cfg.Join
	if len(addrs) == 0 {
		return nil
	}
	delay := g.cfg.JoinRetryMin
	for attempt := 1; ; attempt++ {
		if g.shut.Load() {
			return ErrShutdown
		}
		err := g.joinOnce(ctx)
		if err == nil {
			g.log.Info("join: joined the cluster", "via", joinAddrString(addrs), "attempt", attempt)
			return nil
		}
		var clash *NameClashError
		var refused *ClusterRefusedError
		if errors.As(err, &clash) || errors.As(err, &refused) || errors.Is(err, ErrGossipKey) {
			g.log.Error(err.Error())
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("join: gave up after %d attempts: %w (last error: %v)", attempt, ctx.Err(), err)
		}
		g.log.Warn(fmt.Sprintf("join: no member answered at %s (attempt %d, next in %v): %v",
			joinAddrString(addrs), attempt, delay, err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("join: gave up after %d attempts: %w (last error: %v)", attempt, ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, g.cfg.JoinRetryMax)
	}
}

// Reconnect joins again, every Config.ReconnectInterval until ctx ends, the
// last known address of one member this agent sees dead or departed (at
// random, and only with the chance departed/alive: see reconnectAddrs),
// together with the Config.Join addresses at which it knows no member. A push/pull with a member that believes this one dead makes
// it refute the rumour and spread that it is alive, so the two views merge
// within a few gossip rounds after a partition heals. Members are tried
// until they are alive again or DeadRetention forgets them.
func (g *Gossip) Reconnect(ctx context.Context) {
	if g.cfg.ReconnectInterval <= 0 {
		return
	}
	t := time.NewTicker(g.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if g.shut.Load() {
			return
		}
		addrs := g.reconnectAddrs()
		if len(addrs) == 0 {
			continue
		}
		n, err := g.ml.Join(addrs)
		if err != nil && n == 0 {
			g.log.Debug("reconnect: no answer", "tried", strings.Join(addrs, ","), "err", flatten(err))
		} else if n > 0 {
			g.log.Debug("reconnect: exchanged state", "tried", strings.Join(addrs, ","), "answered", n)
		}
	}
}

// reconnectAddrs lists what Reconnect tries this round. It reads the
// table's indexes of departed members and of addresses, not the whole
// table: every agent runs it every round, and a walk over a thousand
// members (with an address string and a map entry for each) was a
// twentieth of the CPU of a thousand agents in one process.
func (g *Gossip) reconnectAddrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.table
	t.prune(g.now()) // none is left past its retention
	// One of the departed a round, and only with the chance
	// departed/alive (as Serf reconnects): every agent reconnects, so the
	// cluster as a whole tries each departed member about once a round.
	// A healed partition is found by the first agent to reach the other
	// side (the state exchange then spreads the rest); trying every
	// departed member on every agent every round made a large cluster
	// that lost many hosts, or whose members were wrongly declared dead
	// while starved, spend most of its CPU on full state exchanges.
	var out []string
	departed := len(t.departed)
	if _, ok := t.departed[g.cfg.NodeName]; ok {
		departed-- // this agent, seen dead by others and told of it
	}
	alive := len(t.members) - len(t.departed)
	if departed > 0 && rand.Float64() < float64(departed)/float64(max(alive, 1)) {
		pick := rand.IntN(departed)
		for name := range t.departed {
			if name == g.cfg.NodeName {
				continue
			}
			if pick == 0 {
				out = append(out, t.members[name].Address())
				break
			}
			pick--
		}
	}
	// Then the --join addresses of no known member, even with everyone
	// alive: an agent that met only other new agents must still reach the
	// member it was told to join (issue 9, defect 10). A --join given as
	// a host name never matches a member's address, so it is tried every
	// round: one push/pull with a member that is there anyway.
	for _, a := range g.cfg.Join {
		if t.addrs[a] == 0 {
			out = append(out, a)
		}
	}
	return out
}

// joinOnce makes one attempt over all addresses, abandoning it when ctx
// ends (memberlist's Join takes no context).
func (g *Gossip) joinOnce(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- g.tryAddrs() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gossip) tryAddrs() error {
	g.joining.Add(1)
	defer g.joining.Add(-1)
	var errs []error
	var lastRefused *ClusterRefusedError
	joined, keyErrs := 0, 0
	for _, addr := range g.cfg.Join {
		g.mu.Lock()
		g.mergeClash, g.mergeRefused = nil, nil
		g.mu.Unlock()

		_, err := g.ml.Join([]string{addr})

		g.mu.Lock()
		clash, refused := g.mergeClash, g.mergeRefused
		g.mergeClash, g.mergeRefused = nil, nil
		g.mu.Unlock()
		switch {
		case clash != nil:
			return clash
		case refused != nil:
			// Another address may lead to members we can merge with.
			lastRefused = refused
		case err == nil:
			joined++
		case looksLikeKeyMismatch(err):
			keyErrs++
			errs = append(errs, fmt.Errorf("%s answered but the exchange failed (%v): %w", addr, flatten(err), ErrGossipKey))
		default:
			errs = append(errs, fmt.Errorf("%s: %v", addr, flatten(err)))
		}
	}
	if joined > 0 {
		return nil
	}
	if lastRefused != nil {
		return lastRefused
	}
	if keyErrs == len(g.cfg.Join) {
		return fmt.Errorf("join: %w", errors.Join(errs...))
	}
	return errors.Join(errs...)
}

// looksLikeKeyMismatch recognises, in memberlist's error text (it does not
// wrap its errors), the ways a join fails when the two sides do not share a
// gossip key: the answer cannot be decrypted, or one side encrypts and the
// other does not; the remote side then sends these messages back as its
// error response, which arrives encrypted with its key or in the clear.
func looksLikeKeyMismatch(err error) bool {
	s := strings.ToLower(err.Error())
	for _, sign := range []string{
		"no installed keys could decrypt",
		"encryption is not configured",
		"remote state is not encrypted",
		"encryption is configured but",
		"message authentication failed",
	} {
		if strings.Contains(s, sign) {
			return true
		}
	}
	return false
}

// flatten turns memberlist's multi-line multierror text into one line.
func flatten(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return strings.TrimPrefix(s, "1 error occurred: * ")
}

// Members returns a copy of this agent's member table sorted by name,
// including itself and the members it has seen die or leave (with Since,
// until Config.DeadRetention has passed). A member that comes back is Alive
// again.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.table.list(g.now())
}

// Member is the table's entry for name, without copying the whole table
// as Members does: a lookup per request stays cheap in a large cluster.
// A member dead or departed for longer than the retention is not found.
func (g *Gossip) Member(name string) (Member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.table.get(name)
	if ok && g.table.expired(m, g.now()) {
		return Member{}, false
	}
	return m, ok
}

// Each calls fn with every member of the table, in no particular order,
// until fn returns false: a scan without Members' sorted copy, for paths
// that run per request. fn runs under the table's lock and must not call
// the Gossip.
func (g *Gossip) Each(fn func(Member) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, m := range g.table.members {
		if !g.table.expired(m, now) && !fn(m) {
			return
		}
	}
}

// EachVoter is Each over the members whose metadata says RoleVoter, in
// no particular order: a handful, however large the cluster.
func (g *Gossip) EachVoter(fn func(Member) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for name := range g.table.voters {
		if m := g.table.members[name]; !g.table.expired(m, now) && !fn(m) {
			return
		}
	}
}

// EachClusterID calls fn with every cluster id that alive members with
// readable metadata advertise and how many advertise it, in no particular
// order, until fn returns false: one id, or a few while a recovered
// cluster's new epoch spreads, however large the cluster.
func (g *Gossip) EachClusterID(fn func(id string, members int) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, n := range g.table.clusters {
		if !fn(id, n) {
			return
		}
	}
}

// Version counts the changes to the member table (joins, updates,
// departures, members forgotten): a caller that scans the table can skip
// the scan while it has not moved.
func (g *Gossip) Version() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.table.prune(g.now())
	return g.table.version
}

// Local returns this agent's own entry.
func (g *Gossip) Local() Member {
	g.mu.Lock()
	m, ok := g.table.get(g.cfg.NodeName)
	g.mu.Unlock()
	if !ok { // pruned long after Leave
		g.metaMu.Lock()
		m = Member{Name: g.cfg.NodeName, Meta: g.meta, State: Left}
		g.metaMu.Unlock()
	}
	return m
}

// Events delivers changes to the member table, including this agent's own
// join at start. It is buffered (Config.EventBuffer); when it is full,
// events are dropped and counted by Dropped, and the member table stays
// correct, so a slow reader should re-read Members. It is closed by
// Shutdown.
func (g *Gossip) Events() <-chan Event { return g.events }

// Dropped counts the events dropped because Events was full.
func (g *Gossip) Dropped() uint64 { return g.dropped.Load() }

// UpdateMeta changes this agent's metadata with update, which must not call
// back into g, and gossips the result. An invalid result is refused with an
// error naming the field, and nothing changes. Leaving is kept as Leave set
// it. When memberlist does not confirm the broadcast within
// Config.BroadcastTimeout the error wraps ErrBroadcastTimeout, but the change
// is made and keeps spreading.
func (g *Gossip) UpdateMeta(update func(*Meta)) error {
	if g.shut.Load() {
		return ErrShutdown
	}
	g.updateMu.Lock()
	defer g.updateMu.Unlock()
	if g.shut.Load() {
		return ErrShutdown
	}
	if g.left {
		return fmt.Errorf("update meta: %w", ErrLeft)
	}
	g.metaMu.Lock()
	m := g.meta
	update(&m)
	m.Leaving = g.meta.Leaving
	if m.Leaving {
		m.LeaderTerm = 0 // a leaving agent no longer draws requests
	}
	buf, err := encodeMeta(m)
	if err == nil {
		g.meta, g.metaBuf = m, buf
	}
	g.metaMu.Unlock()
	if err != nil {
		return fmt.Errorf("update meta: %w", err)
	}
	// memberlist drops an update whose incarnation a concurrent refutation
	// overtook (an agent restarted under its old name refutes the cluster's
	// memory of it while it also updates its metadata): the refutation
	// spreads the old metadata at the higher incarnation, and the update is
	// ignored for good. So check that the local node now carries the new
	// metadata, and update again (at a newer incarnation) when it does not.
	// (The dropped update never broadcasts, so UpdateNode then also
	// reports a broadcast timeout.)
	for attempt := 1; ; attempt++ {
		err := g.ml.UpdateNode(g.cfg.BroadcastTimeout)
		if err != nil && !strings.Contains(err.Error(), "timeout") {
			return fmt.Errorf("update meta: %w", err)
		}
		if g.localMetaIs(m) || attempt == maxMetaUpdates {
			if err != nil {
				return fmt.Errorf("update meta: %w after %v", ErrBroadcastTimeout, g.cfg.BroadcastTimeout)
			}
			return nil
		}
	}
}

// maxMetaUpdates bounds UpdateMeta's retries of an overtaken update.
const maxMetaUpdates = 5

// localMetaIs reports whether memberlist's state of this node, as the
// table saw it through its events, carries m.
func (g *Gossip) localMetaIs(m Meta) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	self, ok := g.table.get(g.cfg.NodeName)
	return ok && self.Meta == m
}

// AnnounceLeaving gossips Meta.Leaving without leaving yet: the agent is
// about to give up its roles, and the others must not hand it new ones
// (the voter manager must not promote it back) while it does. It waits at
// most timeout for the broadcast; Leave follows.
func (g *Gossip) AnnounceLeaving(timeout time.Duration) error {
	g.updateMu.Lock()
	defer g.updateMu.Unlock()
	if g.shut.Load() {
		return ErrShutdown
	}
	if g.left {
		return nil
	}
	if err := g.setLeaving(); err != nil {
		return fmt.Errorf("announce leaving: %w", err)
	}
	if err := g.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("announce leaving: %w", err)
	}
	return nil
}

// setLeaving marks the local metadata Leaving; memberlist gossips it with
// the next UpdateNode. The caller holds updateMu.
func (g *Gossip) setLeaving() error {
	g.metaMu.Lock()
	defer g.metaMu.Unlock()
	m := g.meta
	m.Leaving, m.LeaderTerm = true, 0
	buf, err := encodeMeta(m)
	if err != nil {
		return err
	}
	g.meta, g.metaBuf = m, buf
	return nil
}

// Leave tells the cluster this agent is going, so the others record it as
// Left rather than Dead, and waits at most timeout for the news to go out.
// It first gossips Meta.Leaving (half of timeout at most), then memberlist's
// leave message. Call Shutdown afterwards. Calling Leave again does nothing.
func (g *Gossip) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("leave: timeout %v must be positive", timeout)
	}
	g.updateMu.Lock()
	defer g.updateMu.Unlock()
	if g.shut.Load() {
		return ErrShutdown
	}
	if g.left {
		return nil
	}
	deadline := time.Now().Add(timeout)
	if err := g.setLeaving(); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	if err := g.ml.UpdateNode(timeout / 2); err != nil {
		g.log.Warn("leave: the leaving notice was not confirmed in time; some members may record this node as dead rather than left", "err", err)
	}
	g.left = true
	if err := g.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip at once, without telling anyone (see Leave), and
// closes Events. It is idempotent.
func (g *Gossip) Shutdown() error {
	var err error
	g.once.Do(func() {
		g.updateMu.Lock()
		defer g.updateMu.Unlock()
		g.shut.Store(true)
		err = g.ml.Shutdown()
		g.mu.Lock()
		g.closed = true
		close(g.events)
		g.mu.Unlock()
	})
	return err
}
