package agent

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

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
}

// ControllerConfig tunes the loop.
type ControllerConfig struct {
	// Resync re-reconciles every key this often, for decisions that depend
	// on time passing (minReadySeconds, progress deadlines, node loss).
	Resync time.Duration
	// Settle is how long the loop keeps gathering events after the first
	// one before reconciling, so that a burst is handled as one batch.
	Settle time.Duration
	// Clock gives now; nil means time.Now.
	Clock func() time.Time
	// Logger receives the loop's logs.
	Logger *slog.Logger
}

// DefaultControllerConfig returns production settings.
func DefaultControllerConfig() ControllerConfig {
	return ControllerConfig{Resync: 5 * time.Second, Settle: 10 * time.Millisecond}
}

// runControllers runs the controllers until ctx ends (the leader loop cancels
// it when leadership is lost). Writes go through b, which on a leader is the
// Raft node.
func runControllers(ctx context.Context, st *store.Store, b Backend, cfg ControllerConfig, ctrls []Controller) {
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	view := NewView(st)
	dirty := make([]map[string]bool, len(ctrls))
	markAll := func() {
		view.Rebuild()
		for i, c := range ctrls {
			dirty[i] = map[string]bool{}
			for _, k := range c.All(view) {
				dirty[i][k] = true
			}
		}
	}
	resync := time.NewTicker(cfg.Resync)
	defer resync.Stop()
	for ctx.Err() == nil {
		// Subscribe first, then list: nothing that happens in between is
		// missed (the watch starts at the revision the pass reads).
		w, err := st.Watch("", "", st.Revision(), store.Selector{})
		if err != nil {
			log.Error("controllers: watch", "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		markAll()
		err = controllerPass(ctx, w, view, b, cfg, clock, log, ctrls, dirty, markAll, resync.C)
		w.Stop()
		if err != nil && ctx.Err() == nil {
			log.Warn("controllers: restarting the watch", "err", err)
		}
	}
}

// controllerPass reconciles and then waits for events, until the watch ends.
func controllerPass(ctx context.Context, w *store.Watcher, view *View, b Backend, cfg ControllerConfig,
	clock func() time.Time, log *slog.Logger, ctrls []Controller, dirty []map[string]bool, markAll func(), resync <-chan time.Time) error {
	mark := func(ev store.Event) {
		view.Observe(ev)
		for i, c := range ctrls {
			for _, k := range c.Keys(ev, view) {
				dirty[i][k] = true
			}
		}
	}
	for {
		reconcileDirty(ctx, view, b, clock, log, ctrls, dirty)
		select {
		case <-ctx.Done():
			return nil
		case <-resync:
			markAll()
			continue
		case ev, ok := <-w.Events():
			if !ok {
				if err := w.Err(); err != nil {
					return err
				}
				return errors.New("watch closed")
			}
			mark(ev)
		}
		// Gather the rest of a burst before deciding.
		settle := time.NewTimer(cfg.Settle)
	gather:
		for {
			select {
			case ev, ok := <-w.Events():
				if !ok {
					settle.Stop()
					if err := w.Err(); err != nil {
						return err
					}
					return errors.New("watch closed")
				}
				mark(ev)
			case <-settle.C:
				break gather
			case <-ctx.Done():
				settle.Stop()
				return nil
			}
		}
	}
}

func reconcileDirty(ctx context.Context, view *View, b Backend, clock func() time.Time, log *slog.Logger, ctrls []Controller, dirty []map[string]bool) {
	now := clock()
	var plan placement.Plan
	for i, c := range ctrls {
		keys := make([]string, 0, len(dirty[i]))
		for k := range dirty[i] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := c.Reconcile(k, view, now)
			for _, e := range p.Events {
				log.Info(c.Name+": "+e, "key", k)
			}
			plan.Merge(p)
		}
		clear(dirty[i])
	}
	if plan.Empty() {
		return
	}
	res, err := applyPlan(ctx, b, plan, now)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("controllers: applying a plan", "err", err)
	case res.FirstErr != nil:
		log.Warn("controllers: some changes were refused", "failed", res.Failed, "first", res.FirstErr)
	}
}
