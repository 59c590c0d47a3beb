package follow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/clock"

	"github.com/shoal-dev/shoal/api"
)

// Config configures a Follower.
type Config struct {
	// Endpoints returns the current voters' API addresses (host:port),
	// best first. It is called again after every failure. Required.
	Endpoints func() []string
	// Kind is the kind to follow ("Pod", "pods", ...). Required.
	Kind string
	// Namespace narrows to one namespace; "" follows all of them.
	Namespace string
	// LabelSelector and FieldSelector narrow further, as in a List.
	LabelSelector, FieldSelector string
	// Backoff is the first retry delay after a failure, doubling up to
	// MaxBackoff; 0 means 100ms and 5s.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// CheckInterval is how often a running watch checks that its endpoint
	// is still among Endpoints(); when gossip drops a voter that died
	// without closing its connections, the follower moves on within this
	// interval instead of waiting for TCP to notice. 0 means 1s.
	CheckInterval time.Duration
	// Logger receives endpoint switches; nil means slog.Default().
	Logger *slog.Logger
	// NewClient builds the client of one endpoint; nil means
	// api.NewClient("http://"+endpoint). The agent passes a client over
	// its mutual-TLS transport (https) unless it runs --insecure.
	NewClient func(endpoint string) *api.Client
	// Local, when set, is asked first for the Source of an endpoint: a
	// non-nil answer reads that endpoint in process (on a voter, its own
	// store, whose objects the mirror then shares instead of holding a
	// decoded copy); nil falls back to NewClient.
	Local func(endpoint string) Source
	// NoMirror keeps the follower from holding the objects: it keeps only
	// the revision it reached, Objects returns nil, and a RESYNC event
	// carries the list in Event.Objects. For a handler that keeps its own
	// copy anyway (the proxy): the mirror was a second map of every object
	// followed, about 1.3 MiB per kind at 10,000 Services and Endpoints.
	NoMirror bool
}

// Source is what a follower lists and watches an endpoint through: an
// *api.Client, or a Config.Local replica. Watch's channel carries the
// events after fromRV and ends with the stream (an ERROR event carries a
// 410 Gone when fromRV is no longer held).
type Source interface {
	List(ctx context.Context, kind, ns string, opts api.ListOptions) ([]api.Object, string, error)
	Watch(ctx context.Context, kind, ns string, opts api.ListOptions, fromRV string) (<-chan api.WatchEvent, error)
}

// Follower defaults.
const (
	DefaultBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	DefaultCheck      = time.Second
)

// Validate reports the first configuration error, naming the field.
func (c Config) Validate() error {
	switch {
	case c.Endpoints == nil:
		return errors.New("follow.Config.Endpoints: must not be nil")
	case c.Kind == "":
		return errors.New("follow.Config.Kind: must not be empty")
	case c.Backoff < 0:
		return fmt.Errorf("follow.Config.Backoff: %v must not be negative", c.Backoff)
	case c.MaxBackoff < 0:
		return fmt.Errorf("follow.Config.MaxBackoff: %v must not be negative", c.MaxBackoff)
	case c.CheckInterval < 0:
		return fmt.Errorf("follow.Config.CheckInterval: %v must not be negative", c.CheckInterval)
	}
	if _, ok := api.LookupKind(c.Kind); !ok {
		if _, ok := api.LookupResource(c.Kind); !ok {
			return fmt.Errorf("follow.Config.Kind: unknown kind %q", c.Kind)
		}
	}
	return nil
}

// Follow event types beyond the watch's ADDED, MODIFIED and DELETED.
const (
	// Resync: a full list replaced the mirror (Object is nil); the
	// handler should treat every object as possibly changed.
	Resync = "RESYNC"
)

// Event is one change of the mirror.
type Event struct {
	Type            string     // ADDED, MODIFIED, DELETED or RESYNC
	Object          api.Object // nil for RESYNC; shared, read-only
	ResourceVersion int64      // the revision of the change (of the list for RESYNC)
	// Objects is the list of a RESYNC when the follower keeps no mirror
	// (Config.NoMirror), sorted by namespace and name; shared, read-only.
	Objects []api.Object
}

// Follower mirrors one kind of the control plane from whichever voter
// answers. It lists once, then watches from the list's revision; when a
// stream ends or a voter fails it resumes the watch, on the next voter if
// need be, from the last revision it saw, so that no event is lost or seen
// twice. Only when a voter no longer holds that revision (410 Gone) does it
// list again and report RESYNC.
//
// The first list is linearizable (the voter reads through the leader): a
// voter's own replica may be far behind (a restarted voter holds only its
// last snapshot until the leader speaks), and a consumer may act on what
// the first list lacks (the node loop stops pods missing from it). Later
// lists may come from any replica, since none older than the mirror is
// accepted, and so the mirror never shows a state older than the control
// plane's when the follower started.
type Follower struct {
	cfg  Config
	kind api.KindInfo
	log  *slog.Logger

	clientsMu sync.Mutex
	clients   map[string]Source

	mu      sync.RWMutex
	objects map[mirrorKey]api.Object
	rev     int64
	synced  bool // a linearizable list has filled the mirror
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Follower, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k, ok := api.LookupKind(cfg.Kind)
	if !ok {
		k, _ = api.LookupResource(cfg.Kind)
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = cfg.Backoff
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheck
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NewClient == nil {
		cfg.NewClient = func(ep string) *api.Client { return api.NewClient("http://" + ep) }
	}
	return &Follower{
		cfg:     cfg,
		kind:    k,
		log:     cfg.Logger.With("follow", k.Kind),
		clients: map[string]Source{},
		objects: map[mirrorKey]api.Object{},
	}, nil
}

// Objects returns the mirror sorted by namespace and name (nil with
// Config.NoMirror). The objects are shared: do not modify them.
func (f *Follower) Objects() []api.Object {
	if f.cfg.NoMirror {
		return nil
	}
	f.mu.RLock()
	keys := make([]mirrorKey, 0, len(f.objects))
	for k := range f.objects {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b mirrorKey) int {
		if c := strings.Compare(a.ns, b.ns); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]api.Object, len(keys))
	for i, k := range keys {
		out[i] = f.objects[k]
	}
	f.mu.RUnlock()
	return out
}

// Synced reports whether a linearizable list has filled the mirror: from
// then on the mirror is never older than the control plane was when the
// follower started.
func (f *Follower) Synced() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.synced
}

// Revision is the revision the mirror reflects: of the last event applied,
// or of the last list.
func (f *Follower) Revision() int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.rev
}

// mirrorKey names an object of the mirror. It holds the object's own
// strings: a "namespace/name" string made per object was 1.5 MiB of a voter's
// heap with 10,000 Services and Endpoints followed.
type mirrorKey struct{ ns, name string }

func keyOf(obj api.Object) mirrorKey {
	m := obj.GetObjectMeta()
	return mirrorKey{m.Namespace, m.Name}
}

func (k mirrorKey) String() string { return k.ns + "/" + k.name }

// cmpObjects orders objects by namespace, then name.
func cmpObjects(a, b api.Object) int {
	ma, mb := a.GetObjectMeta(), b.GetObjectMeta()
	if c := strings.Compare(ma.Namespace, mb.Namespace); c != 0 {
		return c
	}
	return strings.Compare(ma.Name, mb.Name)
}

func (f *Follower) client(ep string) Source {
	f.clientsMu.Lock()
	defer f.clientsMu.Unlock()
	c, ok := f.clients[ep]
	if !ok {
		if f.cfg.Local != nil {
			c = f.cfg.Local(ep)
		}
		if c == nil {
			c = f.cfg.NewClient(ep)
		}
		f.clients[ep] = c
	}
	return c
}

// errBehind: the endpoint's replica is older than the mirror.
var errBehind = errors.New("the voter's replica is behind this follower")

// Run follows until ctx ends, calling handle serially for every change of
// the mirror, after the mirror has changed. It returns ctx's error.
func (f *Follower) Run(ctx context.Context, handle func(Event)) error {
	var (
		ep       string // current endpoint
		needList = true
		failures int // consecutive
		backoff  = f.cfg.Backoff
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		eps := f.cfg.Endpoints()
		if len(eps) == 0 {
			f.log.Warn("follow: no voter endpoint known; waiting", "retry", backoff)
			if !clock.Sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, f.cfg.MaxBackoff)
			continue
		}
		if !slices.Contains(eps, ep) {
			ep = eps[0]
		}
		progressed, err := f.session(ctx, ep, &needList, handle)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if progressed {
			failures, backoff = 0, f.cfg.Backoff
		}
		if err == nil {
			// The stream ended cleanly (timeout, server closing): resume
			// on the same endpoint. A stream that ends at once without
			// progress counts as a failure, so that a closing server does
			// not spin us.
			if progressed {
				continue
			}
			err = errors.New("the watch ended without an event")
		}
		failures++
		next := nextEndpoint(eps, ep)
		f.log.Warn("follow: endpoint failed", "endpoint", ep, "next", next, "revision", f.Revision(), "err", err)
		ep = next
		// The first failure switches at once; repeated ones back off.
		if failures > 1 {
			if !clock.Sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, f.cfg.MaxBackoff)
		}
	}
}

// nextEndpoint is the endpoint after cur in eps, wrapping around.
func nextEndpoint(eps []string, cur string) string {
	i := slices.Index(eps, cur)
	return eps[(i+1)%len(eps)]
}

// session lists (if needed) and watches on one endpoint until the stream
// ends or fails. progressed reports whether the mirror moved (a list or an
// event). A nil error means the stream ended cleanly.
func (f *Follower) session(ctx context.Context, ep string, needList *bool, handle func(Event)) (progressed bool, err error) {
	c := f.client(ep)
	opts := api.ListOptions{LabelSelector: f.cfg.LabelSelector, FieldSelector: f.cfg.FieldSelector, Stale: true}
	if *needList {
		lopts := opts
		lopts.Stale = f.Synced() // the first list is linearizable
		if err := f.list(ctx, c, lopts, handle); err != nil {
			return false, err
		}
		*needList = false
		progressed = true
	}
	// A watch from a revision ahead of the voter's replica is allowed: the
	// voter skips events up to it and streams the later ones as it catches
	// up, so resuming on a lagging voter never goes backwards.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go f.watchEndpoint(ctx, cancel, ep)
	ch, err := c.Watch(ctx, f.kind.Kind, f.cfg.Namespace, opts, strconv.FormatInt(f.Revision(), 10))
	if err != nil {
		if api.IsGone(err) {
			*needList = true
			return progressed, fmt.Errorf("resuming the watch: %w (listing again)", err)
		}
		return progressed, fmt.Errorf("watch: %w", err)
	}
	for ev := range ch {
		if ev.Type == api.WatchEventError {
			if api.IsGone(ev.Err) {
				*needList = true
			}
			return progressed, ev.Err
		}
		rv, perr := strconv.ParseInt(ev.Object.GetObjectMeta().ResourceVersion, 10, 64)
		if perr != nil {
			return progressed, fmt.Errorf("watch event %s %s: bad resourceVersion: %w", ev.Type, keyOf(ev.Object), perr)
		}
		if !f.apply(ev.Type, ev.Object, rv) {
			continue // already seen
		}
		progressed = true
		handle(Event{Type: ev.Type, Object: ev.Object, ResourceVersion: rv})
	}
	return progressed, nil
}

// watchEndpoint cancels the session when ep leaves the endpoint list.
func (f *Follower) watchEndpoint(ctx context.Context, cancel context.CancelFunc, ep string) {
	t := time.NewTicker(f.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !slices.Contains(f.cfg.Endpoints(), ep) {
				f.log.Info("follow: endpoint is no longer a voter; switching", "endpoint", ep)
				cancel()
				return
			}
		}
	}
}

// list replaces the mirror with a list from c and reports RESYNC. A list
// older than the mirror is refused: following never goes backwards.
func (f *Follower) list(ctx context.Context, c Source, opts api.ListOptions, handle func(Event)) error {
	objs, rvs, err := c.List(ctx, f.kind.Kind, f.cfg.Namespace, opts)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	rv, err := strconv.ParseInt(rvs, 10, 64)
	if err != nil {
		return fmt.Errorf("list: bad resourceVersion %q: %w", rvs, err)
	}
	var m map[mirrorKey]api.Object
	if f.cfg.NoMirror {
		slices.SortFunc(objs, cmpObjects)
	} else {
		m = make(map[mirrorKey]api.Object, len(objs))
		for _, o := range objs {
			m[keyOf(o)] = o
		}
	}
	f.mu.Lock()
	if rv < f.rev {
		f.mu.Unlock()
		return fmt.Errorf("list at revision %d, mirror at %d: %w", rv, f.rev, errBehind)
	}
	f.objects, f.rev = m, rv
	if !opts.Stale {
		f.synced = true
	}
	f.mu.Unlock()
	ev := Event{Type: Resync, ResourceVersion: rv}
	if f.cfg.NoMirror {
		ev.Objects = objs
	}
	handle(ev)
	return nil
}

// apply records one watch event in the mirror; it reports false for an
// event at or below the mirror's revision (a duplicate after a resume).
func (f *Follower) apply(typ string, obj api.Object, rv int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rv <= f.rev {
		return false
	}
	f.rev = rv
	if f.cfg.NoMirror {
		return true
	}
	k := keyOf(obj)
	switch typ {
	case "DELETED":
		delete(f.objects, k)
	default:
		f.objects[k] = obj
	}
	return true
}
