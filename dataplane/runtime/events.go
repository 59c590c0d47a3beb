package runtime

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
)

// EventType says what happened.
type EventType string

const (
	// EventExit: a container's main process exited (ExitCode, At).
	EventExit EventType = "Exit"
	// EventOOM: the kernel OOM-killed a process in the container. It comes
	// before the container's Exit; by then List reports OOMKilled.
	EventOOM EventType = "OOM"
	// EventResync: the event stream broke (containerd restarted) and was
	// re-established; exits during the gap may be lost, so List again.
	EventResync EventType = "Resync"
)

// Event is a task event of the runtime's namespace.
type Event struct {
	ID       string // container ID ("" for Resync)
	Type     EventType
	ExitCode int
	At       time.Time
}

// Events returns a channel of exit, OOM and resync events of the namespace
// until ctx is done (then the channel is closed). The channel is buffered
// (256); the watcher never blocks on a slow reader: when the buffer is full
// the event is dropped and counted (Dropped), and the reader must List to
// catch up, which the node loop does on every Resync and periodically.
func (r *Runtime) Events(ctx context.Context) (<-chan Event, error) {
	ch := r.events.subscribe(ctx)
	return ch, nil
}

// Dropped is how many events were dropped because a reader was behind.
func (r *Runtime) Dropped() uint64 { return r.events.dropped.Load() }

type eventHub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	closed  bool
	dropped atomic.Uint64
}

func newEventHub() *eventHub { return &eventHub{subs: map[chan Event]struct{}{}} }

func (h *eventHub) subscribe(ctx context.Context) chan Event {
	ch := make(chan Event, 256)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch
	}
	h.subs[ch] = struct{}{}
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}()
	return ch
}

func (h *eventHub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.dropped.Add(1)
		}
	}
}

func (h *eventHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// watchEvents follows containerd's exit and OOM events of our namespace
// until ctx is done, re-subscribing (after a reconnect if containerd went
// away) with a back-off of 50 ms to 2 s. On an OOM it labels the container
// before publishing, so the label is in place before the exit that follows.
func (r *Runtime) watchEvents(ctx context.Context) {
	defer r.watching.Done()
	backoff := 50 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		r.mu.Lock()
		c, gen := r.client, r.gen
		r.mu.Unlock()
		sctx, cancel := context.WithCancel(r.ns(ctx))
		filter := fmt.Sprintf(`namespace==%q,topic~="^/tasks/(exit|oom)$"`, r.cfg.Namespace)
		msgs, errs := c.Subscribe(sctx, filter)
		// The subscription is in place once containerd accepts it; a
		// version call on the same connection bounds how long that takes.
		if _, err := c.Version(sctx); err == nil {
			if !first {
				r.events.publish(Event{Type: EventResync, At: time.Now()})
			}
			first = false
			backoff = 50 * time.Millisecond
		}
		err := r.pump(sctx, c, msgs, errs)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && isUnavailable(err) {
			_ = r.reconnect(gen)
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if backoff *= 2; backoff > 2*time.Second {
			backoff = 2 * time.Second
		}
	}
}

func (r *Runtime) pump(ctx context.Context, c *client.Client, msgs <-chan *events.Envelope, errs <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return err
		case env := <-msgs:
			if env == nil || env.Event == nil {
				continue
			}
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			switch e := v.(type) {
			case *eventtypes.TaskExit:
				if e.ID != e.ContainerID {
					continue // an exec'd process, not the container
				}
				at := env.Timestamp
				if e.ExitedAt != nil {
					at = e.ExitedAt.AsTime()
				}
				r.events.publish(Event{ID: e.ContainerID, Type: EventExit, ExitCode: int(e.ExitStatus), At: at})
			case *eventtypes.TaskOOM:
				r.markOOM(ctx, c, e.ContainerID)
				r.events.publish(Event{ID: e.ContainerID, Type: EventOOM, At: env.Timestamp})
			}
		}
	}
}

func (r *Runtime) markOOM(ctx context.Context, c *client.Client, id string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	_, _ = ctr.SetLabels(ctx, map[string]string{LabelOOMKilled: "true"})
}
