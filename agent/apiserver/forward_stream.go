package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Streamed forwarding (issue 14): an agent that forwards writes to the
// leader keeps one long-lived request open to it, POST ForwardStreamPath,
// whose body is an unending sequence of request frames (forward_batch_serve.go's
// encoding) and whose response is the sequence of their answers, each
// numbered by its frame's place in the stream, in the order they are done.
// A write then costs the leader no request of its own (no headers, no
// "100 Continue" round trip, no proxy), the writes waiting at one moment
// leave in one write to the socket, and the leader's proposal batcher
// (consensus/batch.go) sees them together.
//
// Semantics are those of a write sent alone (forward_attempt.go) or in a
// batch (forward_batch.go):
//
//   - frames leave only once the leader accepted the stream (its 200), and
//     a write's frame only if the write is still waiting: a write given up
//     before its frame left is certainly not applied;
//   - each write has its own deadline and follows leadership on its own
//     (proxyBatched); an old leader refuses its frames with 503;
//   - when the leader stops reading (it shuts down), it says how many
//     frames it read in a last frame: the writes sent after those are
//     certainly not applied and go on a new stream (or to the new leader);
//     the writes of a stream that breaks with no such word are answered
//     504 (outcome unknown), as for a connection cut mid-request;
//   - a leader that does not take streams (404, 405, or 403 from an older
//     agent's rules) gets batches instead, for a while (streamRefusedFor).

// ForwardStreamPath is where agents open their streams of forwarded writes.
const ForwardStreamPath = "/v1/cluster/forward/stream"

// Limits and timings of streamed forwarding.
const (
	// maxStreamServing frames of one stream are served at once on the
	// leader; it reads no further until one is answered.
	maxStreamServing = 1024
	// maxStreamChunk bounds the bytes of frames taken from the queue at
	// once (one chunk of the request body).
	maxStreamChunk = maxBatchBodyBytes
	// maxStreamFrames bounds the frames one stream carries over its life;
	// the sender then closes it and opens another.
	maxStreamFrames = 1 << 30
	// streamRefusedFor: after a leader refused a stream, writes to it go
	// in batches for this long before a stream is tried again.
	streamRefusedFor = time.Minute
	// maxRestreams: a write whose stream ended before its frame was read
	// goes on a new stream at most this many times.
	maxRestreams = 2
	// streamBufSize: each end's buffers. Small: a leader holds one
	// stream per agent that forwards (a thousand at a thousand hosts);
	// frames are small, and larger ones are read and written whole.
	streamBufSize = 8 << 10
	// maxKeptBuf: a frame buffer that grew larger is dropped after use.
	maxKeptBuf = 64 << 10
	// pruneStreamQueue: a queue this long drops the writes given up.
	pruneStreamQueue  = 256
	streamContentType = "application/vnd.shoal.forward-stream"
	// endFrameStatus marks the leader's last frame: its number is the
	// count of frames it read.
	endFrameStatus = 0
)

// streamIdle: a stream that carried nothing for this long is closed by
// its sender once its answers are in. A variable: tests shorten it, so
// that their servers' Close does not wait for idle streams.
var streamIdle = 15 * time.Second

// errStreamEnded: a stream ended before its sender had sent a frame.
var errStreamEnded = errors.New("the stream to the leader ended")

// fwdStreams holds this agent's streams, one per upstream.
type fwdStreams struct {
	f       *forwarder
	mu      sync.Mutex
	open    map[string]*fwdStream
	refused map[string]time.Time // upstream -> until when it gets batches
	stopped bool
	done    chan struct{} // closed by stop
}

func newFwdStreams(f *forwarder) *fwdStreams {
	return &fwdStreams{f: f, open: map[string]*fwdStream{}, refused: map[string]time.Time{}, done: make(chan struct{})}
}

// stop closes every stream once its writes are answered; writes forwarded
// later go in batches.
func (s *fwdStreams) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.done)
	}
}

func (s *fwdStreams) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// enqueue puts it on upstream's stream, opening one if needed. A write
// that no stream may carry (streams refused or stopped) is resolved with
// fallback: it then goes in a batch.
func (s *fwdStreams) enqueue(upstream string, it *fwdItem) {
	for {
		s.mu.Lock()
		if until, ok := s.refused[upstream]; s.stopped || ok && time.Now().Before(until) {
			s.mu.Unlock()
			it.resolve(itemAnswer{fallback: true})
			return
		}
		st := s.open[upstream]
		if st == nil {
			st = s.start(upstream)
			s.open[upstream] = st
		}
		s.mu.Unlock()
		if st.add(it) {
			return
		}
		s.forget(st) // it is closing: the next one takes the write
	}
}

// forget removes st from the open streams if it is still there.
func (s *fwdStreams) forget(st *fwdStream) {
	s.mu.Lock()
	if s.open[st.upstream] == st {
		delete(s.open, st.upstream)
	}
	s.mu.Unlock()
}

// refuse makes writes to upstream go in batches for a while.
func (s *fwdStreams) refuse(upstream string) {
	s.mu.Lock()
	s.refused[upstream] = time.Now().Add(streamRefusedFor)
	s.mu.Unlock()
}

// fwdStream is one stream to an upstream.
type fwdStream struct {
	s         *fwdStreams
	upstream  string
	ctx       context.Context
	cancel    context.CancelFunc
	ready     chan struct{} // closed once the leader accepted the stream, or it failed (readyOnce)
	readyOnce func()
	wake      chan struct{} // a write was queued (capacity 1)

	mu      sync.Mutex
	pending []*fwdItem          // queued, frames not yet sent
	sent    map[uint64]*fwdItem // frames sent and not yet answered, by number
	next    uint64              // the next frame's number
	closing bool                // takes no more writes
	readErr error               // set when the stream failed before it was ready
	pruneAt int                 // queue length at which add drops given-up writes
}

// start opens a stream to upstream in the background; s.mu is held.
func (s *fwdStreams) start(upstream string) *fwdStream {
	ctx, cancel := context.WithCancel(context.Background())
	st := &fwdStream{s: s, upstream: upstream, ctx: ctx, cancel: cancel,
		ready: make(chan struct{}), wake: make(chan struct{}, 1), sent: map[uint64]*fwdItem{}}
	st.readyOnce = sync.OnceFunc(func() { close(st.ready) })
	st.pruneAt = pruneStreamQueue
	go st.run()
	return st
}

// add queues it unless the stream is closing.
func (st *fwdStream) add(it *fwdItem) bool {
	st.mu.Lock()
	if st.closing {
		st.mu.Unlock()
		return false
	}
	if len(st.pending) >= st.pruneAt {
		// While a stream waits for its leader, writes given up stay
		// queued until it goes: drop them, bodies and all (again once
		// the queue has doubled, so that a long live queue is not
		// scanned at every write).
		st.pending = slices.DeleteFunc(st.pending, func(p *fwdItem) bool { return p.state.Load() != itemUnsent })
		st.pruneAt = max(pruneStreamQueue, 2*len(st.pending))
	}
	st.pending = append(st.pending, it)
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
	return true
}

// run opens the stream and reads its answers until it ends.
func (st *fwdStream) run() {
	f := st.s.f
	// The leader's "100 Continue" says its handler reads the stream:
	// frames may leave. (Go's server sends it on the handler's first
	// read; a server that refuses the stream answers without it, and the
	// body never leaves.)
	// A leader that does not take the stream within the forwarder's
	// timeout (paused, cut off) loses it: no frame left, so every write
	// on it is certainly not applied.
	notAccepted := time.AfterFunc(f.timeout, func() {
		select {
		case <-st.ready:
		default:
			st.cancel()
		}
	})
	defer notAccepted.Stop()
	// Nor is one still waiting for its leader when this agent stops.
	// (The transport reads no body before the 100 Continue: fill does
	// not run yet.)
	go func() {
		select {
		case <-st.ready:
		case <-st.ctx.Done():
		case <-st.s.done:
			select {
			case <-st.ready:
			default:
				st.cancel()
			}
		}
	}()
	accepted := st.readyOnce
	ctx := httptrace.WithClientTrace(st.ctx, &httptrace.ClientTrace{Got100Continue: accepted})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.scheme+"://"+st.upstream+ForwardStreamPath, &streamBody{st: st})
	if err != nil {
		st.fail(err, nil)
		return
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", streamContentType)
	req.Header.Set("Expect", "100-continue")
	req.Header.Set(ForwardedHeader, f.name)
	resp, err := f.transport.RoundTrip(req)
	if err != nil {
		var ans *itemAnswer
		if st.s.isStopped() {
			ans = &itemAnswer{fallback: true} // not on a stream, then
		}
		st.fail(fmt.Errorf("opening a stream: %w", err), ans)
		return
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed ||
		resp.StatusCode == http.StatusForbidden:
		// An older leader: it read no frame. Batches, then.
		resp.Body.Close()
		st.s.refuse(st.upstream)
		st.fail(fmt.Errorf("answered %s to a stream", resp.Status), &itemAnswer{fallback: true})
		return
	case resp.StatusCode != http.StatusOK:
		// Refused as a whole before any frame was read (authentication,
		// say): each write gets that answer.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		st.fail(fmt.Errorf("answered %s to a stream", resp.Status),
			&itemAnswer{status: resp.StatusCode, header: resp.Header, body: body})
		return
	}
	accepted()
	st.readAnswers(resp.Body)
}

// readAnswers hands each answer to its write until the stream ends.
func (st *fwdStream) readAnswers(body io.ReadCloser) {
	defer body.Close()
	br := bufio.NewReaderSize(body, streamBufSize)
	for {
		idx, ans, err := readResponseFrameUpTo(br, maxStreamFrames)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the leader's answers ended before this write's")
			}
			st.fail(err, nil)
			return
		}
		if ans.status == endFrameStatus {
			st.end(uint64(idx))
			return
		}
		st.mu.Lock()
		it := st.sent[uint64(idx)]
		delete(st.sent, uint64(idx))
		st.mu.Unlock()
		if it == nil {
			st.fail(fmt.Errorf("the leader answered frame %d, which is not waiting", idx), nil)
			return
		}
		it.resolve(ans)
	}
}

// end: the leader read read frames and serves no more. The writes whose
// frames it did not read go on a new stream; it answered the others.
func (st *fwdStream) end(read uint64) {
	st.mu.Lock()
	st.closing = true
	var again []*fwdItem
	for n, it := range st.sent {
		if n >= read && it.state.CompareAndSwap(itemSent, itemUnsent) {
			again = append(again, it)
		}
	}
	for n, it := range st.sent {
		if n >= read && it.state.Load() == itemUnsent {
			delete(st.sent, n)
		}
	}
	again = append(again, st.pending...)
	st.pending = nil
	st.mu.Unlock()
	st.s.forget(st)
	st.fail(errors.New("the leader closed the stream before answering this write"), nil)
	st.requeue(again)
}

// requeue sends writes that never reached a leader's handler on a new
// stream, up to maxRestreams times each.
func (st *fwdStream) requeue(items []*fwdItem) {
	for _, it := range items {
		if it.state.Load() != itemUnsent {
			continue
		}
		if it.restreams++; it.restreams > maxRestreams {
			it.resolve(itemAnswer{err: errStreamEnded})
			continue
		}
		st.s.enqueue(st.upstream, it)
	}
}

// fail ends the stream: the writes not yet sent with ans (nil: err, not
// delivered), those sent with err (delivered: the outcome is unknown).
func (st *fwdStream) fail(err error, ans *itemAnswer) {
	st.mu.Lock()
	st.closing = true
	if st.readErr == nil {
		st.readErr = err
	}
	pending, sent := st.pending, st.sent
	st.pending, st.sent = nil, map[uint64]*fwdItem{}
	st.mu.Unlock()
	st.readyOnce()
	st.s.forget(st)
	st.cancel()
	for _, it := range pending {
		if ans != nil {
			it.resolve(*ans)
		} else {
			it.resolve(itemAnswer{err: err})
		}
	}
	for _, it := range sent {
		it.resolve(itemAnswer{err: err, delivered: true})
	}
}

// streamBody is a stream's request body: the frames of the writes queued,
// taken when the transport reads, once the leader accepted the stream.
type streamBody struct {
	st  *fwdStream
	buf bytes.Buffer
}

func (b *streamBody) Read(p []byte) (int, error) {
	if b.buf.Len() == 0 {
		if b.buf.Cap() > maxKeptBuf {
			b.buf = bytes.Buffer{} // a large chunk is not kept for the stream's life
		}
		if err := b.st.fill(&b.buf); err != nil {
			return 0, err
		}
	}
	return b.buf.Read(p)
}

func (b *streamBody) Close() error { return nil }

// fill waits for writes and encodes their frames into buf; io.EOF ends the
// stream (idle, stopped, or its frame count used up).
func (st *fwdStream) fill(buf *bytes.Buffer) error {
	select {
	case <-st.ready:
	case <-st.ctx.Done():
		return errStreamEnded
	}
	idle := time.NewTimer(streamIdle)
	defer idle.Stop()
	idleFor := false
	for {
		st.mu.Lock()
		if st.readErr != nil {
			st.mu.Unlock()
			return errStreamEnded
		}
		n := 0
		for _, it := range st.pending {
			if buf.Len() >= maxStreamChunk || st.next >= maxStreamFrames {
				break
			}
			n++
			if !it.state.CompareAndSwap(itemUnsent, itemSent) {
				continue // given up while it waited
			}
			st.sent[st.next] = it
			st.next++
			writeRequestFrame(buf, it)
		}
		clear(st.pending[:n]) // the backing array keeps no body
		st.pending = st.pending[n:]
		if buf.Len() > 0 {
			st.mu.Unlock()
			return nil
		}
		stopping := false
		select {
		case <-st.s.done:
			stopping = true
		default:
		}
		if (idleFor || stopping || st.next >= maxStreamFrames) && len(st.pending) == 0 {
			// Nothing more goes on it; the leader answers what it
			// read, then ends the response.
			st.closing = true
			st.mu.Unlock()
			st.s.forget(st)
			return io.EOF
		}
		st.mu.Unlock()
		idleFor = false
		select {
		case <-st.wake:
		case <-idle.C:
			// The timer started when this call did, after the last
			// frames left: the stream carried nothing since.
			idleFor = true
			idle.Reset(streamIdle)
		case <-st.s.done:
		case <-st.ctx.Done():
			return errStreamEnded
		}
	}
}

// serveStream serves POST ForwardStreamPath: each frame of the body is
// served as the request it carries, by f.serveFrame (authentication
// included), as soon as it is read; each answer goes back as soon as it
// is done. When this agent's server shuts down, the stream stops reading,
// answers what it read and says how many frames that was.
func (f *forwarder) serveStream(w http.ResponseWriter, r *http.Request) {
	if !f.agentPost(w, r, ForwardStreamPath) {
		return
	}
	select {
	case <-f.streams.done:
		// Shutting down: no frame was read; the sender's writes get this
		// answer (and follow leadership if it moved).
		f.writeStatus(w, r, api.NewServiceUnavailable("this agent is shutting down"))
		return
	default:
	}
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		f.writeStatus(w, r, api.NewInternalError(fmt.Errorf("%s: %w", ForwardStreamPath, err)))
		return
	}
	// The frames' requests end when the stream does, but take none of its
	// context's values: each is authenticated on its own.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(r.Context(), cancel)()
	// Stop reading when the server shuts down: a read in progress is cut
	// by a deadline in the past.
	stopRead := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-f.streams.done:
			rc.SetReadDeadline(time.Now())
		case <-stopRead:
		}
	}()

	// The answers' header goes with the first answer: written before the
	// first read of the body, it would keep Go's server from sending the
	// "100 Continue" the sender waits for.
	type answer struct {
		idx uint64
		rec *frameRecorder
	}
	answers := make(chan answer, maxStreamServing)
	slots := make(chan struct{}, maxStreamServing)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		bw := bufio.NewWriterSize(w, streamBufSize)
		var buf bytes.Buffer
		failed, started := false, false
		for a := range answers {
			if failed {
				continue
			}
			if !started {
				started = true
				w.Header().Set("Content-Type", streamContentType)
				w.WriteHeader(http.StatusOK)
			}
			buf.Reset()
			if a.rec == nil {
				putUvarint(&buf, a.idx)
				putUvarint(&buf, endFrameStatus)
			} else {
				writeAnswerFrame(&buf, int(a.idx), a.rec)
			}
			bw.Write(buf.Bytes())
			if buf.Cap() > maxKeptBuf {
				buf = bytes.Buffer{} // a large answer is not kept for the stream's life
			}
			if len(answers) == 0 {
				if bw.Flush() != nil || rc.Flush() != nil {
					failed = true
					cancel() // the sender is gone: so are the answers
				}
			}
		}
		bw.Flush()
	}()

	br := bufio.NewReaderSize(r.Body, streamBufSize)
	var wg sync.WaitGroup
	var n uint64
	var readErr error
	for ; n < maxStreamFrames; n++ {
		fr, err := readRequestFrame(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // the sender is gone
		}
		wg.Add(1)
		go func(idx uint64, fr frameRequest) {
			defer wg.Done()
			growStack()
			answers <- answer{idx, f.serveFrame(ctx, r, fr)}
			<-slots
		}(n, fr)
	}
	close(stopRead)
	<-stopped
	shutdown := false
	select {
	case <-f.streams.done:
		shutdown = true
	default:
	}
	if readErr != nil && !shutdown {
		f.log.Warn("forward: a stream ended mid-frame; the writes after it get no answer", "from", r.RemoteAddr, "err", readErr)
	}
	wg.Wait()
	if shutdown || n == maxStreamFrames {
		// Tell the sender how many frames were read: the rest are
		// certainly not applied and go elsewhere.
		answers <- answer{idx: n}
	}
	close(answers)
	<-writerDone
}
