package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shoal-dev/shoal/agent/internal/clock"
	"github.com/shoal-dev/shoal/api"
)

// Errors a Writer returns (wrapped) so that the Recorder can tell a lost
// race from a failure.
var (
	// ErrAlreadyExists: a create found the Event there already.
	ErrAlreadyExists = errors.New("event already exists")
	// ErrConflict: an update's resourceVersion is no longer current.
	ErrConflict = errors.New("event changed since it was read")
	// ErrNotFound: the Event is gone (collected, deleted).
	ErrNotFound = errors.New("event not found")
	// ErrRejected: the Event will never be accepted as it is (invalid,
	// forbidden); it is dropped, not retried. Any other error is taken
	// for a passing one (no leader, a timeout) and the write retried.
	ErrRejected = errors.New("event rejected")
)

// Writer stores Events. It is declared here with just what the Recorder
// calls; the agent implements it over the store (leader) or its API.
type Writer interface {
	CreateEvent(ctx context.Context, e *api.Event) (*api.Event, error)
	UpdateEvent(ctx context.Context, e *api.Event) (*api.Event, error)
	GetEvent(ctx context.Context, namespace, name string) (*api.Event, error)
}

// Config configures a Recorder. Every limit is explicit; DefaultConfig
// gives the production values.
type Config struct {
	// Host names the node the recorder runs on: source.host and
	// reportingInstance.
	Host   string
	Writer Writer
	Clock  clock.Clock
	Logger *slog.Logger

	// MaxPending bounds the distinct events queued for writing; a new one
	// beyond it is dropped.
	MaxPending int
	// MaxPendingPerObject bounds the distinct events queued about one
	// object.
	MaxPendingPerObject int
	// PerObjectBurst writes about one object may go at once; after it, one
	// more each PerObjectRefill.
	PerObjectBurst  int
	PerObjectRefill time.Duration
	// GlobalBurst writes may go at once; after it, one more each
	// GlobalRefill.
	GlobalBurst  int
	GlobalRefill time.Duration
	// MaxSimilar different messages for the same object, type, reason and
	// source within SimilarWindow are recorded apart; more are combined.
	MaxSimilar    int
	SimilarWindow time.Duration
	// MaxRemembered bounds the written Events remembered (name, count,
	// resourceVersion) so that a repeat is an update without a read.
	MaxRemembered int
	// WriteTimeout bounds one write.
	WriteTimeout time.Duration
	// MaxWriteAttempts bounds the writes of one event that fail for a
	// passing reason (no leader during an election); the first retry
	// waits RetryBackoff, each next one twice as long.
	MaxWriteAttempts int
	RetryBackoff     time.Duration
}

// DefaultConfig returns the production limits: at most 10 writes per
// second from one agent after a burst of 100, 25 about one object then one
// every 10 seconds, 512 events queued.
func DefaultConfig() Config {
	return Config{
		MaxPending:          512,
		MaxPendingPerObject: 16,
		PerObjectBurst:      25,
		PerObjectRefill:     10 * time.Second,
		GlobalBurst:         100,
		GlobalRefill:        100 * time.Millisecond,
		MaxSimilar:          10,
		SimilarWindow:       10 * time.Minute,
		MaxRemembered:       4096,
		WriteTimeout:        10 * time.Second,
		MaxWriteAttempts:    6,
		RetryBackoff:        500 * time.Millisecond,
	}
}

// Validate reports the first field that is missing or out of range.
func (c Config) Validate() error {
	switch {
	case c.Writer == nil:
		return errors.New("events: Writer is required")
	case c.Clock == nil:
		return errors.New("events: Clock is required")
	case c.MaxPending < 1:
		return fmt.Errorf("events: MaxPending must be at least 1, got %d", c.MaxPending)
	case c.MaxPendingPerObject < 1:
		return fmt.Errorf("events: MaxPendingPerObject must be at least 1, got %d", c.MaxPendingPerObject)
	case c.PerObjectBurst < 1 || c.PerObjectRefill <= 0:
		return fmt.Errorf("events: PerObjectBurst (%d) must be at least 1 and PerObjectRefill (%s) positive", c.PerObjectBurst, c.PerObjectRefill)
	case c.GlobalBurst < 1 || c.GlobalRefill <= 0:
		return fmt.Errorf("events: GlobalBurst (%d) must be at least 1 and GlobalRefill (%s) positive", c.GlobalBurst, c.GlobalRefill)
	case c.MaxSimilar < 1 || c.SimilarWindow <= 0:
		return fmt.Errorf("events: MaxSimilar (%d) must be at least 1 and SimilarWindow (%s) positive", c.MaxSimilar, c.SimilarWindow)
	case c.MaxRemembered < 1:
		return fmt.Errorf("events: MaxRemembered must be at least 1, got %d", c.MaxRemembered)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("events: WriteTimeout must be positive, got %s", c.WriteTimeout)
	case c.MaxWriteAttempts < 1 || c.RetryBackoff <= 0:
		return fmt.Errorf("events: MaxWriteAttempts (%d) must be at least 1 and RetryBackoff (%s) positive", c.MaxWriteAttempts, c.RetryBackoff)
	}
	return nil
}

// Stats counts what a Recorder did with the events it was given.
type Stats struct {
	Emitted    uint64 // calls to Event
	Aggregated uint64 // folded into an event already queued
	Combined   uint64 // rewritten as "(combined from similar events)"
	Written    uint64 // writes that succeeded
	Retried    uint64 // writes that failed for a passing reason, queued again
	// DroppedFull and DroppedObject were dropped because the queue, or
	// the object's share of it, was full; WriteErrors failed to write
	// (rejected, or out of attempts).
	DroppedFull, DroppedObject, WriteErrors uint64
}

// pending is one Event waiting to be written: its content and how many
// times it happened since the last write.
type pending struct {
	key    string
	objKey string
	ev     api.Event // template: object, reason, message, type, source
	count  int32
	first  time.Time
	last   time.Time
	// failures counts the failed writes so far; no write before
	// notBefore.
	failures  int
	notBefore time.Time
}

// written is what the Recorder remembers of an Event it stored.
type written struct {
	count int32
	first time.Time
	rv    string
}

type similar struct {
	since    time.Time
	messages map[string]bool
}

// Recorder queues, aggregates, rate-limits and writes Events. Its methods
// are safe for concurrent use; a nil *Recorder records nothing.
type Recorder struct {
	cfg  Config
	wake chan struct{}

	mu         sync.Mutex
	queue      []string // keys of pending, in arrival order
	pending    map[string]*pending
	perObject  map[string]int // pending entries by object
	similar    map[string]*similar
	remembered map[string]written
	order      []string // keys of remembered, oldest first
	objBuckets map[string]*bucket
	global     bucket
	stats      Stats
}

// New checks cfg and makes a Recorder; Run writes what it records.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Recorder{
		cfg:        cfg,
		wake:       make(chan struct{}, 1),
		pending:    map[string]*pending{},
		perObject:  map[string]int{},
		similar:    map[string]*similar{},
		remembered: map[string]written{},
		objBuckets: map[string]*bucket{},
		global:     bucket{tokens: float64(cfg.GlobalBurst)},
	}, nil
}

// Emitter records events in the name of one component (source.component
// and reportingComponent). A nil *Emitter records nothing, so that loops
// may run without events in tests.
type Emitter struct {
	r         *Recorder
	component string
}

// For returns an Emitter for component.
func (r *Recorder) For(component string) *Emitter {
	if r == nil {
		return nil
	}
	return &Emitter{r: r, component: component}
}

// Event records one event of type typ (api.EventTypeNormal or Warning)
// about ref. It returns at once.
func (e *Emitter) Event(ref api.ObjectReference, typ, reason, message string) {
	if e == nil {
		return
	}
	e.r.record(e.component, ref, typ, reason, message)
}

// Eventf is Event with a formatted message.
func (e *Emitter) Eventf(ref api.ObjectReference, typ, reason, format string, args ...any) {
	if e == nil {
		return
	}
	e.r.record(e.component, ref, typ, reason, fmt.Sprintf(format, args...))
}

// Stats returns the counters so far.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// combinedPrefix starts the message of an Event that stands for similar
// events with different messages.
const combinedPrefix = "(combined from similar events): "

func (r *Recorder) record(component string, ref api.ObjectReference, typ, reason, message string) {
	now := r.cfg.Clock.Now()
	message = truncate(message, api.MaxEventMessageLength)
	ev := api.Event{
		InvolvedObject: ref, Reason: reason, Message: message, Type: typ,
		Source:             api.EventSource{Component: component, Host: r.cfg.Host},
		ReportingComponent: component, ReportingInstance: r.cfg.Host,
	}
	ev.InvolvedObject.ResourceVersion = "" // not part of what makes events the same
	ev.Namespace = api.EventNamespace(ref)
	objKey := ref.Kind + "/" + ref.Namespace + "/" + ref.Name + "/" + ref.UID

	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Emitted++
	key := Key(ev, false)
	if similarKey := Key(ev, true); r.isSimilar(similarKey, message, now) {
		ev.Message = truncate(combinedPrefix+message, api.MaxEventMessageLength)
		key = similarKey
		r.stats.Combined++
	}
	if p, ok := r.pending[key]; ok {
		p.count++
		p.last = now
		p.ev.Message = ev.Message // a combined event shows the latest message
		r.stats.Aggregated++
		return
	}
	switch {
	case len(r.pending) >= r.cfg.MaxPending:
		r.stats.DroppedFull++
		return
	case r.perObject[objKey] >= r.cfg.MaxPendingPerObject:
		r.stats.DroppedObject++
		return
	}
	r.pending[key] = &pending{key: key, objKey: objKey, ev: ev, count: 1, first: now, last: now}
	r.perObject[objKey]++
	r.queue = append(r.queue, key)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// isSimilar notes message under the similar-events key and reports
// whether it is beyond the MaxSimilar distinct messages of the window.
func (r *Recorder) isSimilar(key, message string, now time.Time) bool {
	s := r.similar[key]
	if s == nil || now.Sub(s.since) > r.cfg.SimilarWindow {
		if len(r.similar) >= r.cfg.MaxPending*4 {
			for k, o := range r.similar { // bounded: forget expired windows
				if now.Sub(o.since) > r.cfg.SimilarWindow {
					delete(r.similar, k)
				}
			}
			if len(r.similar) >= r.cfg.MaxPending*4 {
				return false // nothing expired: record apart, bounded by the queue
			}
		}
		s = &similar{since: now, messages: map[string]bool{}}
		r.similar[key] = s
	}
	if s.messages[message] {
		return false
	}
	if len(s.messages) >= r.cfg.MaxSimilar {
		return true
	}
	s.messages[message] = true
	return false
}

// Key names the Event e stands for: the involved object's name, a dot and
// 16 hex digits of a hash of the object, type, reason, source and (unless
// combined) message. The same event always gets the same name, whichever
// agent or leader writes it.
func Key(e api.Event, withoutMessage bool) string {
	r := e.InvolvedObject
	h := sha256.New()
	for _, s := range []string{r.Kind, r.Namespace, r.Name, r.UID, r.FieldPath, e.Type, e.Reason, e.Source.Component, e.Source.Host} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if !withoutMessage {
		h.Write([]byte(e.Message))
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	name := r.Name
	if max := api.DNS1123SubdomainMaxLength - len(sum) - 1; len(name) > max {
		name = strings.TrimRight(name[:max], ".-")
	}
	return name + "." + sum
}

// truncate cuts s to at most max bytes on a rune boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
