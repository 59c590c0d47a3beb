package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
)

// splitEndpoints reads a comma-separated list of base URLs; blanks and
// trailing slashes go.
func splitEndpoints(list string) []string {
	var out []string
	for _, e := range strings.Split(list, ",") {
		if e = strings.TrimRight(strings.TrimSpace(e), "/"); e != "" {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		out = []string{""} // requests fail with a clear URL error
	}
	return out
}

// ParseEndpoints checks a comma-separated list of agent addresses, each a
// base URL ("https://10.0.0.1:7070") or a bare host:port (https is then
// assumed: agents serve HTTPS unless run with --insecure, which takes an
// explicit "http://"), and returns them as base URLs. The error names the
// address that is wrong.
func ParseEndpoints(list string) ([]string, error) {
	parts := strings.Split(list, ",")
	var out []string
	for i, e := range parts {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		raw := e
		if !strings.Contains(e, "://") {
			e = "https://" + e
		}
		u, err := url.Parse(e)
		where := fmt.Sprintf("address %d of %d (%q)", i+1, len(parts), raw)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %v", where, err)
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("%s: scheme %q is not http or https", where, u.Scheme)
		case u.Host == "":
			return nil, fmt.Errorf("%s: no host", where)
		case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
			return nil, fmt.Errorf("%s: only scheme://host:port is allowed, without a path or query", where)
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address in %q", list)
	}
	return out, nil
}

// Endpoints returns the base URLs of the agents the client talks to, the
// one it currently prefers first.
func (c *Client) Endpoints() []string {
	n := len(c.bases)
	start := int(c.cur.Load()) % n
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, c.bases[(start+i)%n])
	}
	return out
}

// idempotent reports whether a request may be sent twice with no more
// effect than once.
func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// send sends one request and returns the response, whatever its status.
// With several agents it starts at the one that answered last and moves
// to the next, as etcd's client does, when:
//
//   - the connection could not be opened, or failed before the request
//     was written (nothing was sent);
//   - any transport failure of a read (GET, HEAD), which is safe to repeat;
//   - an agent answers 503 (Service Unavailable: certainly not applied,
//     e.g. an agent cut off from the leader).
//
// A write that failed after it was sent is never sent again: its outcome
// is unknown, and send returns a 504 StatusError with reason Timeout
// saying so. The next request starts at the next agent.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		payload = b
	}
	suffix := path
	if len(q) > 0 {
		suffix += "?" + q.Encode()
	}
	n := len(c.bases)
	start := int(c.cur.Load()) % n
	var failures []string
	var lastErr error
	var unavailable *http.Response // the last 503, returned if nobody does better
	for i := range n {
		idx := (start + i) % n
		resp, sent, err := c.sendTo(ctx, c.bases[idx]+suffix, method, body != nil, payload)
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable && i < n-1 {
			if unavailable != nil {
				unavailable.Body.Close()
			}
			unavailable = resp
			failures = append(failures, c.bases[idx]+": 503")
			continue
		}
		if err == nil {
			if unavailable != nil {
				unavailable.Body.Close()
			}
			c.cur.Store(int64(idx))
			return resp, nil
		}
		// The next request starts at the next agent.
		c.cur.CompareAndSwap(int64(start), int64((idx+1)%n))
		if ctx.Err() != nil {
			return nil, err
		}
		if sent && !idempotent(method) {
			if unavailable != nil {
				unavailable.Body.Close()
			}
			return nil, NewTimeout(fmt.Sprintf("%s %s: the agent at %s failed after the request was sent, so the write may have been applied; read before writing again: %v",
				method, path, c.bases[idx], err))
		}
		lastErr = err
		failures = append(failures, err.Error())
	}
	if unavailable != nil {
		return unavailable, nil
	}
	if n == 1 {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%s %s: no agent answered: %s", method, path, strings.Join(failures, "; "))
}

// sendTo sends one request to one URL. sent reports whether the request
// may have reached the agent: false when the connection was never opened,
// or, for a write with a body, when the body never left. A write's body
// goes with "Expect: 100-continue": it leaves only once the agent's handler
// asks for it, so a connection that turns out dead (an agent killed while
// the connection sat idle) leaves the write certainly not applied.
func (c *Client) sendTo(ctx context.Context, u, method string, hasBody bool, payload []byte) (resp *http.Response, sent bool, err error) {
	var wrote, bodyLeft atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(tctx, method, u, nil)
	if err != nil {
		return nil, false, err
	}
	if c.tlsErr != nil {
		return nil, false, c.tlsErr
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
		req.GetBody = func() (io.ReadCloser, error) {
			return &trackedBody{r: bytes.NewReader(payload), read: &bodyLeft}, nil
		}
		req.Body, _ = req.GetBody()
		req.ContentLength = int64(len(payload))
		if len(payload) == 0 {
			req.Body, req.GetBody = http.NoBody, nil
		} else if !idempotent(method) {
			req.Header.Set("Expect", "100-continue")
		}
	}
	resp, err = c.http.Do(req)
	if err != nil {
		var op *net.OpError
		switch {
		case errors.As(err, &op) && op.Op == "dial":
			return nil, false, err
		case hasBody && len(payload) > 0:
			return nil, bodyLeft.Load(), err
		}
		return nil, wrote.Load(), err
	}
	return resp, true, nil
}

// trackedBody records that a request body started to leave.
type trackedBody struct {
	r    io.Reader
	read *atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func (b *trackedBody) Close() error { return nil }
