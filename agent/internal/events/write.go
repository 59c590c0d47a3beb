package events

import (
	"context"
	"errors"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// bucket is a token bucket: up to burst tokens, one more each refill.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) fill(now time.Time, burst int, refill time.Duration) {
	if !b.at.IsZero() && now.After(b.at) {
		b.tokens += float64(now.Sub(b.at)) / float64(refill)
	}
	if b.tokens > float64(burst) {
		b.tokens = float64(burst)
	}
	if now.After(b.at) || b.at.IsZero() {
		b.at = now
	}
}

// ready is when the bucket will next hold a whole token.
func (b *bucket) ready(refill time.Duration) time.Time {
	if b.tokens >= 1 {
		return b.at
	}
	return b.at.Add(time.Duration((1 - b.tokens) * float64(refill)))
}

// maxIdleWait bounds how long Run waits with nothing queued before it
// looks again (the wake channel normally ends the wait first).
const maxIdleWait = time.Minute

// Run writes queued events until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	if r == nil {
		return
	}
	for {
		next := r.Flush(ctx)
		wait := maxIdleWait
		if !next.IsZero() {
			wait = min(max(next.Sub(r.cfg.Clock.Now()), time.Millisecond), maxIdleWait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Flush writes every queued event the rate limits allow now, oldest
// first, and returns when the next held-back one may go (zero: none
// waits). Run calls it; tests call it with a fake clock.
func (r *Recorder) Flush(ctx context.Context) time.Time {
	for ctx.Err() == nil {
		p, next := r.take()
		if p == nil {
			return next
		}
		r.write(ctx, p)
	}
	return time.Time{}
}

// take removes the oldest queued event whose object and the recorder may
// write now. With none, it returns when one may.
func (r *Recorder) take() (*pending, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Clock.Now()
	r.global.fill(now, r.cfg.GlobalBurst, r.cfg.GlobalRefill)
	if len(r.queue) == 0 {
		r.pruneBuckets(now)
		return nil, time.Time{}
	}
	if r.global.tokens < 1 {
		return nil, r.global.ready(r.cfg.GlobalRefill)
	}
	var next time.Time
	for i, key := range r.queue {
		p := r.pending[key]
		if p.notBefore.After(now) {
			if next.IsZero() || p.notBefore.Before(next) {
				next = p.notBefore
			}
			continue
		}
		b := r.objBuckets[p.objKey]
		if b == nil {
			b = &bucket{tokens: float64(r.cfg.PerObjectBurst), at: now}
			r.objBuckets[p.objKey] = b
		}
		b.fill(now, r.cfg.PerObjectBurst, r.cfg.PerObjectRefill)
		if b.tokens < 1 {
			if t := b.ready(r.cfg.PerObjectRefill); next.IsZero() || t.Before(next) {
				next = t
			}
			continue
		}
		b.tokens--
		r.global.tokens--
		r.queue = append(r.queue[:i:i], r.queue[i+1:]...)
		delete(r.pending, key)
		if r.perObject[p.objKey]--; r.perObject[p.objKey] <= 0 {
			delete(r.perObject, p.objKey)
		}
		return p, time.Time{}
	}
	return nil, next
}

// pruneBuckets forgets the buckets that are full again: they hold no
// state a new bucket would not.
func (r *Recorder) pruneBuckets(now time.Time) {
	if len(r.objBuckets) < r.cfg.MaxRemembered {
		return
	}
	for k, b := range r.objBuckets {
		b.fill(now, r.cfg.PerObjectBurst, r.cfg.PerObjectRefill)
		if b.tokens >= float64(r.cfg.PerObjectBurst) {
			delete(r.objBuckets, k)
		}
	}
}

// maxRaceRounds bounds the create/read/update round of one event that
// keeps losing races with another writer.
const maxRaceRounds = 3

// write stores p: an update of the Event remembered under its key, else a
// create; a create that finds the Event there reads it and adds to its
// count. Failures are counted and logged, never returned.
func (r *Recorder) write(ctx context.Context, p *pending) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
	defer cancel()
	r.mu.Lock()
	w, known := r.remembered[p.key]
	r.mu.Unlock()
	var err error
	for attempt := 0; attempt < maxRaceRounds; attempt++ {
		var out *api.Event
		if known {
			e := r.event(p, w.count+p.count, w.first, w.rv)
			out, err = r.cfg.Writer.UpdateEvent(ctx, e)
		} else {
			out, err = r.cfg.Writer.CreateEvent(ctx, r.event(p, p.count, p.first, ""))
		}
		if err == nil {
			r.remember(p.key, written{count: out.Count, first: out.FirstTimestamp.Time, rv: out.ResourceVersion})
			r.mu.Lock()
			r.stats.Written++
			r.mu.Unlock()
			return
		}
		switch {
		case errors.Is(err, ErrRejected):
			attempt = maxRaceRounds
		case errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrConflict):
			cur, gerr := r.cfg.Writer.GetEvent(ctx, p.ev.Namespace, p.key)
			if gerr != nil {
				err = gerr
				known = false
				continue
			}
			w, known = written{count: cur.Count, first: cur.FirstTimestamp.Time, rv: cur.ResourceVersion}, true
		case errors.Is(err, ErrNotFound):
			known = false // collected meanwhile: start a new one
		default:
			if r.requeue(p) {
				r.cfg.Logger.Debug("event not written yet; will retry", "event", p.key, "reason", p.ev.Reason, "failures", p.failures, "err", err)
				return
			}
			attempt = maxRaceRounds
		}
	}
	r.forget(p.key)
	r.mu.Lock()
	r.stats.WriteErrors++
	r.mu.Unlock()
	r.cfg.Logger.Debug("event not written", "event", p.key, "reason", p.ev.Reason, "err", err)
}

// requeue puts p back in the queue after a write failed for a passing
// reason, to be tried again after a back-off, folded into the same event
// if it was recorded again meanwhile. It reports false when p has used
// its attempts.
func (r *Recorder) requeue(p *pending) bool {
	p.failures++
	if p.failures >= r.cfg.MaxWriteAttempts {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Retried++
	p.notBefore = r.cfg.Clock.Now().Add(r.cfg.RetryBackoff << (p.failures - 1))
	if q, ok := r.pending[p.key]; ok {
		q.count += p.count
		if p.first.Before(q.first) {
			q.first = p.first
		}
		q.failures, q.notBefore = p.failures, p.notBefore
		return true
	}
	r.pending[p.key] = p
	r.perObject[p.objKey]++
	r.queue = append(r.queue, p.key)
	return true
}

// event builds the object to store for p.
func (r *Recorder) event(p *pending, count int32, first time.Time, rv string) *api.Event {
	e := p.ev
	e.TypeMeta = api.TypeMeta{APIVersion: "v1", Kind: "Event"}
	e.Name, e.ResourceVersion = p.key, rv
	e.Count = count
	if first.IsZero() || p.first.Before(first) {
		first = p.first
	}
	e.FirstTimestamp, e.LastTimestamp = api.NewTime(first), api.NewTime(p.last)
	if e.LastTimestamp.Before(e.FirstTimestamp.Time) {
		e.LastTimestamp = e.FirstTimestamp
	}
	return &e
}

func (r *Recorder) remember(key string, w written) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.remembered[key]; !ok {
		r.order = append(r.order, key)
		for len(r.order) > r.cfg.MaxRemembered {
			delete(r.remembered, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.remembered[key] = w
}

func (r *Recorder) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.remembered, key) // its order entry goes when it comes up
}
