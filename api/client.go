package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Client limits and defaults.
const (
	// DefaultClientTimeout bounds one request that is not a watch.
	DefaultClientTimeout = 60 * time.Second
	// maxErrorBody is how much of an error response the client reads.
	maxErrorBody = 1 << 20
	// maxApplyAttempts bounds Apply's get-and-update retries on conflict.
	maxApplyAttempts = 5
	// maxDrain is how much of an answer's unread tail (after its JSON
	// value) the client reads so that the connection can be reused.
	maxDrain = 64 << 10
)

// Client talks to the HTTP API of any agent. Given several agents, it
// sticks to one and moves to the next when a request fails in a way that
// is safe to retry elsewhere (see send).
type Client struct {
	bases   []string     // base URLs, no trailing slash
	cur     atomic.Int64 // index into bases of the agent tried first
	http    *http.Client
	timeout time.Duration
	token   string      // bearer token, "" for none (client_auth.go)
	tls     *tls.Config // from WithTLSConfig
	tlsErr  error       // WithTLSConfig could not be applied
}

// ClientOption changes a Client.
type ClientOption func(*Client)

// WithHTTPClient makes the client send requests through hc. Its Timeout
// must be zero if the client is used for watches.
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.http = hc } }

// WithRequestTimeout bounds each request that is not a watch; 0 means none.
func WithRequestTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// NewClient returns a client for the API at baseURL ("https://10.0.0.1:7070"),
// or at any of several agents given as a comma-separated list
// ("https://10.0.0.1:7070,https://10.0.0.2:7070"), as SHOAL_ADDR holds them.
// Each base URL names its scheme (ParseEndpoints adds https to a bare
// host:port). An https agent is verified with WithTLSConfig.
func NewClient(baseURL string, opts ...ClientOption) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.MaxIdleConnsPerHost = 16
	// A write's body waits for the agent's "100 Continue" (see sendTo);
	// after this long without one it leaves anyway.
	tr.ExpectContinueTimeout = 5 * time.Second
	c := &Client{
		bases:   splitEndpoints(baseURL),
		http:    &http.Client{Transport: tr},
		timeout: DefaultClientTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	c.applyTLS()
	return c
}

// ListOptions narrow a List or a Watch.
type ListOptions struct {
	LabelSelector string
	FieldSelector string
	// Stale allows the agent to answer from its local replica without
	// confirming it is current.
	Stale bool
	// TimeoutSeconds ends a watch after that long; 0 leaves it to the server.
	TimeoutSeconds int64
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.LabelSelector != "" {
		q.Set("labelSelector", o.LabelSelector)
	}
	if o.FieldSelector != "" {
		q.Set("fieldSelector", o.FieldSelector)
	}
	if o.Stale {
		q.Set("stale", "true")
	}
	return q
}

// WatchEvent is one change from a watch. Type is ADDED, MODIFIED, DELETED
// or ERROR; an ERROR event carries Err (a *StatusError for a Status sent by
// the server, e.g. 410 when the watch fell behind) and is the last event.
type WatchEvent struct {
	Type   string
	Object Object
	Err    error
}

// lookupClientKind accepts a Kind ("Deployment") or anything a user types
// ("deploy", "deployments").
func lookupClientKind(kind string) (KindInfo, error) {
	if k, ok := LookupKind(kind); ok {
		return k, nil
	}
	if k, ok := LookupResource(kind); ok {
		return k, nil
	}
	return KindInfo{}, fmt.Errorf("unknown kind %q (served kinds: %s)", kind, strings.Join(KindNames(), ", "))
}

// resourcePath is the URL path of a collection (name "") or an object.
// For a namespaced kind an empty namespace means all namespaces for a
// collection and "default" for an object.
func resourcePath(k KindInfo, ns, name string, status bool) string {
	var b strings.Builder
	if k.Group == "" {
		b.WriteString("/api/" + k.Version)
	} else {
		b.WriteString("/apis/" + k.Group + "/" + k.Version)
	}
	if k.Namespaced {
		if ns == "" && name != "" {
			ns = "default"
		}
		if ns != "" {
			b.WriteString("/namespaces/" + url.PathEscape(ns))
		}
	}
	b.WriteString("/" + k.Resource)
	if name != "" {
		b.WriteString("/" + url.PathEscape(name))
		if status {
			b.WriteString("/status")
		}
	}
	return b.String()
}

// do sends one request and decodes a 2xx JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	if raw, ok := out.(*json.RawMessage); ok {
		b, err := io.ReadAll(resp.Body)
		*raw = b
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the response: %w", method, path, err)
	}
	drain(resp.Body)
	return nil
}

// drain reads what is left of a body after its JSON value (a newline, the
// last chunk of a chunked answer) before it is closed. The decoder stops
// at the value's end; a body closed before its end costs the connection,
// and over TLS the next request pays a new handshake.
func drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
}

// responseError turns a non-2xx answer into a *StatusError, from the
// Status in the body when there is one.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var st Status
	if json.Unmarshal(b, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(resp.StatusCode)
		}
		e := &StatusError{ErrStatus: st}
		explainAuth(e)
		return e
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e := NewStatusError(resp.StatusCode, reasonForCode(resp.StatusCode), nil, "%s %s: %s", resp.Request.Method, resp.Request.URL.Path, msg)
	explainAuth(e)
	return e
}

func reasonForCode(code int) StatusReason {
	switch code {
	case http.StatusBadRequest:
		return ReasonBadRequest
	case http.StatusNotFound:
		return ReasonNotFound
	case http.StatusMethodNotAllowed:
		return ReasonMethodNotAllowed
	case http.StatusConflict:
		return ReasonConflict
	case http.StatusGone:
		return ReasonGone
	case http.StatusRequestEntityTooLarge:
		return ReasonRequestEntityTooLarge
	case http.StatusUnsupportedMediaType:
		return ReasonUnsupportedMediaType
	case http.StatusUnprocessableEntity:
		return ReasonInvalid
	case http.StatusServiceUnavailable:
		return ReasonServiceUnavailable
	case http.StatusGatewayTimeout:
		return ReasonTimeout
	}
	return ReasonInternalError
}

func decodeTyped(k KindInfo, raw []byte) (Object, error) {
	obj := k.New()
	// encoding/json, not goccy/go-json (3.4x faster here): goccy's strings
	// point into one copy of the whole input, and objects decoded here
	// are kept for long in the agents' mirrors of Nodes, Services and
	// Endpoints, each then holding its whole JSON (the store interns
	// what goccy decodes for the same reason, consensus/store/intern.go).
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decoding a %s: %w", k.Kind, err)
	}
	return obj, nil
}

// objectInfo returns the kind of a typed object and its namespace as sent.
func objectInfo(obj Object) (KindInfo, Object, error) {
	k, ok := LookupKind(KindOf(obj))
	if !ok {
		return KindInfo{}, nil, fmt.Errorf("%T is not a served kind", obj)
	}
	out := obj.DeepCopyObject()
	SetTypeMeta(out)
	if m := out.GetObjectMeta(); k.Namespaced && m.Namespace == "" {
		m.Namespace = "default"
	}
	return k, out, nil
}

// Get reads one object, linearizably.
func (c *Client) Get(ctx context.Context, kind, ns, name string) (Object, error) {
	return c.GetWithOptions(ctx, kind, ns, name, GetOptions{})
}

// GetOptions tune a Get.
type GetOptions struct {
	// Stale reads the agent's local copy, which may lag the leader.
	Stale bool
}

// GetWithOptions reads one object.
func (c *Client) GetWithOptions(ctx context.Context, kind, ns, name string, opts GetOptions) (Object, error) {
	k, err := lookupClientKind(kind)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("get: name must not be empty")
	}
	var q url.Values
	if opts.Stale {
		q = url.Values{"stale": {"true"}}
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, resourcePath(k, ns, name, false), q, nil, &raw); err != nil {
		return nil, err
	}
	return decodeTyped(k, raw)
}

// List reads the objects of a kind in a namespace ("" for all namespaces,
// or for a cluster-scoped kind), and the revision the list was read at.
func (c *Client) List(ctx context.Context, kind, ns string, opts ListOptions) ([]Object, string, error) {
	k, err := lookupClientKind(kind)
	if err != nil {
		return nil, "", err
	}
	var l ObjectList
	if err := c.do(ctx, http.MethodGet, resourcePath(k, ns, "", false), opts.query(), nil, &l); err != nil {
		return nil, "", err
	}
	out := make([]Object, 0, len(l.Items))
	for _, raw := range l.Items {
		o, err := decodeTyped(k, raw)
		if err != nil {
			return nil, "", err
		}
		out = append(out, o)
	}
	return out, l.ResourceVersion, nil
}

func (c *Client) write(ctx context.Context, method string, obj Object, status bool) (Object, error) {
	k, o, err := objectInfo(obj)
	if err != nil {
		return nil, err
	}
	m := o.GetObjectMeta()
	name := m.Name
	if method == http.MethodPost {
		name = ""
	} else if name == "" {
		return nil, errors.New("metadata.name: must not be empty")
	}
	var raw json.RawMessage
	path := resourcePath(k, m.Namespace, name, status)
	if err := c.do(ctx, method, path, nil, o, &raw); err != nil {
		return nil, err
	}
	return decodeTyped(k, raw)
}

// Create stores a new object and returns it as stored.
func (c *Client) Create(ctx context.Context, obj Object) (Object, error) {
	return c.write(ctx, http.MethodPost, obj, false)
}

// Update replaces an object's metadata and spec. With
// metadata.resourceVersion set, it fails with a Conflict if the object
// changed since.
func (c *Client) Update(ctx context.Context, obj Object) (Object, error) {
	return c.write(ctx, http.MethodPut, obj, false)
}

// UpdateStatus replaces an object's status.
func (c *Client) UpdateStatus(ctx context.Context, obj Object) (Object, error) {
	return c.write(ctx, http.MethodPut, obj, true)
}

// Delete deletes an object with the default options: most kinds go at
// once, a pod bound to a node is given its grace period to stop (it stays,
// terminating, until its agent has stopped it).
func (c *Client) Delete(ctx context.Context, kind, ns, name string) error {
	_, err := c.DeleteWithOptions(ctx, kind, ns, name, DeleteOptions{})
	return err
}

// DeleteWithOptions deletes an object and returns the server's answer: the
// object as it was when it was removed, or, for a pod given a grace
// period, as it now is (metadata.deletionTimestamp set).
func (c *Client) DeleteWithOptions(ctx context.Context, kind, ns, name string, opts DeleteOptions) (Object, error) {
	k, err := lookupClientKind(kind)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errors.New("delete: name must not be empty")
	}
	var body any
	if opts.GracePeriodSeconds != nil || opts.Preconditions != nil {
		opts.TypeMeta = TypeMeta{Kind: "DeleteOptions", APIVersion: "v1"}
		body = opts
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodDelete, resourcePath(k, ns, name, false), nil, body, &raw); err != nil {
		return nil, err
	}
	return decodeTyped(k, raw)
}

// Watch streams the changes after fromRV ("" starts with an ADDED event for
// each current object). The channel closes when ctx ends, when the server
// ends the stream, or after an ERROR event.
func (c *Client) Watch(ctx context.Context, kind, ns string, opts ListOptions, fromRV string) (<-chan WatchEvent, error) {
	k, err := lookupClientKind(kind)
	if err != nil {
		return nil, err
	}
	q := opts.query()
	q.Set("watch", "true")
	if fromRV != "" {
		q.Set("resourceVersion", fromRV)
	}
	if opts.TimeoutSeconds > 0 {
		q.Set("timeoutSeconds", strconv.FormatInt(opts.TimeoutSeconds, 10))
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.send(ctx, http.MethodGet, resourcePath(k, ns, "", false), q, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	ch := make(chan WatchEvent)
	go func() {
		defer close(ch)
		defer cancel()
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		emit := func(ev WatchEvent) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			var line WatchEventWire
			if err := dec.Decode(&line); err != nil {
				if err != io.EOF && ctx.Err() == nil {
					emit(WatchEvent{Type: WatchEventError, Err: fmt.Errorf("watch stream: %w", err)})
				}
				return
			}
			if line.Type == WatchEventError {
				var st Status
				if err := json.Unmarshal(line.Object, &st); err != nil {
					emit(WatchEvent{Type: WatchEventError, Err: fmt.Errorf("watch stream: decoding an ERROR event: %w", err)})
				} else {
					emit(WatchEvent{Type: WatchEventError, Err: &StatusError{ErrStatus: st}})
				}
				return
			}
			obj, err := decodeTyped(k, line.Object)
			if err != nil {
				emit(WatchEvent{Type: WatchEventError, Err: fmt.Errorf("watch stream: %w", err)})
				return
			}
			if !emit(WatchEvent{Type: line.Type, Object: obj}) {
				return
			}
		}
	}()
	return ch, nil
}
