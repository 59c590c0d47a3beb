package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"time"
)

// One forwarded attempt: the request goes to one upstream, and the
// forwarder waits for the upstream's answer (its response headers) while it
// keeps an eye on the route. It gives up when leadership moves elsewhere or
// when no answer comes in time. What it may do next depends on whether the
// request can have reached the upstream's handler:
//
//   - a request with a body is sent with "Expect: 100-continue": the body
//     leaves only once the upstream's handler starts reading it, and a gate
//     on the body refuses to send it once the attempt was given up. Before
//     that, the request is certainly not applied.
//   - a request without a body (a DELETE) counts as delivered once a
//     connection to the upstream was open.
//
// A given-up attempt and an answer that arrives at the same moment are
// told apart by one compare-and-swap: either the answer is passed on, or
// the attempt is given up and the answer dropped, never both.

// Why an attempt was given up.
var (
	errLeaderMoved = errors.New("leadership moved")
	errNoAnswer    = errors.New("did not answer")
)

// Phases of an attempt.
const (
	phaseWaiting  int32 = iota // no answer yet
	phaseAnswered              // the upstream's answer is being passed on
	phaseGivenUp               // the forwarder stopped waiting
)

// States of an attempt's body.
const (
	bodyUnsent  int32 = iota
	bodySending       // the transport started reading it: it may arrive
	bodyRefused       // the attempt was given up first: it never leaves
)

// attemptResult says how an attempt ended.
type attemptResult struct {
	// answered: the upstream's answer was copied to the client (or the
	// client went away); nothing more to do.
	answered bool
	// delivered: the request may have reached the upstream's handler.
	delivered bool
	// fallback: the upstream does not take batches (forward_batch.go);
	// nothing was sent, the request goes alone.
	fallback bool
	// err says why the attempt failed: a transport error, or, wrapped,
	// errLeaderMoved or errNoAnswer.
	err error
	// troubled: the upstream answered 503 (it could not serve the
	// request: not the leader, no leader, shutting down) and the answer
	// went to the client; the route hears of it (LeaderTroubleRoute).
	troubled bool
}

// attempt is the shared state of one attempt.
type attempt struct {
	// answered is closed when the phase becomes phaseAnswered.
	answered chan struct{}
	phase    atomic.Int32
	body     atomic.Int32
	gotConn  atomic.Bool
	// refused: the upstream answered 503 (certainly not applied) after
	// leadership had moved away from it; the answer was not passed on.
	refused atomic.Bool
	// troubled: the upstream answered 503 (attemptResult.troubled).
	troubled atomic.Bool
	cause    atomic.Value // error, set before phase becomes phaseGivenUp
}

// giveUp stops waiting for the answer, unless it is already being passed
// on. It reports whether it did.
func (a *attempt) giveUp(cause error) bool {
	a.cause.Store(cause)
	if !a.phase.CompareAndSwap(phaseWaiting, phaseGivenUp) {
		return false
	}
	a.body.CompareAndSwap(bodyUnsent, bodyRefused)
	return true
}

func (a *attempt) givenUpCause() error {
	if a.phase.Load() != phaseGivenUp {
		return nil
	}
	err, _ := a.cause.Load().(error)
	return err
}

// gatedBody is an attempt's request body: it lets the body leave only
// while the attempt is still waiting.
type gatedBody struct {
	a *attempt
	r io.Reader
}

func (g *gatedBody) Read(p []byte) (int, error) {
	if !g.a.body.CompareAndSwap(bodyUnsent, bodySending) && g.a.body.Load() != bodySending {
		return 0, errors.New("forward: the attempt was given up before its body was sent")
	}
	return g.r.Read(p)
}

func (g *gatedBody) Close() error { return nil }

// gatedTransport passes the upstream's answer on only if the attempt has
// not been given up meanwhile.
type gatedTransport struct {
	a     *attempt
	inner http.RoundTripper
}

func (t gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		if cause := t.a.givenUpCause(); cause != nil {
			return nil, cause
		}
		return nil, err
	}
	if !t.a.phase.CompareAndSwap(phaseWaiting, phaseAnswered) {
		resp.Body.Close()
		return nil, t.a.givenUpCause()
	}
	close(t.a.answered)
	return resp, nil
}

// proxy sends r to upstream (host:port) once and copies the answer to w.
// body is the request body and length its length (0 for none, -1 for
// unknown); r.Body is not read. moved, if not nil, reports where
// leadership went once it is no longer at upstream ("" while it has not
// moved). The attempt is given up when moved reports a move or when
// timeout passes without an answer.
func (f *forwarder) proxy(w http.ResponseWriter, r *http.Request, upstream string, body io.Reader, length int64, moved func() string, timeout time.Duration) attemptResult {
	a := &attempt{answered: make(chan struct{})}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { a.gotConn.Store(true) },
	})
	out := r.WithContext(ctx)
	out.Body, out.ContentLength, out.TransferEncoding = http.NoBody, 0, nil
	hasBody := body != nil && length != 0
	if hasBody {
		out.Body = &gatedBody{a: a, r: body}
		out.ContentLength = length
	}
	var rtErr error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = f.scheme
			pr.Out.URL.Host = upstream
			pr.Out.Host = upstream
			pr.Out.Header.Set(ForwardedHeader, f.name)
			if hasBody {
				pr.Out.Header.Set("Expect", "100-continue")
			}
			pr.SetXForwarded()
		},
		Transport: gatedTransport{a: a, inner: f.transport},
		// An old leader that lost leadership answers 503 (not applied;
		// the second hop is refused): if leadership has moved, the
		// request may go to the new leader instead.
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode != http.StatusServiceUnavailable {
				return nil
			}
			a.troubled.Store(true)
			if moved == nil {
				return nil
			}
			to := moved()
			if to == "" {
				return nil
			}
			a.refused.Store(true)
			return fmt.Errorf("answered 503 (%s), and %w to %s", statusMessage(resp.Body), errLeaderMoved, to)
		},
		// Watch streams flush every event; for other answers the cost of
		// a flush per write is negligible.
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) {
			rtErr = err
		},
	}
	stop := f.watchAttempt(a, cancel, moved, timeout)
	rp.ServeHTTP(w, out)
	stop()

	res := attemptResult{err: rtErr, troubled: a.troubled.Load()}
	if hasBody {
		res.delivered = a.body.Load() == bodySending
	} else {
		res.delivered = a.gotConn.Load()
	}
	switch {
	case a.refused.Load():
		res.delivered = false // 503: certainly not applied
	case rtErr == nil:
		res.answered = true
	case a.phase.Load() == phaseAnswered:
		// The answer's headers were passed on and its body was cut (the
		// upstream died mid-stream, or the client went away): nothing more
		// can be written.
		res.answered = true
	case errors.Is(rtErr, context.Canceled) && r.Context().Err() != nil:
		res.answered = true // the client went away; there is nobody to answer
	}
	if cause := a.givenUpCause(); cause != nil && !res.answered {
		res.err = cause
	}
	return res
}

// watchAttempt gives the attempt up, and cancels its request, when
// leadership moves or timeout passes first. The returned function stops
// the watch.
func (f *forwarder) watchAttempt(a *attempt, cancel context.CancelCauseFunc, moved func() string, timeout time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		changed, release, cause := f.followMoves(moved)
		defer release()
		for cause == nil {
			select {
			case <-done:
				return
			case <-a.answered:
				return // a watch stream may now last for hours: stop looking
			case <-deadline.C:
				cause = fmt.Errorf("%w within %v", errNoAnswer, timeout.Round(10*time.Millisecond))
			case <-changed:
				changed, cause = f.movedAgain(moved)
			}
		}
		if a.giveUp(cause) {
			cancel(cause)
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// statusMessage is the message of the Status in a 503's body, or the
// body's start.
func statusMessage(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4<<10))
	var st struct{ Message string }
	if json.Unmarshal(b, &st) == nil && st.Message != "" {
		return st.Message
	}
	return strings.TrimSpace(string(b))
}
