package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/clock"
	"github.com/shoal-dev/shoal/agent/internal/events"
	"github.com/shoal-dev/shoal/agent/internal/metrics"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// Controller is one of the leader's control loops, in the one shape every
// loop has (STYLE 6): events from the store mark keys dirty; each dirty key
// is reconciled once per batch by a pure decision from placement; the plans
// of a batch go through Raft together.
type Controller struct {
	// Name appears in logs.
	Name string
	// Keys maps a store event to the keys it makes dirty (a Pod event marks
	// its owning ReplicaSet, say). Nil keys: the event does not concern it.
	Keys func(ev store.Event, v *View) []string
	// All lists every key, for the first pass and the periodic resync.
	All func(v *View) []string
	// Reconcile decides for one key from the store as it is (read-only
	// objects) at now.
	Reconcile func(key string, v *View, now time.Time) placement.Plan
	// Amend, if set, may change the merged plan of a batch once every
	// controller has decided, before it is proposed (the scheduler binds
	// the pods the plan creates); it returns what it did, for the log.
	Amend func(plan *placement.Plan, v *View, now time.Time) []string
}

// Proposer sends store operations through Raft: on the leader, the Raft
// node.
type Proposer interface {
	Propose(ctx context.Context, ops []store.Op) ([]store.Result, error)
}

// QueuedProposer is a Proposer that can also queue ops and give their
// results later: proposals queued one after another apply in that order.
// applyPlan uses it, when the Proposer has it, to have every entry of a
// large plan in flight at once instead of one round trip through Raft
// each.
type QueuedProposer interface {
	Proposer
	ProposeQueued(ctx context.Context, ops []store.Op) (wait func() ([]store.Result, error), err error)
}

// LoopConfig tunes the loop.
type LoopConfig struct {
	// Resync re-reconciles every key this often, for decisions that depend
	// on time passing (minReadySeconds, progress deadlines, node loss).
	Resync time.Duration
	// Settle is how long the loop keeps gathering events after the first
	// one before reconciling, so that a burst is handled as one batch.
	Settle time.Duration
	// Clock gives now; nil means the wall clock.
	Clock clock.Clock
	// Logger receives the loop's logs.
	Logger *slog.Logger
	// Events records the scheduler's and controllers' Events; nil
	// records none.
	Events *events.Recorder
	// Metrics, if set, records queue depths and reconcile latencies.
	Metrics *metrics.Controllers
	// WatchBuffer is how many events the loop's watch holds while the
	// loop decides and its plan goes through Raft (it reads none
	// meanwhile); 0 means DefaultLoopWatchBuffer. A watch that falls
	// further behind is closed and the loop rebuilds its whole view.
	WatchBuffer int
}

// DefaultLoopWatchBuffer: a plan of a ReplicaSet's burst (10,000 pods)
// makes 10,000 events before the loop reads again, with the nodes' status
// writes on top; the store's default per-watch buffer (1,024) closed the
// loop's watch after every large scale-up. 65,536 events cost about 4 MiB
// on the leader.
const DefaultLoopWatchBuffer = 1 << 16

// DefaultLoopConfig returns production settings.
func DefaultLoopConfig() LoopConfig {
	return LoopConfig{Resync: 5 * time.Second, Settle: 10 * time.Millisecond}
}

// loop is one run of the controllers: the view they read, the keys each
// has left to reconcile, and where plans go.
type loop struct {
	cfg   LoopConfig
	st    *store.Store
	p     Proposer
	log   *slog.Logger
	ctrls []Controller
	view  *View
	dirty []map[string]bool
	// later holds, per controller, keys whose last decision asked to be
	// made again at a time (placement.Plan.RequeueAfter).
	later []map[string]time.Time
	// seen is the revision of the last event the view observed (or the
	// revision the watch started after); wrote is the store's revision
	// once the last plan applied. No decision is made while seen < wrote:
	// a ReplicaSet that decided before the view had filed the pods it had
	// just created would count too few and create them again.
	seen, wrote int64
}

// Run runs the controllers until ctx ends (the leader loop cancels it when
// leadership is lost). Writes go through p, which on a leader is the Raft
// node.
func Run(ctx context.Context, st *store.Store, p Proposer, cfg LoopConfig, ctrls []Controller) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	l := &loop{cfg: cfg, st: st, p: p, log: cfg.Logger, ctrls: ctrls, view: NewView(st),
		dirty: make([]map[string]bool, len(ctrls)), later: make([]map[string]time.Time, len(ctrls))}
	for i := range l.later {
		l.later[i] = map[string]time.Time{}
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	resync := time.NewTicker(cfg.Resync)
	defer resync.Stop()
	for ctx.Err() == nil {
		// Subscribe first, then list: nothing that happens in between is
		// missed (the watch starts at the revision the pass reads).
		rev := st.Revision()
		w, err := st.WatchBuffered("", "", rev, store.Selector{}, cmp.Or(cfg.WatchBuffer, DefaultLoopWatchBuffer))
		if err != nil {
			l.log.Error("controllers: watch", "err", err)
			if !clock.Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		l.seen = rev
		l.markAll()
		err = l.pass(ctx, w, resync.C)
		w.Stop()
		if err != nil && ctx.Err() == nil {
			l.log.Warn("controllers: restarting the watch", "err", err)
		}
	}
}

// markAll rebuilds the view and marks every key of every controller.
func (l *loop) markAll() {
	l.view.Rebuild()
	for i, c := range l.ctrls {
		l.dirty[i] = map[string]bool{}
		for _, k := range c.All(l.view) {
			l.dirty[i][k] = true
		}
	}
}

// mark files one event in the view and marks the keys it concerns.
func (l *loop) mark(ev store.Event) {
	l.seen = max(l.seen, ev.Revision)
	l.view.Observe(ev)
	for i, c := range l.ctrls {
		for _, k := range c.Keys(ev, l.view) {
			l.dirty[i][k] = true
		}
	}
}

// watchEnded is the error of a watch whose channel closed.
func watchEnded(w *store.Watcher) error {
	if err := w.Err(); err != nil {
		return err
	}
	return errors.New("watch closed")
}

// Waits between attempts to propose a plan that failed (no leader, a
// proposal that timed out): the keys stay dirty and are decided again.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// pass reconciles and then waits for events, until the watch ends. A plan
// that could not be proposed is decided again after a back-off, its keys
// kept dirty, without waiting for the next resync.
func (l *loop) pass(ctx context.Context, w *store.Watcher, resync <-chan time.Time) error {
	backoff := retryMin
	var retryTimer *time.Timer
	stopRetry := func() {
		if retryTimer != nil {
			retryTimer.Stop()
			retryTimer = nil
		}
	}
	defer stopRetry()
	var wakeTimer *time.Timer
	defer func() {
		if wakeTimer != nil {
			wakeTimer.Stop()
		}
	}()
	for {
		stopRetry()
		if err := l.catchUp(ctx, w); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var retry <-chan time.Time
		if err := l.reconcileDirty(ctx); err != nil {
			retryTimer = time.NewTimer(backoff)
			retry = retryTimer.C
			backoff = min(2*backoff, retryMax)
		} else {
			backoff = retryMin
		}
		if wakeTimer != nil {
			wakeTimer.Stop()
		}
		var wake <-chan time.Time
		if at, ok := l.nextLater(); ok {
			wakeTimer = time.NewTimer(max(at.Sub(l.cfg.Clock.Now()), 0))
			wake = wakeTimer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			continue
		case <-wake:
			l.markDue()
			continue
		case <-resync:
			l.markAll()
			continue
		case ev, ok := <-w.Events():
			if !ok {
				return watchEnded(w)
			}
			l.mark(ev)
		}
		// Gather the rest of a burst before deciding.
		settle := time.NewTimer(l.cfg.Settle)
	gather:
		for {
			select {
			case ev, ok := <-w.Events():
				if !ok {
					settle.Stop()
					return watchEnded(w)
				}
				l.mark(ev)
			case <-settle.C:
				break gather
			case <-ctx.Done():
				settle.Stop()
				return nil
			}
		}
	}
}

// catchUpTimeout bounds how long the loop waits for its watch to deliver
// the events of its own last plan; past it the watch is started again (and
// the view rebuilt from the store).
const catchUpTimeout = 30 * time.Second

// catchUp files every event up to the revision the last plan left the store
// at, so that the next decision reads a view that holds the loop's own
// writes (read your writes; Kubernetes' controllers keep "expectations"
// for the same reason). Every change is an event of the loop's watch (all
// kinds, no selector), so the wait ends as soon as the watch has delivered
// them; they are already in its channel when Propose returns.
func (l *loop) catchUp(ctx context.Context, w *store.Watcher) error {
	if l.seen >= l.wrote {
		return nil
	}
	deadline := time.NewTimer(catchUpTimeout)
	defer deadline.Stop()
	for l.seen < l.wrote {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return watchEnded(w)
			}
			l.mark(ev)
		case <-deadline.C:
			return fmt.Errorf("controllers: the watch did not reach revision %d (at %d) within %v", l.wrote, l.seen, catchUpTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// nextLater is the earliest time a decision asked to be made again.
func (l *loop) nextLater() (time.Time, bool) {
	var at time.Time
	for _, m := range l.later {
		for _, t := range m {
			if at.IsZero() || t.Before(at) {
				at = t
			}
		}
	}
	return at, !at.IsZero()
}

// markDue marks dirty the keys whose asked-for time has come.
func (l *loop) markDue() {
	now := l.cfg.Clock.Now()
	for i, m := range l.later {
		for k, t := range m {
			if !t.After(now) {
				l.dirty[i][k] = true
				delete(m, k)
			}
		}
	}
}

// reconcileDirty decides every dirty key once and proposes the merged
// plan. The keys are cleared only when the plan went through (changes
// refused one by one count as through: the next decision sees why); when
// it could not be proposed they stay dirty and the error is returned.
func (l *loop) reconcileDirty(ctx context.Context) error {
	now := l.cfg.Clock.Now()
	var plan placement.Plan
	for i, c := range l.ctrls {
		keys := make([]string, 0, len(l.dirty[i]))
		for k := range l.dirty[i] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		l.cfg.Metrics.Queue(c.Name, len(keys))
		obs := l.cfg.Metrics.Reconciler(c.Name)
		for _, k := range keys {
			start := time.Now() // for metrics; the decision takes now
			p := c.Reconcile(k, l.view, now)
			if obs != nil {
				obs.Observe(time.Since(start).Seconds())
			}
			for _, e := range p.Events {
				l.log.Info(c.Name+": "+e, "key", k)
			}
			if p.RequeueAfter > 0 {
				l.later[i][k] = now.Add(p.RequeueAfter)
			} else {
				delete(l.later[i], k)
			}
			plan.Merge(p)
		}
	}
	for _, c := range l.ctrls {
		if c.Amend == nil || plan.Empty() {
			continue
		}
		for _, e := range c.Amend(&plan, l.view, now) {
			l.log.Info(c.Name+": "+e, "key", allKey)
		}
	}
	if !plan.Empty() {
		olds := planOlds(plan, l.view.Get) // the view reads the live store: before the plan
		res, err := applyPlan(ctx, l.p, plan, now, func(r placement.Ref) api.Object { return l.view.Get(r.Kind, r.Namespace, r.Name) })
		// Every entry proposed has its answer: what of the plan applied
		// is in the store (all of it or, after a failed entry, what
		// the other entries carried).
		l.wrote = l.st.Revision()
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("controllers: applying a plan failed; deciding again after a back-off", "err", err)
			}
			return err
		}
		if res.FirstErr != nil {
			l.log.Warn("controllers: some changes were refused", "failed", res.Failed, "first", res.FirstErr)
		}
		if l.cfg.Events != nil {
			emitNotes(l.cfg.Events, planNotes(plan, olds), res.Refused)
		}
	}
	for i := range l.dirty {
		clear(l.dirty[i])
	}
	return nil
}
