package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/shoal-dev/shoal/api"
)

// The receiving end of batched forwarding (forward_batch.go), and the
// frames both ends exchange. A request frame is the method, the request
// URI (path and query), the headers and the body; an answer frame is the
// request frame's number in its batch (from 0), the status, the headers
// and the body. Strings and byte slices are a uvarint length and the
// bytes; a header is a count of name, value pairs.

// Limits of one frame, checked on reading.
const (
	maxFrameMethod      = 16
	maxFrameURI         = 16 << 10
	maxFrameHeaders     = 128
	maxFrameHeaderName  = 256
	maxFrameHeaderValue = 32 << 10
)

// serveBatch serves POST ForwardBatchPath: each frame of the body is served
// as the request it carries, by f.serveFrame (authentication included), at
// once; once the body is read, the answers are streamed back in the order
// they are done.
func (f *forwarder) serveBatch(w http.ResponseWriter, r *http.Request) {
	if !f.agentPost(w, r, ForwardBatchPath) {
		return
	}
	// The frames' requests end when the batch does (the sender gave up on
	// all of them) but take none of its context's values: each is
	// authenticated on its own.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(r.Context(), cancel)()

	type answer struct {
		idx int
		rec *frameRecorder
	}
	answers := make(chan answer, maxBatchItems)
	br := bufio.NewReaderSize(r.Body, 32<<10)
	n := 0
	var readErr error
	// Each frame is served in a goroutine of its own once the next one
	// arrives; the last one, here (a batch of one costs no goroutine).
	var last *frameRequest
	for ; n < maxBatchItems; n++ {
		req, err := readRequestFrame(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		if last != nil {
			go func(idx int, fr frameRequest) {
				growStack()
				answers <- answer{idx, f.serveFrame(ctx, r, fr)}
			}(n-1, *last)
		}
		last = &req
	}
	if last != nil {
		answers <- answer{n - 1, f.serveFrame(ctx, r, *last)}
	}
	if readErr != nil {
		f.log.Warn("forward: a batch frame is malformed; the writes after it get no answer", "from", r.RemoteAddr, "err", readErr)
	}
	if n == 0 {
		if readErr != nil {
			f.writeStatus(w, r, api.NewBadRequest("%s: %v", ForwardBatchPath, readErr))
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", batchContentType)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	var buf bytes.Buffer
	for i := range n {
		a := <-answers
		buf.Reset()
		writeAnswerFrame(&buf, a.idx, a.rec)
		bw.Write(buf.Bytes())
		if len(answers) == 0 && i < n-1 {
			bw.Flush()
			rc.Flush()
		}
	}
	// The last answer leaves with the end of the response, in one write.
	bw.Flush()
}

// agentPost reports whether r is a POST from an agent, and answers 405 or
// 403 if not. Frames are served with the connection's TLS state, which
// makes their X-Shoal-* headers trusted: only agents may send them.
func (f *forwarder) agentPost(w http.ResponseWriter, r *http.Request, path string) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		f.writeStatus(w, r, api.NewStatusError(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, nil, "%s takes POST only", path))
		return false
	}
	if f.scheme != "https" {
		return true
	}
	if id, ok := IdentityFrom(r.Context()); !ok || id.Node == "" {
		f.writeStatus(w, r, api.NewStatusError(http.StatusForbidden, ReasonForbidden, nil, "only agents (by their certificate) may send %s", path))
		return false
	}
	return true
}

// growStack grows a new goroutine's stack to 32 KiB while it is shallow.
// A frame's goroutine starts with a small stack and serving a write takes
// it deep (authentication, the handler, the proposal's JSON encoding):
// each time it outgrows its stack, the runtime copies every frame on it
// and adjusts their pointers, which took 14% of a leader's CPU under
// forwarded writes (64 writers spread over the agents). Growing once at
// the top copies one frame.
//
//go:noinline
func growStack() {
	var pad [16 << 10]byte
	touchStack(pad[:])
}

//go:noinline
func touchStack(b []byte) { b[0] = 1 }

// frameRequest is a request read from a frame.
type frameRequest struct {
	method, uri string
	header      http.Header
	body        []byte
}

// serveFrame serves one frame's request as batch's connection received it
// and records the answer.
func (f *forwarder) serveFrame(ctx context.Context, batch *http.Request, fr frameRequest) (rec *frameRecorder) {
	rec = &frameRecorder{header: http.Header{}}
	defer func() {
		if p := recover(); p != nil {
			f.log.Error("forward: a batched request panicked", "method", fr.method, "uri", fr.uri, "panic", p)
			rec = &frameRecorder{header: http.Header{}}
			rec.status(api.NewInternalError(fmt.Errorf("serving the forwarded request panicked")))
		}
	}()
	req, err := http.NewRequestWithContext(ctx, fr.method, fr.uri, bytes.NewReader(fr.body))
	switch {
	case err != nil:
		rec.status(api.NewBadRequest("a batched request: %v", err))
		return rec
	case !isWrite(req.Method) || !isResourcePath(req.URL.Path):
		rec.status(api.NewBadRequest("a batch carries writes of resources only, not %s %s", req.Method, req.URL.Path))
		return rec
	}
	req.Header = fr.header
	req.RequestURI = fr.uri
	req.Host = batch.Host
	req.RemoteAddr = batch.RemoteAddr
	req.TLS = batch.TLS
	req.Proto, req.ProtoMajor, req.ProtoMinor = batch.Proto, batch.ProtoMajor, batch.ProtoMinor
	f.frames.ServeHTTP(rec, req)
	return rec
}

// frameRecorder is the ResponseWriter of a batched request.
type frameRecorder struct {
	header http.Header
	sent   http.Header // header as of WriteHeader
	code   int
	body   bytes.Buffer
}

func (w *frameRecorder) Header() http.Header { return w.header }

func (w *frameRecorder) WriteHeader(code int) {
	if w.code != 0 || code < 200 {
		return
	}
	w.code, w.sent = code, w.header.Clone()
}

func (w *frameRecorder) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.body.Len()+len(p) > maxBatchAnswerBody {
		return 0, fmt.Errorf("forward: a batched answer is over %d bytes", maxBatchAnswerBody)
	}
	return w.body.Write(p)
}

// Flush: the answer leaves whole.
func (w *frameRecorder) Flush() {}

// status records a Status as the answer.
func (w *frameRecorder) status(se *api.StatusError) { writeStatus(w, se) }

// Wire encoding.

func putUvarint(b *bytes.Buffer, v uint64) {
	var tmp [binary.MaxVarintLen64]byte
	b.Write(tmp[:binary.PutUvarint(tmp[:], v)])
}

func putBytes(b *bytes.Buffer, p []byte) {
	putUvarint(b, uint64(len(p)))
	b.Write(p)
}

func putString(b *bytes.Buffer, s string) {
	putUvarint(b, uint64(len(s)))
	b.WriteString(s)
}

func putHeader(b *bytes.Buffer, h http.Header) {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	putUvarint(b, uint64(n))
	for k, vs := range h {
		for _, v := range vs {
			putString(b, k)
			putString(b, v)
		}
	}
}

func writeRequestFrame(b *bytes.Buffer, it *fwdItem) {
	putString(b, it.method)
	putString(b, it.uri)
	putHeader(b, it.header)
	putBytes(b, it.body)
}

func writeAnswerFrame(b *bytes.Buffer, idx int, rec *frameRecorder) {
	code, h := rec.code, rec.sent
	if code == 0 {
		code, h = http.StatusOK, rec.header // the handler wrote nothing
	}
	putUvarint(b, uint64(idx))
	putUvarint(b, uint64(code))
	putHeader(b, h)
	putBytes(b, rec.body.Bytes())
}

// Wire decoding; every length is checked against its limit before
// anything is allocated.

func getUvarint(r *bufio.Reader, limit uint64, what string) (uint64, error) {
	v, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, err
	}
	if v > limit {
		return 0, fmt.Errorf("%s: %d is over the limit of %d", what, v, limit)
	}
	return v, nil
}

func getBytes(r *bufio.Reader, limit int, what string) ([]byte, error) {
	n, err := getUvarint(r, uint64(limit), what+" length")
	if err != nil {
		return nil, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, fmt.Errorf("%s: %w", what, io.ErrUnexpectedEOF)
	}
	return p, nil
}

func getHeader(r *bufio.Reader) (http.Header, error) {
	n, err := getUvarint(r, maxFrameHeaders, "header count")
	if err != nil {
		return nil, err
	}
	h := make(http.Header, n)
	for range n {
		k, err := getBytes(r, maxFrameHeaderName, "header name")
		if err != nil {
			return nil, err
		}
		v, err := getBytes(r, maxFrameHeaderValue, "header value")
		if err != nil {
			return nil, err
		}
		h[string(k)] = append(h[string(k)], string(v))
	}
	return h, nil
}

// readRequestFrame reads one request frame; io.EOF means there is none.
func readRequestFrame(r *bufio.Reader) (frameRequest, error) {
	var fr frameRequest
	if _, err := r.Peek(1); err != nil {
		return fr, err
	}
	m, err := getBytes(r, maxFrameMethod, "method")
	if err != nil {
		return fr, eofIsUnexpected(err)
	}
	u, err := getBytes(r, maxFrameURI, "request URI")
	if err != nil {
		return fr, eofIsUnexpected(err)
	}
	if fr.header, err = getHeader(r); err != nil {
		return fr, eofIsUnexpected(err)
	}
	if fr.body, err = getBytes(r, maxBatchedBody, "body"); err != nil {
		return fr, eofIsUnexpected(err)
	}
	fr.method, fr.uri = string(m), string(u)
	return fr, nil
}

// readResponseFrame reads one answer frame of a batch; io.EOF means there
// is none.
func readResponseFrame(r *bufio.Reader) (int, itemAnswer, error) {
	idx, ans, err := readResponseFrameUpTo(r, maxBatchItems)
	if err == nil && ans.status == endFrameStatus {
		err = errors.New("a batch's answer carries a stream's end")
	}
	return idx, ans, err
}

// readResponseFrameUpTo reads one answer frame whose number is at most
// maxIdx, or a stream's end (status endFrameStatus, nothing after the
// number and the status); io.EOF means there is none.
func readResponseFrameUpTo(r *bufio.Reader, maxIdx uint64) (int, itemAnswer, error) {
	if _, err := r.Peek(1); err != nil {
		return 0, itemAnswer{}, err
	}
	idx, err := getUvarint(r, maxIdx, "frame number")
	if err != nil {
		return 0, itemAnswer{}, eofIsUnexpected(err)
	}
	code, err := getUvarint(r, 999, "status")
	if err != nil {
		return 0, itemAnswer{}, eofIsUnexpected(err)
	}
	if code == endFrameStatus {
		return int(idx), itemAnswer{status: endFrameStatus}, nil
	}
	if code < 200 {
		return 0, itemAnswer{}, fmt.Errorf("status %d is not a final answer", code)
	}
	var ans itemAnswer
	ans.status = int(code)
	if ans.header, err = getHeader(r); err != nil {
		return 0, itemAnswer{}, eofIsUnexpected(err)
	}
	if ans.body, err = getBytes(r, maxBatchAnswerBody, "answer body"); err != nil {
		return 0, itemAnswer{}, eofIsUnexpected(err)
	}
	return int(idx), ans, nil
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
