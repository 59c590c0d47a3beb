package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/clock"
	"github.com/shoal-dev/shoal/api"
)

// Expired returns the Events whose last occurrence (api.EventLastSeen) is
// more than ttl before now, oldest first, at most max of them.
func Expired(evs []*api.Event, now time.Time, ttl time.Duration, max int) []*api.Event {
	var out []*api.Event
	for _, e := range evs {
		if now.Sub(api.EventLastSeen(e)) > ttl {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := api.EventLastSeen(out[i]), api.EventLastSeen(out[j])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// Store is what the collector reads and deletes: the leader's replica and
// its Raft proposals. DeleteEvents deletes each Event only at the
// resourceVersion given (one updated meanwhile stays) and returns how many
// went.
type Store interface {
	ListEvents() ([]*api.Event, error)
	DeleteEvents(ctx context.Context, evs []*api.Event) (int, error)
}

// CollectorConfig configures the collector.
type CollectorConfig struct {
	// TTL is how long an Event is kept after its last occurrence.
	TTL time.Duration
	// Interval is the time between two rounds.
	Interval time.Duration
	// MaxPerRound bounds the Events one round deletes (one Raft entry).
	MaxPerRound int
	Clock       clock.Clock
	Logger      *slog.Logger
}

// DefaultCollectorConfig keeps Events one hour and looks every minute.
func DefaultCollectorConfig() CollectorConfig {
	return CollectorConfig{TTL: time.Hour, Interval: time.Minute, MaxPerRound: 500, Clock: clock.Real{}}
}

// Validate reports the first field out of range.
func (c CollectorConfig) Validate() error {
	switch {
	case c.TTL <= 0:
		return fmt.Errorf("events collector: TTL must be positive, got %s", c.TTL)
	case c.Interval <= 0:
		return fmt.Errorf("events collector: Interval must be positive, got %s", c.Interval)
	case c.MaxPerRound < 1:
		return fmt.Errorf("events collector: MaxPerRound must be at least 1, got %d", c.MaxPerRound)
	case c.Clock == nil:
		return errors.New("events collector: Clock is required")
	}
	return nil
}

// CollectOnce deletes up to MaxPerRound expired Events and reports how
// many went.
func CollectOnce(ctx context.Context, cfg CollectorConfig, st Store) (int, error) {
	evs, err := st.ListEvents()
	if err != nil {
		return 0, err
	}
	old := Expired(evs, cfg.Clock.Now(), cfg.TTL, cfg.MaxPerRound)
	if len(old) == 0 {
		return 0, nil
	}
	return st.DeleteEvents(ctx, old)
}

// RunCollector collects expired Events every Interval until ctx ends; a
// full round is followed at once by another.
func RunCollector(ctx context.Context, cfg CollectorConfig, st Store) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for {
		n, err := CollectOnce(ctx, cfg, st)
		if err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("collecting old events", "err", err)
		} else if n > 0 {
			cfg.Logger.Debug("collected old events", "deleted", n)
		}
		wait := cfg.Interval
		if n >= cfg.MaxPerRound {
			wait = 0
		}
		if !clock.Sleep(ctx, wait) {
			return nil
		}
	}
}
