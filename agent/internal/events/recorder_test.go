package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// memWriter is an in-memory Event store that checks resourceVersions.
type memWriter struct {
	mu      sync.Mutex
	objs    map[string]*api.Event
	rv      int
	creates int
	updates int
	fail    error
	block   chan struct{} // if set, writes wait on it
}

func newMemWriter() *memWriter { return &memWriter{objs: map[string]*api.Event{}} }

func (m *memWriter) wait() {
	if m.block != nil {
		<-m.block
	}
}

func (m *memWriter) CreateEvent(_ context.Context, e *api.Event) (*api.Event, error) {
	m.wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	if errs := api.Validate(e); len(errs) > 0 {
		return nil, errs
	}
	k := e.Namespace + "/" + e.Name
	if _, ok := m.objs[k]; ok {
		return nil, ErrAlreadyExists
	}
	m.rv++
	c := *e
	c.ResourceVersion = fmt.Sprint(m.rv)
	m.objs[k] = &c
	m.creates++
	return &c, nil
}

func (m *memWriter) UpdateEvent(_ context.Context, e *api.Event) (*api.Event, error) {
	m.wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	k := e.Namespace + "/" + e.Name
	cur, ok := m.objs[k]
	if !ok {
		return nil, ErrNotFound
	}
	if cur.ResourceVersion != e.ResourceVersion {
		return nil, ErrConflict
	}
	m.rv++
	c := *e
	c.ResourceVersion = fmt.Sprint(m.rv)
	m.objs[k] = &c
	m.updates++
	return &c, nil
}

func (m *memWriter) GetEvent(_ context.Context, ns, name string) (*api.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.objs[ns+"/"+name]
	if !ok {
		return nil, ErrNotFound
	}
	c := *cur
	return &c, nil
}

func (m *memWriter) all() []*api.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*api.Event
	for _, e := range m.objs {
		out = append(out, e)
	}
	return out
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(t testing.TB, edit func(*Config)) (*Recorder, *memWriter, *fakeClock) {
	t.Helper()
	w := newMemWriter()
	clk := &fakeClock{t: time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)}
	cfg := DefaultConfig()
	cfg.Host, cfg.Writer, cfg.Clock = "n1", w, clk
	if edit != nil {
		edit(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, w, clk
}

var pod = api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "u1", APIVersion: "v1"}

func TestAggregatesRepeats(t *testing.T) {
	r, w, clk := newTest(t, nil)
	em := r.For("kubelet")
	for range 5 {
		em.Event(pod, api.EventTypeWarning, "BackOff", "Back-off restarting failed container app")
		clk.add(time.Second)
	}
	r.Flush(context.Background())
	evs := w.all()
	if len(evs) != 1 || evs[0].Count != 5 || w.creates != 1 {
		t.Fatalf("after 5 repeats: %d events (creates %d), want one with count 5: %+v", len(evs), w.creates, evs)
	}
	first := evs[0]
	if !first.LastTimestamp.After(first.FirstTimestamp.Time) || first.Source.Component != "kubelet" || first.Source.Host != "n1" {
		t.Fatalf("event %+v", first)
	}
	for range 3 {
		em.Event(pod, api.EventTypeWarning, "BackOff", "Back-off restarting failed container app")
		clk.add(time.Second)
		r.Flush(context.Background())
	}
	evs = w.all()
	if len(evs) != 1 || evs[0].Count != 8 || evs[0].Name != first.Name || w.updates != 3 {
		t.Fatalf("after 3 more: %d events, count %d, updates %d, want 1, 8, 3", len(evs), evs[0].Count, w.updates)
	}
	// Another message is another Event.
	em.Event(pod, api.EventTypeNormal, "Pulled", "Container image already present")
	r.Flush(context.Background())
	if n := len(w.all()); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

// A second recorder (a new leader, a restarted agent) knows nothing of
// the Event written before, finds it under the same name and adds to it.
func TestSameKeyAcrossRecorders(t *testing.T) {
	r1, w, _ := newTest(t, nil)
	r1.For("scheduler").Event(pod, api.EventTypeWarning, "FailedScheduling", "0/3 nodes are available")
	r1.Flush(context.Background())
	cfg := r1.cfg
	r2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r2.For("scheduler").Event(pod, api.EventTypeWarning, "FailedScheduling", "0/3 nodes are available")
	r2.Flush(context.Background())
	evs := w.all()
	if len(evs) != 1 || evs[0].Count != 2 {
		t.Fatalf("%d events, want one with count 2: %+v", len(evs), evs)
	}
	if s := r2.Stats(); s.Written != 1 || s.WriteErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPerObjectRateLimit(t *testing.T) {
	r, w, clk := newTest(t, func(c *Config) { c.PerObjectBurst, c.PerObjectRefill = 3, 10*time.Second })
	em := r.For("kubelet")
	for i := range 8 {
		em.Event(pod, api.EventTypeNormal, fmt.Sprintf("Reason%d", i), "m")
	}
	next := r.Flush(context.Background())
	if n := len(w.all()); n != 3 {
		t.Fatalf("wrote %d events in a burst of 3", n)
	}
	if want := clk.Now().Add(10 * time.Second); !next.Equal(want) {
		t.Fatalf("next write at %s, want %s", next, want)
	}
	// Another object is not held back by this one.
	em.Event(api.NodeRef("n1"), api.EventTypeNormal, "Starting", "m")
	r.Flush(context.Background())
	if n := len(w.all()); n != 4 {
		t.Fatalf("wrote %d events, want 4 (the node's goes)", n)
	}
	clk.add(10 * time.Second)
	r.Flush(context.Background())
	if n := len(w.all()); n != 5 {
		t.Fatalf("after one refill, %d events, want 5", n)
	}
}

// A crash-looping pod: 10,000 BackOff events over 1,000 seconds write at
// most the burst plus one per refill, and the count stays exact.
func TestCrashLoopCannotFlood(t *testing.T) {
	r, w, clk := newTest(t, func(c *Config) { c.PerObjectBurst, c.PerObjectRefill = 5, 10*time.Second })
	em := r.For("kubelet")
	for i := range 10_000 {
		em.Event(pod, api.EventTypeWarning, "BackOff", "Back-off restarting failed container app")
		em.Event(pod, api.EventTypeNormal, "Started", "Started container app")
		if i%10 == 0 {
			clk.add(time.Second)
			r.Flush(context.Background())
		}
	}
	clk.add(time.Hour)
	r.Flush(context.Background())
	writes := w.creates + w.updates
	if max := 5 + 1000/10 + 1; writes > max {
		t.Fatalf("%d writes, want at most %d", writes, max)
	}
	evs := w.all()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	for _, e := range evs {
		if e.Count != 10_000 {
			t.Fatalf("%s count %d, want 10000", e.Reason, e.Count)
		}
	}
}

func TestGlobalRateLimit(t *testing.T) {
	r, w, clk := newTest(t, func(c *Config) { c.GlobalBurst, c.GlobalRefill = 10, time.Second })
	em := r.For("kubelet")
	for i := range 50 {
		em.Event(api.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("p%d", i)}, api.EventTypeNormal, "Started", "m")
	}
	next := r.Flush(context.Background())
	if n := len(w.all()); n != 10 {
		t.Fatalf("wrote %d events with a global burst of 10", n)
	}
	if want := clk.Now().Add(time.Second); !next.Equal(want) {
		t.Fatalf("next at %s, want %s", next, want)
	}
	clk.add(5 * time.Second)
	r.Flush(context.Background())
	if n := len(w.all()); n != 15 {
		t.Fatalf("after 5 s, %d events, want 15", n)
	}
}

func TestQueueBoundsDropAndCount(t *testing.T) {
	r, _, _ := newTest(t, func(c *Config) { c.MaxPending, c.MaxPendingPerObject = 20, 4 })
	em := r.For("kubelet")
	for i := range 10 {
		em.Event(pod, api.EventTypeNormal, fmt.Sprintf("R%d", i), "m")
	}
	for i := range 30 {
		em.Event(api.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("p%d", i)}, api.EventTypeNormal, "Started", "m")
	}
	s := r.Stats()
	if s.DroppedObject != 6 || s.DroppedFull != 14 || s.Emitted != 40 {
		t.Fatalf("stats %+v, want 6 dropped for the object, 14 for the queue", s)
	}
}

func TestSimilarEventsCombined(t *testing.T) {
	r, w, clk := newTest(t, func(c *Config) { c.MaxSimilar = 10 })
	rs := api.ObjectReference{Kind: "ReplicaSet", Namespace: "default", Name: "web-7d", UID: "rs1"}
	em := r.For("replicaset-controller")
	for i := range 100 {
		em.Eventf(rs, api.EventTypeNormal, "SuccessfulCreate", "Created pod: web-7d-%d", i)
		r.Flush(context.Background())
	}
	clk.add(time.Hour) // past the per-object limit
	r.Flush(context.Background())
	evs := w.all()
	if len(evs) != 11 {
		t.Fatalf("%d events, want 10 apart and 1 combined", len(evs))
	}
	var combined *api.Event
	for _, e := range evs {
		if strings.HasPrefix(e.Message, combinedPrefix) {
			combined = e
		}
	}
	if combined == nil || combined.Count != 90 || combined.Message != combinedPrefix+"Created pod: web-7d-99" {
		t.Fatalf("combined event %+v", combined)
	}
}

func TestLongMessageTruncated(t *testing.T) {
	r, w, _ := newTest(t, nil)
	r.For("scheduler").Event(pod, api.EventTypeWarning, "FailedScheduling", strings.Repeat("é", api.MaxEventMessageLength))
	r.Flush(context.Background())
	evs := w.all()
	if len(evs) != 1 || len(evs[0].Message) > api.MaxEventMessageLength {
		t.Fatalf("events %d, message length %d", len(evs), len(evs[0].Message))
	}
}

// A write that fails for a passing reason (no leader) is retried after a
// growing back-off, keeping what was recorded meanwhile, and counted as an
// error only once out of attempts; a rejected one is not retried.
func TestWriteRetriedThenCounted(t *testing.T) {
	r, w, clk := newTest(t, func(c *Config) { c.MaxWriteAttempts, c.RetryBackoff = 3, time.Second })
	w.fail = errors.New("consensus: not the leader, and no leader is known")
	em := r.For("kubelet")
	em.Event(pod, api.EventTypeNormal, "Started", "m")
	next := r.Flush(context.Background())
	if s := r.Stats(); s.Retried != 1 || s.WriteErrors != 0 {
		t.Fatalf("after one failure: %+v", s)
	}
	if want := clk.Now().Add(time.Second); !next.Equal(want) {
		t.Fatalf("retry at %s, want %s", next, want)
	}
	em.Event(pod, api.EventTypeNormal, "Started", "m") // folded into the queued one
	r.Flush(context.Background())                      // not due yet: nothing written
	clk.add(time.Second)
	next = r.Flush(context.Background())
	if want := clk.Now().Add(2 * time.Second); !next.Equal(want) {
		t.Fatalf("second retry at %s, want %s (doubled)", next, want)
	}
	w.mu.Lock()
	w.fail = nil
	w.mu.Unlock()
	clk.add(2 * time.Second)
	r.Flush(context.Background())
	if evs := w.all(); len(evs) != 1 || evs[0].Count != 2 {
		t.Fatalf("after recovery: %+v", evs)
	}

	w.fail = errors.New("still no leader")
	em.Event(pod, api.EventTypeNormal, "Killing", "m")
	for range 3 {
		clk.add(time.Minute)
		r.Flush(context.Background())
	}
	if s := r.Stats(); s.WriteErrors != 1 {
		t.Fatalf("out of attempts: %+v, want 1 write error", s)
	}
	w.fail = fmt.Errorf("%w: reason: Invalid value", ErrRejected)
	before := r.Stats().Retried
	em.Event(pod, api.EventTypeNormal, "Pulled", "m")
	r.Flush(context.Background())
	if s := r.Stats(); s.WriteErrors != 2 || s.Retried != before {
		t.Fatalf("rejected: %+v, want a write error and no retry", s)
	}
}

// Event returns while the writer is stuck in a write, however many
// events come: the caller never waits for the store.
func TestEventNeverBlocks(t *testing.T) {
	r, w, _ := newTest(t, func(c *Config) { c.MaxPending = 100 })
	w.block = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	em := r.For("kubelet")
	em.Event(pod, api.EventTypeNormal, "Started", "first") // the writer takes it and blocks
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		for i := range 10_000 {
			em.Event(api.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("p%d", i%500)}, api.EventTypeNormal, "Started", "m")
		}
	}()
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("Event blocked behind a stuck write")
	}
	close(w.block)
	cancel()
	<-done
	if s := r.Stats(); s.DroppedFull == 0 {
		t.Fatalf("stats %+v: want drops once the queue of 100 is full", s)
	}
}

func TestNilRecorderAndEmitter(t *testing.T) {
	var r *Recorder
	r.For("x").Event(pod, api.EventTypeNormal, "Started", "m")
	var e *Emitter
	e.Eventf(pod, api.EventTypeNormal, "Started", "%d", 1)
	r.Run(context.Background())
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "Writer") {
		t.Fatalf("err %v, want Writer required", err)
	}
	c.Writer, c.Clock = newMemWriter(), &fakeClock{}
	c.GlobalRefill = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "GlobalRefill") {
		t.Fatalf("err %v", err)
	}
}
