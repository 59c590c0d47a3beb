package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/events"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/consensus/voters"
)

// Components named as the source of the agent's own Events.
const (
	componentKubelet      = "kubelet"
	componentVoterManager = "shoal-voter-manager"
)

// newRecorder makes an Event recorder that writes through w.
func (a *Agent) newRecorder(w events.Writer) *events.Recorder {
	cfg := events.DefaultConfig()
	cfg.Host, cfg.Writer, cfg.Clock = a.cfg.NodeName, w, a.cfg.Clock
	cfg.Logger = a.log.With("loop", "events")
	r, err := events.New(cfg)
	if err != nil {
		panic(fmt.Sprintf("agent: events config: %v", err)) // the defaults are valid
	}
	return r
}

// storeEvents writes Events straight through Raft: the leader's recorder,
// whose scheduler and controllers speak of objects on every node (an
// agent certificate may only write Events about its own node).
type storeEvents struct {
	n   *consensus.Node
	now func() time.Time
}

func (s storeEvents) CreateEvent(ctx context.Context, e *api.Event) (*api.Event, error) {
	api.SetDefaults(e)
	if errs := api.Validate(e); len(errs) > 0 {
		return nil, errs
	}
	api.PrepareCreate(e, s.now(), api.NewUID())
	return s.propose(ctx, store.Op{Type: store.OpCreate, Object: e})
}

func (s storeEvents) UpdateEvent(ctx context.Context, e *api.Event) (*api.Event, error) {
	api.SetTypeMeta(e)
	if errs := api.Validate(e); len(errs) > 0 {
		return nil, errs
	}
	return s.propose(ctx, store.Op{Type: store.OpUpdate, Object: e})
}

func (s storeEvents) GetEvent(_ context.Context, ns, name string) (*api.Event, error) {
	obj, err := s.n.Store().Get(store.Key{Kind: "Event", Namespace: ns, Name: name})
	if err != nil {
		return nil, storeErr(err)
	}
	return obj.(*api.Event), nil
}

func (s storeEvents) propose(ctx context.Context, op store.Op) (*api.Event, error) {
	res, err := s.n.Propose(ctx, []store.Op{op})
	if err != nil {
		return nil, err
	}
	if res[0].Err != nil {
		return nil, storeErr(res[0].Err)
	}
	return res[0].Object.(*api.Event), nil
}

// ListEvents and DeleteEvents serve the collector.
func (s storeEvents) ListEvents() ([]*api.Event, error) {
	objs, _, err := s.n.Store().List("Event", "", store.Selector{})
	if err != nil {
		return nil, err
	}
	out := make([]*api.Event, len(objs))
	for i, o := range objs {
		out[i] = o.(*api.Event)
	}
	return out, nil
}

func (s storeEvents) DeleteEvents(ctx context.Context, evs []*api.Event) (int, error) {
	ops := make([]store.Op, 0, len(evs))
	for _, e := range evs {
		rv, err := e.ResourceVersionInt()
		if err != nil {
			return 0, err
		}
		ops = append(ops, store.Op{Type: store.OpDelete, Key: store.KeyOf(e), ResourceVersion: rv})
	}
	res, err := s.n.Propose(ctx, ops)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range res {
		if r.Err == nil {
			n++
		}
	}
	return n, nil
}

func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrAlreadyExists):
		return fmt.Errorf("%w: %w", events.ErrAlreadyExists, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", events.ErrConflict, err)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", events.ErrNotFound, err)
	}
	return err
}

// apiEvents writes Events through the agent's own API with its
// certificate: the node loop's recorder (NodeRestriction lets it write
// Events about its Node and the pods bound to it).
type apiEvents struct{ c *api.Client }

func (w apiEvents) CreateEvent(ctx context.Context, e *api.Event) (*api.Event, error) {
	out, err := w.c.Create(ctx, e)
	return asEvent(out, err)
}

func (w apiEvents) UpdateEvent(ctx context.Context, e *api.Event) (*api.Event, error) {
	out, err := w.c.Update(ctx, e)
	return asEvent(out, err)
}

func (w apiEvents) GetEvent(ctx context.Context, ns, name string) (*api.Event, error) {
	out, err := w.c.Get(ctx, "Event", ns, name)
	return asEvent(out, err)
}

func asEvent(obj api.Object, err error) (*api.Event, error) {
	switch {
	case api.IsAlreadyExists(err):
		return nil, fmt.Errorf("%w: %w", events.ErrAlreadyExists, err)
	case api.IsConflict(err):
		return nil, fmt.Errorf("%w: %w", events.ErrConflict, err)
	case api.IsNotFound(err):
		return nil, fmt.Errorf("%w: %w", events.ErrNotFound, err)
	case err != nil:
		return nil, err
	}
	e, ok := obj.(*api.Event)
	if !ok {
		return nil, fmt.Errorf("the API answered a %T for an Event", obj)
	}
	return e, nil
}

// leaderEvents starts the leader's recorder and the collector of old
// Events; both stop with ctx (the end of this leadership). It records
// LeaderElected on this agent's Node.
func (a *Agent) leaderEvents(ctx context.Context, n *consensus.Node) *events.Recorder {
	w := storeEvents{n: n, now: a.cfg.Clock.Now}
	rec := a.newRecorder(w)
	go rec.Run(ctx)
	cc := events.DefaultCollectorConfig()
	cc.Clock, cc.Logger = a.cfg.Clock, a.log.With("loop", "events-collector")
	go func() {
		if err := events.RunCollector(ctx, cc, w); err != nil {
			a.log.Error("events collector", "err", err)
		}
	}()
	rec.For(componentVoterManager).Eventf(api.NodeRef(a.cfg.NodeName), api.EventTypeNormal, "LeaderElected",
		"%s became the Raft leader", a.cfg.NodeName)
	a.leaderRec.Store(rec)
	return rec
}

// voterEvent records a voter change the voter manager made, on the Node
// concerned.
func (a *Agent) voterEvent(c voters.Change) {
	rec := a.leaderRec.Load()
	switch c.Type {
	case voters.AddVoter:
		rec.For(componentVoterManager).Eventf(api.NodeRef(c.ID), api.EventTypeNormal, "VoterAdded", "%s became a Raft voter: %s", c.ID, c.Reason)
	case voters.RemoveServer:
		rec.For(componentVoterManager).Eventf(api.NodeRef(c.ID), api.EventTypeNormal, "VoterRemoved", "%s left the Raft voters: %s", c.ID, c.Reason)
	}
}
