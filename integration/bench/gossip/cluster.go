package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/consensus/gossip"
)

// clusterID is what every bench member advertises; the cluster check
// refuses any other, as an agent's does.
const clusterID = "bench-3f9c2a7d51e84b06a1c4e2f0d9b7a635"

// member is one gossip member with what the bench watches of it.
type member struct {
	name string
	g    *gossip.Gossip
	t    *countingTransport
	addr string

	// Written by the member's event loop only, read after it.
	sawAll atomic.Int64 // unix nanoseconds when it first saw all n alive; 0: not yet
	alive  atomic.Int64 // members it sees alive now
	dead   atomic.Int64 // unix nanoseconds when it saw the victim dead or gone; 0: not yet
	joined atomic.Int64 // unix nanoseconds when its Join returned nil; 0: not yet
}

// cluster is n members in this process.
type cluster struct {
	n       int
	members []*member
	logs    *logWatch
	victim  atomic.Pointer[string]
	cancel  context.CancelFunc
	ctx     context.Context
	wg      sync.WaitGroup
}

// newCluster creates n members with the production timings, encrypted with
// one AES-256 key, the first seeds of them to be joined through. They do
// not join yet.
func newCluster(n, seeds int, encrypt bool, tune func(*gossip.Config)) (*cluster, error) {
	if n < 2 || seeds < 1 || seeds > n {
		return nil, fmt.Errorf("-n %d, -seeds %d: want n >= 2 and 1 <= seeds <= n", n, seeds)
	}
	var key []byte
	if encrypt {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	c := &cluster{n: n, logs: &logWatch{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	logger := slog.New(c.logs)
	// Listen first, so that every address is known before any Config.
	for i := range n {
		t, err := newCountingTransport("127.0.0.1", logger)
		if err != nil {
			c.shutdown()
			return nil, fmt.Errorf("member %d: %w (raise the file limit?)", i, err)
		}
		c.members = append(c.members, &member{
			name: fmt.Sprintf("m%04d", i),
			t:    t,
			addr: fmt.Sprintf("127.0.0.1:%d", t.Port()),
		})
	}
	var seedAddrs []string
	for _, m := range c.members[:seeds] {
		seedAddrs = append(seedAddrs, m.addr)
	}
	for i, m := range c.members {
		cfg := timings
		if tune != nil {
			tune(&cfg)
		}
		cfg.NodeName = m.name
		cfg.Transport = m.t
		cfg.GossipKey = key
		cfg.Logger = logger
		cfg.CheckCluster = func(member string, meta gossip.Meta) error {
			if meta.ClusterID != clusterID {
				return fmt.Errorf("%s is in cluster %q", member, meta.ClusterID)
			}
			return nil
		}
		for _, s := range seedAddrs {
			if s != m.addr {
				cfg.Join = append(cfg.Join, s)
			}
		}
		role, worker := gossip.RoleNonvoter, true
		if i < seeds {
			role, worker = gossip.RoleVoter, false
		}
		meta := gossip.Meta{
			// Addresses of the size an agent advertises.
			APIAddr:   fmt.Sprintf("127.0.0.1:%d", 20000+i),
			RaftAddr:  fmt.Sprintf("127.0.0.1:%d", 40000+i),
			Zone:      "zone-a",
			Role:      role,
			ClusterID: clusterID,
			Version:   "bench",
			Worker:    worker,
		}
		if key != nil {
			meta.Keyring = gossip.KeyringState([][]byte{key})
		}
		g, err := gossip.New(cfg, meta)
		if err != nil {
			m.t.Shutdown()
			c.members = c.members[:i]
			c.shutdown()
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		m.g = g
		c.wg.Add(1)
		go c.follow(m)
	}
	return c, nil
}

// follow drains m's events as an agent does and keeps m's figures.
func (c *cluster) follow(m *member) {
	defer c.wg.Done()
	alive := map[string]bool{}
	var dropped uint64
	for ev := range m.g.Events() {
		if d := m.g.Dropped(); d != dropped {
			// Events were lost: read the table instead.
			dropped = d
			clear(alive)
			for _, mm := range m.g.Members() {
				if mm.State == gossip.Alive {
					alive[mm.Name] = true
				}
			}
		}
		switch ev.Type {
		case gossip.EventJoin, gossip.EventUpdate:
			if ev.Member.State == gossip.Alive {
				alive[ev.Member.Name] = true
			}
		case gossip.EventLeave:
			delete(alive, ev.Member.Name)
			if v := c.victim.Load(); v != nil && *v == ev.Member.Name && m.dead.Load() == 0 {
				m.dead.Store(time.Now().UnixNano())
			}
		}
		m.alive.Store(int64(len(alive)))
		if len(alive) == c.n && m.sawAll.Load() == 0 {
			m.sawAll.Store(time.Now().UnixNano())
		}
	}
}

// joinDelay is when member i starts its Join, from the first, at rate
// members a second (0: all at once).
func joinDelay(i int, rate float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(i) / rate * float64(time.Second))
}

// joinAll starts every member's Join and its reconnect loop: all at once
// when rate is 0, else rate members a second in order (the seeds first);
// errs counts joins that gave up.
func (c *cluster) joinAll(rate float64) (errs *atomic.Int64) {
	errs = &atomic.Int64{}
	start := time.Now()
	for i, m := range c.members {
		at := start.Add(joinDelay(i, rate))
		go func() {
			if d := time.Until(at); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-c.ctx.Done():
					t.Stop()
					return
				}
			}
			err := m.g.Join(c.ctx)
			switch {
			case err == nil:
				m.joined.Store(time.Now().UnixNano())
			case !errors.Is(err, context.Canceled):
				errs.Add(1)
			}
		}()
		go m.g.Reconnect(c.ctx)
	}
	return errs
}

// kill shuts member i down without leaving, as a crash would look.
func (c *cluster) kill(i int) *member {
	m := c.members[i]
	c.victim.Store(&m.name)
	c.logs.setVictim(m.name)
	m.g.Shutdown()
	return m
}

// shutdown stops every member, several at a time.
func (c *cluster) shutdown() {
	if c.cancel != nil {
		c.cancel()
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if m.g != nil {
				m.g.Shutdown()
			} else {
				m.t.Shutdown()
			}
		}()
	}
	wg.Wait()
	c.wg.Wait()
}
