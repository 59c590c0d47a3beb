package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Batched forwarding (issue 14): a write that a follower or a non-voter
// forwards to the leader does not travel as an HTTP request of its own.
// The writes waiting for the same leader at the same moment go together,
// as frames of one POST ForwardBatchPath, and the leader answers each in a
// frame of that POST's response as soon as it is done. At most
// maxInflightForwardBatches requests per leader (batches waiting for their
// first answer, or writes sent alone) are under way; writes that arrive
// meanwhile form the next, larger batch, so under load
// the connection, its syscalls and its wake-ups are paid once per batch,
// and the leader's proposal batcher (consensus/batch.go) sees the writes
// together. Under light load a write finds nothing under way and goes
// alone, as an ordinary request (forward_attempt.go), without the batch's
// hand-offs between goroutines.
//
// Semantics are those of a request proxied alone (forward_attempt.go):
//
//   - the batch is sent with "Expect: 100-continue", and a write's frame is
//     put into the batch body only when the leader reads that far, and
//     only if the write is still waiting: a write given up before its
//     frame left is certainly not applied (503, or sent to a new leader);
//     once it left, a give-up is 504 (outcome unknown);
//   - each write has its own deadline and follows leadership on its own;
//   - on the leader each frame is served as the request it carries, by the
//     same handlers (authentication with the user's token, or the agent's
//     certificate for an agent's own writes, then authorisation and
//     NodeRestriction), as the forwarded request it is: an agent that lost
//     leadership refuses it with 503;
//   - a leader that does not take batches (404, 405, or 403 from an older
//     agent's rules) gets the write as a request of its own.

// ForwardBatchPath is where agents send batches of forwarded writes.
const ForwardBatchPath = "/v1/cluster/forward"

// Limits of batched forwarding.
const (
	// maxInflightForwardBatches batches per leader may wait for their
	// first answer.
	maxInflightForwardBatches = 2
	// maxBatchItems and maxBatchBodyBytes bound one batch; a batch is
	// closed once it reaches either.
	maxBatchItems     = 256
	maxBatchBodyBytes = 4 << 20
	// maxBatchedBody: a write with a larger body is proxied alone.
	maxBatchedBody = 1 << 20
	// maxBatchAnswerBody bounds one answer's body in a batch response.
	maxBatchAnswerBody = 64 << 20
	// batchContentType marks batch bodies.
	batchContentType = "application/vnd.shoal.forward-batch"
)

// States of a batched write.
const (
	itemUnsent  int32 = iota // waiting; its frame has not left
	itemSent                 // its frame was put into a batch body: it may arrive
	itemDone                 // answered, failed, or given up after it was sent
	itemDropped              // given up before it was sent: it never leaves
)

// fwdItem is one write waiting to be sent in a batch.
type fwdItem struct {
	method, uri string
	header      http.Header
	body        []byte
	state       atomic.Int32
	batch       atomic.Pointer[fwdBatch] // set once it is taken into a batch
	counted     atomic.Bool              // its end was counted in batch.left
	restreams   int                      // times it was put on a new stream (forward_stream.go)
	done        chan itemAnswer          // buffered: the sender never blocks
}

// itemAnswer is how a batched write ended, as the sender saw it.
type itemAnswer struct {
	status int
	header http.Header
	body   []byte
	// err: no answer (the batch failed, or its answer ended early);
	// delivered says whether the write's frame had left.
	err       error
	delivered bool
	// fallback: the leader does not take batches; send the write alone.
	fallback bool
}

// resolve ends it from the sender's side, unless its waiter gave up first.
func (it *fwdItem) resolve(ans itemAnswer) {
	for {
		switch s := it.state.Load(); s {
		case itemUnsent, itemSent:
			if !it.state.CompareAndSwap(s, itemDone) {
				continue
			}
			if s == itemUnsent && ans.err != nil {
				ans.delivered = false
			}
			it.done <- ans
			it.settle(false)
		}
		return
	}
}

// settle counts it as ended in its batch, once. gaveUp: its waiter gave it
// up; when the last write of a batch is given up, nobody waits for the
// batch any more and its request is cancelled. (A batch whose last write
// was answered ends when its answer is read whole, which keeps the
// connection for the next batch.)
func (it *fwdItem) settle(gaveUp bool) {
	if b := it.batch.Load(); b != nil && it.counted.CompareAndSwap(false, true) {
		if b.left.Add(-1) == 0 && gaveUp {
			b.cancel()
		}
	}
}

// fwdBatch is the batch being sent to one upstream.
type fwdBatch struct {
	items  []*fwdItem
	left   atomic.Int32 // items not yet settled
	cancel context.CancelFunc
	mu     sync.Mutex
	sent   []*fwdItem // in frame order: the leader numbers its answers so
}

// batchBody is a batch's request body: each item's frame is encoded when
// the transport reads that far, and only if the item is still waiting.
type batchBody struct {
	b    *fwdBatch
	next int
	buf  bytes.Buffer
}

func (r *batchBody) Read(p []byte) (int, error) {
	for r.buf.Len() == 0 {
		if r.next == len(r.b.items) {
			return 0, io.EOF
		}
		it := r.b.items[r.next]
		r.next++
		if !it.state.CompareAndSwap(itemUnsent, itemSent) {
			continue // given up meanwhile
		}
		r.b.mu.Lock()
		r.b.sent = append(r.b.sent, it)
		r.b.mu.Unlock()
		writeRequestFrame(&r.buf, it)
	}
	return r.buf.Read(p)
}

func (r *batchBody) Close() error { return nil }

// upstreamQueue holds the writes waiting for one upstream.
type upstreamQueue struct {
	pending  []*fwdItem
	inflight int // sender goroutines and writes gone alone
}

// fwdBatcher gathers writes per upstream and sends them in batches.
type fwdBatcher struct {
	f        *forwarder
	mu       sync.Mutex
	queues   map[string]*upstreamQueue
	enqueued atomic.Int64 // writes ever queued
	// batchAll puts every write in a batch, none alone
	// (ForwarderConfig.BatchAlways).
	batchAll atomic.Bool
}

// queue is upstream's queue; q.mu must be held.
func (q *fwdBatcher) queue(upstream string) *upstreamQueue {
	uq := q.queues[upstream]
	if uq == nil {
		uq = &upstreamQueue{}
		q.queues[upstream] = uq
	}
	return uq
}

// alone reports whether a write to upstream may go at once as a request of
// its own: nothing waits for upstream and fewer than
// maxInflightForwardBatches requests (batches or writes alone) are under
// way. It then counts as one of those until done(upstream). Under light
// load every write goes alone, as fast as before batching; the writes
// that arrive while the leader is busy form batches.
func (q *fwdBatcher) alone(upstream string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	uq := q.queue(upstream)
	if len(uq.pending) > 0 || uq.inflight >= maxInflightForwardBatches || q.batchAll.Load() {
		return false
	}
	uq.inflight++
	return true
}

// done ends a write that went alone; the writes that queued meanwhile go.
func (q *fwdBatcher) done(upstream string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	uq := q.queue(upstream)
	if len(uq.pending) > 0 {
		go q.run(upstream, uq) // takes over the slot
		return
	}
	uq.inflight--
	if uq.inflight == 0 && q.queues[upstream] == uq {
		delete(q.queues, upstream)
	}
}

// enqueue adds it to upstream's queue, and starts a sender if fewer than
// maxInflightForwardBatches requests are under way. Senders end when the
// queue is empty.
func (q *fwdBatcher) enqueue(upstream string, it *fwdItem) {
	q.enqueued.Add(1)
	q.mu.Lock()
	defer q.mu.Unlock()
	uq := q.queue(upstream)
	uq.pending = append(uq.pending, it)
	if uq.inflight < maxInflightForwardBatches {
		uq.inflight++
		go q.run(upstream, uq)
	}
}

// run sends batches to upstream while writes wait for it.
func (q *fwdBatcher) run(upstream string, uq *upstreamQueue) {
	for {
		q.mu.Lock()
		var items []*fwdItem
		size, n := 0, 0
		for _, it := range uq.pending {
			if len(items) > 0 && (len(items) >= maxBatchItems || size+len(it.body) > maxBatchBodyBytes) {
				break
			}
			n++
			if it.state.Load() != itemUnsent {
				continue // given up while it waited here
			}
			items = append(items, it)
			size += len(it.body)
		}
		uq.pending = uq.pending[n:]
		if len(items) == 0 {
			uq.inflight--
			if uq.inflight == 0 && len(uq.pending) == 0 && q.queues[upstream] == uq {
				delete(q.queues, upstream)
			}
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		q.send(upstream, items)
	}
}

// send sends one batch and returns once its first answer came (or it
// failed); the rest of the answers are read in the background.
func (q *fwdBatcher) send(upstream string, items []*fwdItem) {
	f := q.f
	ctx, cancel := context.WithCancel(context.Background())
	b := &fwdBatch{items: items, cancel: cancel}
	b.left.Store(int32(len(items)))
	for _, it := range items {
		it.batch.Store(b)
		if it.state.Load() == itemDropped {
			it.settle(true) // given up between the queue and here
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.scheme+"://"+upstream+ForwardBatchPath, &batchBody{b: b})
	if err != nil {
		q.fail(b, nil, err)
		return
	}
	req.Header.Set("Content-Type", batchContentType)
	req.Header.Set("Expect", "100-continue")
	resp, err := f.transport.RoundTrip(req)
	if err != nil {
		q.fail(b, nil, err)
		return
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed ||
		resp.StatusCode == http.StatusForbidden:
		// A leader that does not know batches (an older agent: 404, or
		// 403 from its rules) read no frame: each write goes alone.
		resp.Body.Close()
		q.fail(b, &itemAnswer{fallback: true}, fmt.Errorf("answered %s to a batch", resp.Status))
		return
	case resp.StatusCode != http.StatusOK:
		// Refused as a whole (by authentication, say) before any frame
		// was read: each write gets that answer.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		q.fail(b, &itemAnswer{status: resp.StatusCode, header: resp.Header, body: body},
			fmt.Errorf("answered %s to a batch after reading it", resp.Status))
		return
	}
	first := make(chan struct{})
	go q.readAnswers(b, resp.Body, first)
	<-first
}

// fail ends every item of b still open: those never sent with ans (nil: err,
// not delivered), those sent with err (delivered).
func (q *fwdBatcher) fail(b *fwdBatch, ans *itemAnswer, err error) {
	for _, it := range b.items {
		if ans != nil && it.state.Load() == itemUnsent {
			it.resolve(*ans)
			continue
		}
		it.resolve(itemAnswer{err: err, delivered: true})
	}
	b.cancel()
}

// readAnswers reads b's answer frames and hands each to its item; first is
// closed after the first one (or at the end).
func (q *fwdBatcher) readAnswers(b *fwdBatch, body io.ReadCloser, first chan struct{}) {
	once := sync.OnceFunc(func() { close(first) })
	defer once()
	b.mu.Lock()
	sent := b.sent
	b.mu.Unlock()
	br := bufio.NewReaderSize(body, 32<<10)
	var err error
	for answered := 0; ; answered++ {
		var idx int
		var ans itemAnswer
		idx, ans, err = readResponseFrame(br)
		if err != nil {
			break
		}
		if idx >= len(sent) {
			err = fmt.Errorf("the leader answered frame %d of a batch of %d", idx, len(sent))
			break
		}
		if answered == len(sent)-1 {
			// The last answer: read the end of the stream first, so
			// that the connection is back in the pool before the
			// writer, answered, sends its next write.
			if _, err = br.Peek(1); err == nil {
				err = errors.New("the leader's answer to the batch goes on after its last write's")
			}
			body.Close()
		}
		sent[idx].resolve(ans)
		once()
		if answered == len(sent)-1 {
			break
		}
	}
	// Read whole and closed before fail cancels the request: the
	// connection goes back to the pool.
	body.Close()
	if errors.Is(err, io.EOF) {
		err = errors.New("the leader's answer to the batch ended before this write's")
	}
	q.fail(b, nil, err)
}

// forwardOnce sends r (whose body is body) to the leader at upstream once:
// in a batch, or alone (see fwdBatcher.alone).
func (f *forwarder) forwardOnce(w http.ResponseWriter, r *http.Request, upstream string, body requestBody, timeout time.Duration) attemptResult {
	moved := f.movedFrom(upstream)
	if f.batchable(r, body) {
		if f.streamsOut {
			res := f.proxyBatched(w, r, upstream, body.data, moved, timeout, f.streams.enqueue)
			if !res.fallback {
				return res
			}
		}
		if !f.batch.alone(upstream) {
			res := f.proxyBatched(w, r, upstream, body.data, moved, timeout, f.batch.enqueue)
			if !res.fallback {
				return res
			}
		} else {
			defer f.batch.done(upstream)
		}
	}
	rd, length := body.reader()
	return f.proxy(w, r, upstream, rd, length, moved, timeout)
}

// batchable reports whether r, whose body is body, goes in a batch.
func (f *forwarder) batchable(r *http.Request, body requestBody) bool {
	return f.batch != nil && isResourcePath(r.URL.Path) && body.whole &&
		len(body.data) > 0 && len(body.data) <= maxBatchedBody && r.Header.Get("Upgrade") == ""
}

// hopHeaders are not passed on (RFC 9110 7.6.1), nor Expect.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect", "Content-Length"}

// proxyBatched is proxy for a write sent in a batch or on a stream
// (enqueue hands it to either): it sends r (with body) to upstream and
// copies the answer to w, giving up as proxy does.
func (f *forwarder) proxyBatched(w http.ResponseWriter, r *http.Request, upstream string, body []byte, moved func() string, timeout time.Duration, enqueue func(string, *fwdItem)) attemptResult {
	h := r.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Set(ForwardedHeader, f.name)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	it := &fwdItem{method: r.Method, uri: r.URL.RequestURI(), header: h, body: body, done: make(chan itemAnswer, 1)}
	enqueue(upstream, it)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	gone := false
	changed, release, cause := f.followMoves(moved)
	defer release()
wait:
	for cause == nil {
		select {
		case ans := <-it.done:
			return f.deliver(w, r, ans, moved)
		case <-timer.C:
			cause = fmt.Errorf("%w within %v", errNoAnswer, timeout.Round(10*time.Millisecond))
			break wait
		case <-changed:
			changed, cause = f.movedAgain(moved)
		case <-r.Context().Done():
			cause, gone = r.Context().Err(), true
			break wait
		}
	}
	// A loop: a stream that ends unread turns a sent write back to
	// unsent (fwdStream.end) between two of these checks.
	for {
		switch it.state.Load() {
		case itemUnsent:
			if it.state.CompareAndSwap(itemUnsent, itemDropped) {
				it.settle(true)
				return attemptResult{answered: gone, err: cause}
			}
		case itemSent:
			if it.state.CompareAndSwap(itemSent, itemDone) {
				it.settle(true)
				return attemptResult{answered: gone, delivered: true, err: cause}
			}
		default:
			return f.deliver(w, r, <-it.done, moved) // the answer came at the same moment
		}
	}
}

// deliver passes a batched write's answer to w, or says why it could not.
func (f *forwarder) deliver(w http.ResponseWriter, r *http.Request, ans itemAnswer, moved func() string) attemptResult {
	switch {
	case ans.fallback:
		return attemptResult{fallback: true}
	case ans.err != nil:
		return attemptResult{err: ans.err, delivered: ans.delivered}
	}
	if ans.status == http.StatusServiceUnavailable && moved != nil {
		if to := moved(); to != "" {
			// An old leader refused it (not applied): the new one may
			// take it.
			return attemptResult{err: fmt.Errorf("answered 503 (%s), and %w to %s", statusMessage(bytes.NewReader(ans.body)), errLeaderMoved, to)}
		}
	}
	for k, vs := range ans.header {
		w.Header()[k] = vs
	}
	for _, k := range hopHeaders {
		w.Header().Del(k)
	}
	w.WriteHeader(ans.status)
	w.Write(ans.body)
	return attemptResult{answered: true, troubled: ans.status == http.StatusServiceUnavailable}
}
