package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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

// storeEvents is the collector's view of the store: the leader lists
// the Events of its replica and deletes old ones through Raft.
type storeEvents struct{ n *consensus.Node }

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

// apiEvents writes Events through the agent's own API with its
// certificate, forwarded to the leader like any write: NodeRestriction
// lets an agent write Events about its Node and the pods bound to it, and
// a voter's certificate (the leader's scheduler and controllers) Events
// about any object. Going through the API rather than straight to Raft,
// an Event recorded by a leader that loses office is still written, by
// the next one.
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
	code := 0
	var se *api.StatusError
	if errors.As(err, &se) {
		code = se.Code()
	}
	switch {
	case code == http.StatusBadRequest || code == http.StatusForbidden || code == http.StatusUnprocessableEntity || code == http.StatusUnauthorized:
		return nil, fmt.Errorf("%w: %w", events.ErrRejected, err)
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

// leaderEvents runs, while this agent leads, the collector of Events
// older than an hour, and records LeaderElected on this agent's Node.
func (a *Agent) leaderEvents(ctx context.Context, n *consensus.Node) {
	cc := events.DefaultCollectorConfig()
	cc.Clock, cc.Logger = a.cfg.Clock, a.log.With("loop", "events-collector")
	go func() {
		if err := events.RunCollector(ctx, cc, storeEvents{n: n}); err != nil {
			a.log.Error("events collector", "err", err)
		}
	}()
	a.events.For(componentVoterManager).Eventf(api.NodeRef(a.cfg.NodeName), api.EventTypeNormal, "LeaderElected",
		"%s became the Raft leader", a.cfg.NodeName)
}

// voterEvent records a voter change the voter manager made, on the Node
// concerned.
func (a *Agent) voterEvent(c voters.Change) {
	rec := a.events
	switch c.Type {
	case voters.AddVoter:
		rec.For(componentVoterManager).Eventf(api.NodeRef(c.ID), api.EventTypeNormal, "VoterAdded", "%s became a Raft voter: %s", c.ID, c.Reason)
	case voters.RemoveServer:
		rec.For(componentVoterManager).Eventf(api.NodeRef(c.ID), api.EventTypeNormal, "VoterRemoved", "%s left the Raft voters: %s", c.ID, c.Reason)
	}
}
