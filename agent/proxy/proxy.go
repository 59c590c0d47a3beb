package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/metrics"

	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/agent/internal/clock"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/lb"
)

// Syncer programs the load balancer: dataplane/lb's Applier.
type Syncer interface {
	Sync(changed []lb.Service, deleted []lb.ServiceKey) error
	Resync(all []lb.Service) error
}

// Names receives the Services and Endpoints as they change: the DNS
// server's index. The objects are the followers' (on a voter, the store's
// own): read-only, and the index may keep them.
type Names interface {
	Upsert(obj api.Object)
	Delete(kind, namespace, name string)
	Replace(objs []api.Object)
}

// Config configures a Proxy. Start from DefaultConfig.
type Config struct {
	// NodeName is this node's name; endpoints on it are local (traffic
	// policies Local).
	NodeName string
	// ClusterCIDR is the pod network; endpoint addresses outside it are
	// never programmed (logged instead). "" accepts any address.
	ClusterCIDR string
	// LB is the load balancer; nil means none (DNS only).
	LB Syncer
	// Names is the DNS index; nil means none.
	Names Names
	// Settle is how long a sync waits after the first change, so that a
	// burst of changes becomes one batch.
	Settle time.Duration
	// Backoff and MaxBackoff bound the waits between failed syncs.
	Backoff, MaxBackoff time.Duration
	// Logger receives the loop's logs.
	Logger *slog.Logger
	// Metrics, if set, records sync latencies and failures.
	Metrics *metrics.Proxy
}

// DefaultConfig returns production settings.
func DefaultConfig() Config {
	return Config{
		ClusterCIDR: "10.244.0.0/16",
		Settle:      10 * time.Millisecond,
		Backoff:     100 * time.Millisecond,
		MaxBackoff:  5 * time.Second,
	}
}

// Validate reports the first configuration error, naming the field.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("proxy.Config.NodeName: must not be empty")
	case c.Settle < 0:
		return fmt.Errorf("proxy.Config.Settle: %v must not be negative", c.Settle)
	case c.Backoff <= 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("proxy.Config.Backoff/MaxBackoff: %v/%v must be positive and ordered", c.Backoff, c.MaxBackoff)
	}
	if c.ClusterCIDR != "" {
		if _, err := netip.ParsePrefix(c.ClusterCIDR); err != nil {
			return fmt.Errorf("proxy.Config.ClusterCIDR: %v", err)
		}
	}
	return nil
}

// Proxy keeps this node's load balancer and DNS index equal to the
// Services and Endpoints of the cluster. Feed it from two followers (one
// per kind) through Handler; Run syncs.
type Proxy struct {
	cfg    Config
	podNet netip.Prefix
	log    *slog.Logger
	kick   chan struct{}

	mu sync.Mutex
	// objects holds each key's Service and Endpoints (either may be nil,
	// not both) in one map rather than one per kind: 0.7 MiB less at
	// 10,000 Services. The objects are the followers': shared, read-only.
	objects map[lb.ServiceKey]pair
	listed  map[string]bool // kinds listed at least once
	dirty   map[lb.ServiceKey]bool
	full    bool // the next sync rebuilds everything
	syncs   int
}

// pair is what the proxy holds of one key.
type pair struct {
	svc *api.Service
	eps *api.Endpoints
}

// set records p for k, or forgets k when p holds nothing.
func (p *Proxy) set(k lb.ServiceKey, o pair) {
	if o.svc == nil && o.eps == nil {
		delete(p.objects, k)
		return
	}
	p.objects[k] = o
}

// New returns a Proxy; nothing is programmed before Run.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1),
		objects: map[lb.ServiceKey]pair{},
		listed:  map[string]bool{}, dirty: map[lb.ServiceKey]bool{}, full: true,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if cfg.ClusterCIDR != "" {
		p.podNet = netip.MustParsePrefix(cfg.ClusterCIDR).Masked()
	}
	return p, nil
}

// Mirror is what Handler reads after a relist: a follow.Follower.
type Mirror interface {
	Objects() []api.Object
}

// Handler returns the handler to give f.Run, where f follows kind
// ("Service" or "Endpoints", every namespace). f is the follower's mirror,
// read after a relist; nil when the follower keeps none
// (follow.Config.NoMirror), and then the RESYNC event carries the list.
// The proxy keeps its own map of each kind, so the agent's followers keep
// no mirror.
func (p *Proxy) Handler(kind string, f Mirror) func(follow.Event) {
	return func(ev follow.Event) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch ev.Type {
		case follow.Resync:
			objs := ev.Objects
			if f != nil {
				objs = f.Objects()
			}
			p.replace(kind, objs)
		case "DELETED":
			p.remove(ev.Object)
		default:
			p.put(ev.Object)
		}
		p.poke()
	}
}

// replace makes the mirror of kind equal to objs (a relist) and asks for a
// full sync.
func (p *Proxy) replace(kind string, objs []api.Object) {
	// The objects of kind before the relist go, then come those listed.
	switch kind {
	case "Service":
		for k, o := range p.objects {
			p.set(k, pair{eps: o.eps})
		}
		for _, o := range objs {
			if s, ok := o.(*api.Service); ok {
				k := keyOf(s)
				p.set(k, pair{s, p.objects[k].eps})
			}
		}
	case "Endpoints":
		for k, o := range p.objects {
			p.set(k, pair{svc: o.svc})
		}
		for _, o := range objs {
			if e, ok := o.(*api.Endpoints); ok {
				k := keyOf(e)
				p.set(k, pair{p.objects[k].svc, e})
			}
		}
	default:
		return
	}
	p.listed[kind] = true
	p.full = true
	if p.cfg.Names != nil {
		p.cfg.Names.Replace(p.objectsLocked())
	}
}

func (p *Proxy) put(o api.Object) {
	switch o := o.(type) {
	case *api.Service:
		k := keyOf(o)
		p.set(k, pair{o, p.objects[k].eps})
		p.dirty[k] = true
	case *api.Endpoints:
		k := keyOf(o)
		p.set(k, pair{p.objects[k].svc, o})
		p.dirty[k] = true
	default:
		return
	}
	if p.cfg.Names != nil {
		p.cfg.Names.Upsert(o)
	}
}

func (p *Proxy) remove(o api.Object) {
	m := o.GetObjectMeta()
	k := lb.ServiceKey{Namespace: m.Namespace, Name: m.Name}
	kind := api.KindOf(o)
	switch kind {
	case "Service":
		p.set(k, pair{eps: p.objects[k].eps})
	case "Endpoints":
		p.set(k, pair{svc: p.objects[k].svc})
	default:
		return
	}
	p.dirty[k] = true
	if p.cfg.Names != nil {
		p.cfg.Names.Delete(kind, m.Namespace, m.Name)
	}
}

func (p *Proxy) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *Proxy) objectsLocked() []api.Object {
	out := make([]api.Object, 0, 2*len(p.objects))
	for _, o := range p.objects {
		if o.svc != nil {
			out = append(out, o.svc)
		}
		if o.eps != nil {
			out = append(out, o.eps)
		}
	}
	return out
}

func keyOf(o api.Object) lb.ServiceKey {
	m := o.GetObjectMeta()
	return lb.ServiceKey{Namespace: m.Namespace, Name: m.Name}
}

// Services returns how many Services the proxy follows.
func (p *Proxy) Services() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, o := range p.objects {
		if o.svc != nil {
			n++
		}
	}
	return n
}

// Syncs returns how many syncs have succeeded.
func (p *Proxy) Syncs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncs
}

// Run syncs the load balancer whenever the mirror changes, until ctx ends.
// A failed sync is retried with back-off (the applier rebuilds its table
// after a failure); nothing is programmed before both kinds were listed
// once, so a restart never sends traffic to "no endpoints" by mistake.
func (p *Proxy) Run(ctx context.Context) error {
	backoff := p.cfg.Backoff
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.kick:
		}
		if p.cfg.Settle > 0 && !clock.Sleep(ctx, p.cfg.Settle) {
			return ctx.Err()
		}
		err := p.syncOnce()
		if err == nil {
			backoff = p.cfg.Backoff
			continue
		}
		p.log.Warn("proxy: sync failed; retrying", "err", err, "in", backoff)
		if !clock.Sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, p.cfg.MaxBackoff)
		p.poke()
	}
}

// syncOnce sends what changed since the last sync (or everything after a
// relist). On failure the changes stay pending.
func (p *Proxy) syncOnce() error {
	p.mu.Lock()
	if p.cfg.LB == nil || !p.listed["Service"] || !p.listed["Endpoints"] || (!p.full && len(p.dirty) == 0) {
		p.mu.Unlock()
		return nil
	}
	full := p.full
	var keys []lb.ServiceKey
	if full {
		for k, o := range p.objects {
			if o.svc != nil {
				keys = append(keys, k)
			}
		}
	} else {
		for k := range p.dirty {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, lb.ServiceKey.Compare)
	var changed []lb.Service
	var deleted []lb.ServiceKey
	for _, k := range keys {
		o := p.objects[k]
		svc := o.svc
		if svc == nil {
			deleted = append(deleted, k)
			continue
		}
		t := translate(svc, o.eps, p.cfg.NodeName, p.podNet)
		if len(t.outside) > 0 {
			p.log.Warn("proxy: endpoints outside the pod network are ignored", "service", k.String(), "addresses", t.outside, "podNetwork", p.podNet.String())
		}
		if err := t.svc.Validate(); err != nil {
			p.log.Warn("proxy: service left out", "service", k.String(), "err", err)
			if !full {
				deleted = append(deleted, k)
			}
			continue
		}
		changed = append(changed, t.svc)
	}
	p.full = false
	clear(p.dirty)
	p.mu.Unlock()

	var err error
	start := time.Now()
	if full {
		err = p.cfg.LB.Resync(changed)
	} else {
		err = p.cfg.LB.Sync(changed, deleted)
	}
	took := time.Since(start)
	p.cfg.Metrics.Synced(took, err)
	p.log.Debug("proxy: synced", "full", full, "changed", len(changed), "deleted", len(deleted), "took", took, "err", err)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		// Keep the changes pending: the next try sends them again.
		if full {
			p.full = true
		}
		for _, k := range keys {
			p.dirty[k] = true
		}
		return err
	}
	p.syncs++
	return nil
}
