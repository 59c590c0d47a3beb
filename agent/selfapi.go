package agent

// The agent's own API client (its node loop's pod watch and status
// writes, its Event recorder, its Node registration) talks to its own API.
// Over the listener, every one of those requests paid for TCP on loopback,
// TLS records both ways and, for each new connection, a TLS handshake at
// both ends: a node given its first pods opens up to
// kubelet.MaxParallelStatusWrites connections at once, and in the hollow
// benchmark (100 nodes in one process, 5,000 pods) those handshakes were
// a tenth of the process's CPU during the apply. selfTransport serves
// such requests in the process instead: the same handler chain
// (authentication, authorisation, metrics, forwarding to the leader), the
// same identity (this agent's certificate, checked as the listener checks
// a client's), no socket.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// selfIdentityTTL is how long a check of this agent's own certificate (the
// listener's client-certificate check: chain, usage, revocation) stands
// before the next request checks it again.
const selfIdentityTTL = 10 * time.Second

// selfStreamAfter is how much of a response is held before its headers go
// to the client anyway: a larger answer (a big list) streams, as it would
// over a connection.
const selfStreamAfter = 64 << 10

// errSelfAPIClosed answers a request made after the API server stopped.
var errSelfAPIClosed = errors.New("agent: the API server is stopped")

// selfTransport is an http.RoundTripper that serves requests for this
// agent's own API address in the process, and sends any other request
// (a redirect to another agent) over next.
type selfTransport struct {
	host string // the API listener's address, as the client's URLs name it
	next http.RoundTripper
	log  *slog.Logger
	// handler is the API's full handler chain, set once the server is
	// built; until then requests go over next.
	handler atomic.Pointer[http.Handler]
	// tlsSrc is the TLS source (nil: insecure, no identity); client is
	// its client configuration, taken once (its certificate callback
	// follows renewals), and verify the listener's client-certificate
	// check.
	tlsSrc TLSSource
	client *tls.Config
	verify func(tls.ConnectionState) error
	// remoteAddr is what the handlers see as the client's address: this
	// host, the port no connection's.
	remoteAddr string
	closed     atomic.Bool

	mu      sync.Mutex
	cert    *tls.Certificate // the certificate state was built from
	state   *tls.ConnectionState
	checked time.Time
}

func newSelfTransport(host string, next http.RoundTripper, src TLSSource, log *slog.Logger) *selfTransport {
	h, _, _ := net.SplitHostPort(host)
	t := &selfTransport{host: host, next: next, tlsSrc: src, log: log, remoteAddr: net.JoinHostPort(h, "0")}
	if src != nil {
		t.client = src.ClientConfig()
		t.verify = src.ServerConfig(false).VerifyConnection
	}
	return t
}

// serve sets the handler requests are served with.
func (t *selfTransport) serve(h http.Handler) { t.handler.Store(&h) }

// close makes every later request fail as a stopped server's would.
func (t *selfTransport) close() { t.closed.Store(true) }

// identity is the TLS state a request is served with: this agent's
// current client certificate, as the listener would have verified it in a
// handshake. It is nil when the agent is insecure.
func (t *selfTransport) identity() (*tls.ConnectionState, error) {
	if t.tlsSrc == nil {
		return nil, nil
	}
	cc := t.client
	var cert *tls.Certificate
	switch {
	case cc.GetClientCertificate != nil:
		c, err := cc.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			return nil, fmt.Errorf("agent: this agent's client certificate: %w", err)
		}
		cert = c
	case len(cc.Certificates) > 0:
		cert = &cc.Certificates[0]
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("agent: this agent has no client certificate for its own API")
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cert == cert && t.state != nil && now.Sub(t.checked) < selfIdentityTTL {
		return t.state, nil
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("agent: this agent's client certificate: %w", err)
		}
	}
	cs := tls.ConnectionState{
		Version:           tls.VersionTLS13,
		HandshakeComplete: true,
		PeerCertificates:  []*x509.Certificate{leaf},
	}
	if t.verify != nil {
		if err := t.verify(cs); err != nil {
			return nil, fmt.Errorf("agent: this agent's own certificate is refused by its API: %w", err)
		}
	}
	if ca := t.tlsSrc.CACert(); ca != nil {
		cs.VerifiedChains = [][]*x509.Certificate{{leaf, ca}}
	}
	t.cert, t.state, t.checked = cert, &cs, now
	return &cs, nil
}

func (t *selfTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	hp := t.handler.Load()
	if req.URL.Host != t.host || hp == nil {
		return t.next.RoundTrip(req)
	}
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if t.closed.Load() {
		closeBody()
		return nil, errSelfAPIClosed
	}
	cs, err := t.identity()
	if err != nil {
		closeBody()
		return nil, err
	}
	u, err := url.ParseRequestURI(req.URL.RequestURI())
	if err != nil {
		closeBody()
		return nil, err
	}
	ctx, cancel := context.WithCancel(req.Context())
	sr := req.Clone(ctx)
	sr.URL = u
	sr.RequestURI = req.URL.RequestURI()
	sr.Proto, sr.ProtoMajor, sr.ProtoMinor = "HTTP/1.1", 1, 1
	if sr.Host == "" {
		sr.Host = req.URL.Host
	}
	sr.RemoteAddr = t.remoteAddr
	sr.TLS = cs
	sr.Close = false
	// The body is there already: no "100 Continue" to wait for.
	sr.Header.Del("Expect")
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	w := &selfResponse{req: req, header: http.Header{}, ready: make(chan selfAnswer, 1), cancel: cancel}
	go func() {
		defer cancel()
		defer closeBody()
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					t.log.Error("api: in-process request panicked", "method", req.Method, "path", req.URL.Path, "panic", p)
				}
				w.finish(fmt.Errorf("agent: the API handler aborted the response (%v)", p))
			}
		}()
		(*hp).ServeHTTP(w, sr)
		w.finish(nil)
	}()
	select {
	case a := <-w.ready:
		return a.resp, a.err
	case <-req.Context().Done():
		// The handler sees its context end too. It answers exactly once
		// (a whole response, the start of a stream, or an error); that
		// answer is closed unread, so a stream's writes fail.
		go func() {
			if a := <-w.ready; a.resp != nil {
				a.resp.Body.Close()
			}
		}()
		return nil, req.Context().Err()
	}
}

// selfAnswer is what RoundTrip returns: the response once its headers are
// out, or the error that ended the handler before they were.
type selfAnswer struct {
	resp *http.Response
	err  error
}

// selfResponse is the http.ResponseWriter of an in-process request. A
// response is held whole and handed over when the handler returns; one
// that flushes (a watch) or outgrows selfStreamAfter is handed over at
// once and its body streams through a pipe. Like a connection's, a
// streamed write that passes the write deadline ends the stream.
type selfResponse struct {
	req      *http.Request
	header   http.Header
	sent     http.Header // the header as of WriteHeader
	status   int
	buf      bytes.Buffer
	ready    chan selfAnswer
	cancel   context.CancelFunc
	pw       *io.PipeWriter // set once streaming
	stopCut  func() bool    // stops the stream's cut on the client's context
	deadline time.Time
	done     bool
}

func (w *selfResponse) Header() http.Header { return w.header }

func (w *selfResponse) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return // written already, or informational
	}
	w.status = code
	w.sent = w.header.Clone()
}

func (w *selfResponse) Write(p []byte) (int, error) {
	if w.done {
		return 0, http.ErrHandlerTimeout
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.buf.Write(p)
	if w.pw == nil && w.buf.Len() < selfStreamAfter {
		return len(p), nil
	}
	if err := w.push(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush and FlushError (for http.ResponseController) hand the headers and
// what is written so far to the client.
func (w *selfResponse) Flush() { _ = w.FlushError() }

func (w *selfResponse) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.push()
}

// SetWriteDeadline is for http.ResponseController: it bounds each later
// write of a streamed body.
func (w *selfResponse) SetWriteDeadline(d time.Time) error {
	w.deadline = d
	return nil
}

// response is the client's http.Response with body, as of now.
func (w *selfResponse) response(body io.ReadCloser, length int64) *http.Response {
	h := w.sent
	if h.Get("Content-Type") == "" && w.buf.Len() > 0 && w.req.Method != http.MethodHead {
		h.Set("Content-Type", http.DetectContentType(w.buf.Bytes()[:min(w.buf.Len(), 512)]))
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          body,
		ContentLength: length,
		Request:       w.req,
	}
}

// push starts streaming if it has not started, then writes what is held
// into the pipe, within the write deadline.
func (w *selfResponse) push() error {
	if w.pw == nil {
		pr, pw := io.Pipe()
		w.pw = pw
		// The client's context ending cuts the stream, as it would
		// close the connection.
		cctx := w.req.Context()
		w.stopCut = context.AfterFunc(cctx, func() { pw.CloseWithError(cctx.Err()) })
		w.ready <- selfAnswer{resp: w.response(&selfBody{pr: pr, cancel: w.cancel}, -1)}
	}
	if w.buf.Len() == 0 {
		return nil
	}
	var timer *time.Timer
	if !w.deadline.IsZero() {
		d := time.Until(w.deadline)
		if d <= 0 {
			w.pw.CloseWithError(os.ErrDeadlineExceeded)
			return os.ErrDeadlineExceeded
		}
		pw := w.pw
		timer = time.AfterFunc(d, func() { pw.CloseWithError(os.ErrDeadlineExceeded) })
	}
	_, err := w.pw.Write(w.buf.Bytes())
	if timer != nil {
		timer.Stop()
	}
	w.buf.Reset()
	return err
}

// finish ends the response when the handler returns (err: it panicked).
func (w *selfResponse) finish(err error) {
	if w.done {
		return
	}
	w.done = true
	if w.pw != nil {
		if err == nil {
			err = w.push()
		}
		w.stopCut()
		if err != nil {
			w.pw.CloseWithError(err)
		} else {
			w.pw.Close()
		}
		return
	}
	if err != nil {
		w.ready <- selfAnswer{err: err}
		return
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	body := w.buf.Bytes()
	w.ready <- selfAnswer{resp: w.response(io.NopCloser(bytes.NewReader(body)), int64(len(body)))}
}

// selfBody is a streamed response's body; closing it ends the handler's
// request context, as a closed connection would.
type selfBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
}

func (b *selfBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *selfBody) Close() error {
	b.cancel()
	return b.pr.Close()
}
