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
	"net/url"
	"reflect"
	"strconv"
	"strings"
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
)

// Client talks to the HTTP API of any agent.
type Client struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

// ClientOption changes a Client.
type ClientOption func(*Client)

// WithHTTPClient makes the client send requests through hc. Its Timeout
// must be zero if the client is used for watches.
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.http = hc } }

// WithRequestTimeout bounds each request that is not a watch; 0 means none.
func WithRequestTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// NewClient returns a client for the API at baseURL ("http://10.0.0.1:7070").
func NewClient(baseURL string, opts ...ClientOption) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.MaxIdleConnsPerHost = 16
	c := &Client{
		base:    strings.TrimRight(baseURL, "/"),
		http:    &http.Client{Transport: tr},
		timeout: DefaultClientTimeout,
	}
	for _, o := range opts {
		o(c)
	}
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
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.http.Do(req)
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
		return &StatusError{ErrStatus: st}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return NewStatusError(resp.StatusCode, reasonForCode(resp.StatusCode), nil, "%s %s: %s", resp.Request.Method, resp.Request.URL.Path, msg)
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

// Delete removes an object.
func (c *Client) Delete(ctx context.Context, kind, ns, name string) error {
	k, err := lookupClientKind(kind)
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("delete: name must not be empty")
	}
	return c.do(ctx, http.MethodDelete, resourcePath(k, ns, name, false), nil, nil, nil)
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

// Apply results.
const (
	ApplyCreated    = "created"
	ApplyConfigured = "configured"
	ApplyUnchanged  = "unchanged"
)

// Apply creates obj, or, if it exists, updates it to obj's metadata and
// spec unless they already match (after defaulting). It returns the object
// as stored and what it did: created, configured or unchanged. The update
// goes against the resourceVersion it read, retrying a few times on
// conflict.
func (c *Client) Apply(ctx context.Context, obj Object) (Object, string, error) {
	k, desired, err := objectInfo(obj)
	if err != nil {
		return nil, "", err
	}
	m := desired.GetObjectMeta()
	m.ResourceVersion = ""
	created, err := c.Create(ctx, desired)
	if err == nil {
		return created, ApplyCreated, nil
	}
	if !IsAlreadyExists(err) {
		return nil, "", err
	}
	for attempt := 1; ; attempt++ {
		cur, err := c.Get(ctx, k.Kind, m.Namespace, m.Name)
		if err != nil {
			return nil, "", err
		}
		upd := desired.DeepCopyObject()
		keepServerFields(upd, cur)
		defaulted := upd.DeepCopyObject()
		SetDefaults(defaulted)
		if sameIntent(defaulted, cur) {
			return cur, ApplyUnchanged, nil
		}
		upd.GetObjectMeta().ResourceVersion = cur.GetObjectMeta().ResourceVersion
		out, err := c.Update(ctx, upd)
		if err == nil {
			return out, ApplyConfigured, nil
		}
		if !IsConflict(err) || attempt >= maxApplyAttempts {
			return nil, "", err
		}
	}
}

// serverPrefixes mark the annotations and labels that the control plane
// writes (revisions, volume bindings, template hashes): a manifest that does
// not mention them keeps them.
var serverPrefixes = []string{"deployment.kubernetes.io/", "shoal.dev/", "pod-template-hash", "controller-revision-hash"}

func serverOwned(key string) bool {
	for _, p := range serverPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// keepServerFields copies into want what the control plane filled in cur
// and the manifest leaves out, so that applying the same manifest again is
// "unchanged" and never tries to undo an allocation: a Service's clusterIP
// and node ports, a Node's pod CIDR, and the control plane's annotations and
// labels. (kubectl gets the same effect from a three-way merge.)
func keepServerFields(want, cur Object) {
	wm, cm := want.GetObjectMeta(), cur.GetObjectMeta()
	for k, v := range cm.Annotations {
		if _, set := wm.Annotations[k]; !set && serverOwned(k) {
			if wm.Annotations == nil {
				wm.Annotations = map[string]string{}
			}
			wm.Annotations[k] = v
		}
	}
	for k, v := range cm.Labels {
		if _, set := wm.Labels[k]; !set && serverOwned(k) {
			if wm.Labels == nil {
				wm.Labels = map[string]string{}
			}
			wm.Labels[k] = v
		}
	}
	switch w := want.(type) {
	case *Service:
		c := cur.(*Service)
		if w.Spec.ClusterIP == "" {
			w.Spec.ClusterIP = c.Spec.ClusterIP
			if len(w.Spec.ClusterIPs) == 0 {
				w.Spec.ClusterIPs = c.Spec.ClusterIPs
			}
		}
		for i := range w.Spec.Ports {
			if w.Spec.Ports[i].NodePort != 0 {
				continue
			}
			for _, cp := range c.Spec.Ports {
				if cp.Port == w.Spec.Ports[i].Port && (cp.Protocol == w.Spec.Ports[i].Protocol || w.Spec.Ports[i].Protocol == "") {
					w.Spec.Ports[i].NodePort = cp.NodePort
				}
			}
		}
	case *Node:
		c := cur.(*Node)
		if w.Spec.PodCIDR == "" {
			w.Spec.PodCIDR = c.Spec.PodCIDR
			w.Spec.PodCIDRs = c.Spec.PodCIDRs
		}
	}
}

// sameIntent reports whether cur already holds what want asks for: the
// same labels and annotations, and the same top-level content other than
// metadata and status (spec, or data for ConfigMaps and Secrets).
func sameIntent(want, cur Object) bool {
	wm, cm := want.GetObjectMeta(), cur.GetObjectMeta()
	if !equalStringMaps(wm.Labels, cm.Labels) || !equalStringMaps(wm.Annotations, cm.Annotations) {
		return false
	}
	a, errA := contentOf(want)
	b, errB := contentOf(cur)
	return errA == nil && errB == nil && reflect.DeepEqual(a, b)
}

func contentOf(obj Object) (map[string]any, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range []string{"apiVersion", "kind", "metadata", "status"} {
		delete(m, k)
	}
	return m, nil
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ClusterRaft returns the agent's view of the Raft cluster, as JSON.
func (c *Client) ClusterRaft(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/v1/cluster/raft", nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// AddVoter asks the leader to add the agent id, whose Raft listens at addr,
// as a voter. It returns the Raft status afterwards.
func (c *Client) AddVoter(ctx context.Context, id, addr string) (json.RawMessage, error) {
	var raw json.RawMessage
	body := map[string]string{"id": id, "address": addr}
	if err := c.do(ctx, http.MethodPost, "/v1/cluster/raft/voters", nil, body, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// RemoveServer asks the leader to remove id from the Raft configuration.
func (c *Client) RemoveServer(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodDelete, "/v1/cluster/raft/voters/"+url.PathEscape(id), nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Healthz returns nil if the agent answers its health check.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// MemberInfo is one agent of the gossip membership as an agent sees it
// (/v1/cluster/members).
type MemberInfo struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"` // gossip host:port
	APIAddr   string    `json:"apiAddr,omitempty"`
	RaftAddr  string    `json:"raftAddr,omitempty"`
	Zone      string    `json:"zone,omitempty"`
	Status    string    `json:"status"` // alive, dead, left
	Role      string    `json:"role,omitempty"`
	ClusterID string    `json:"clusterID,omitempty"`
	Version   string    `json:"version,omitempty"`
	Leaving   bool      `json:"leaving,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	MetaError string    `json:"metaError,omitempty"`
}

// Members returns the agent's view of the gossip membership, sorted by
// name.
func (c *Client) Members(ctx context.Context) ([]MemberInfo, error) {
	var body struct {
		Members []MemberInfo `json:"members"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/cluster/members", nil, nil, &body); err != nil {
		return nil, err
	}
	return body.Members, nil
}

// LogOptions select which log of a pod's container to read.
type LogOptions struct {
	Container string // may be empty for a one-container pod
	Follow    bool   // keep streaming until ctx ends
	Previous  bool   // the previous (terminated) attempt
}

// Logs copies a container's log to w. Any agent answers: the request is
// routed to the agent that runs the pod.
func (c *Client) Logs(ctx context.Context, ns, pod string, opts LogOptions, w io.Writer) error {
	q := url.Values{}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Previous {
		q.Set("previous", "true")
	}
	path := "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod) + "/log"
	resp, err := c.stream(ctx, http.MethodGet, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	ExitCode  int    `json:"exitCode"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Exec runs cmd in a container of a pod and returns its output once it has
// exited (not interactive).
func (c *Client) Exec(ctx context.Context, ns, pod, container string, cmd []string) (ExecResult, error) {
	var res ExecResult
	if len(cmd) == 0 {
		return res, errors.New("exec: no command")
	}
	q := url.Values{"command": cmd}
	if container != "" {
		q.Set("container", container)
	}
	path := "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod) + "/exec"
	resp, err := c.stream(ctx, http.MethodPost, path, q)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&res); err != nil {
		return res, fmt.Errorf("exec: decoding the answer: %w", err)
	}
	return res, nil
}

// stream sends a request without the client's request timeout (the caller's
// ctx bounds it) and returns the response of a 2xx answer.
func (c *Client) stream(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	resp, err := c.send(ctx, method, path, q, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}
