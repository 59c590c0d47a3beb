package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

type memStore struct {
	evs     []*api.Event
	deleted []string
}

func (m *memStore) ListEvents() ([]*api.Event, error) { return m.evs, nil }
func (m *memStore) DeleteEvents(_ context.Context, evs []*api.Event) (int, error) {
	for _, e := range evs {
		m.deleted = append(m.deleted, e.Name)
	}
	return len(evs), nil
}

func TestCollectorDeletesOnlyOldEvents(t *testing.T) {
	now := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	ev := func(name string, last time.Duration) *api.Event {
		e := &api.Event{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}}
		e.FirstTimestamp = api.NewTime(now.Add(-2 * time.Hour))
		e.LastTimestamp = api.NewTime(now.Add(-last))
		return e
	}
	st := &memStore{evs: []*api.Event{
		ev("fresh", 10*time.Minute),
		ev("old", 61*time.Minute),
		ev("older", 3*time.Hour),
		ev("edge", time.Hour), // exactly one hour: kept
		// A repeated event first seen long ago but seen again lately stays.
		ev("repeated", time.Minute),
	}}
	cfg := DefaultCollectorConfig()
	cfg.Clock = &fakeClock{t: now}
	n, err := CollectOnce(context.Background(), cfg, st)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d (%v), want 2", n, err)
	}
	if fmt.Sprint(st.deleted) != "[older old]" {
		t.Fatalf("deleted %v, want [older old] (oldest first)", st.deleted)
	}
}

func TestCollectorBoundsARound(t *testing.T) {
	now := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	var evs []*api.Event
	for i := range 1200 {
		e := &api.Event{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("e%04d", i), Namespace: "default"}}
		e.LastTimestamp = api.NewTime(now.Add(-2 * time.Hour))
		evs = append(evs, e)
	}
	if got := len(Expired(evs, now, time.Hour, 500)); got != 500 {
		t.Fatalf("%d expired in one round, want 500", got)
	}
	cfg := DefaultCollectorConfig()
	cfg.MaxPerRound = 0
	if err := cfg.Validate(); err == nil {
		t.Fatal("MaxPerRound 0 accepted")
	}
}
