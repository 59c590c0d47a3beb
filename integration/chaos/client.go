package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Namespace and name prefix of the keys the clients use.
const (
	keyNamespace = "default"
	keyPrefix    = "chaos-"
)

// Recorder collects every client's operations with times on one clock.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder starts the run's clock.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is nanoseconds since the run's start (monotonic).
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

func (r *Recorder) add(op Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Ops returns a copy of what was recorded so far.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Client sends requests to one preferred agent and moves to the next
// address when a request certainly was not applied there (no connection,
// 503), as a client given several agent addresses does.
type Client struct {
	ID      int
	Home    int
	addrs   []string // API base URLs, Home's first
	cur     atomic.Int32
	http    *http.Client
	timeout time.Duration
	rec     *Recorder
	keys    []string
	seq     int
	rnd     *rand.Rand
	lastRV  map[string]int64
}

// NewClient makes client id homed on agent home of addrs.
func NewClient(id, home int, addrs []string, hc *http.Client, timeout time.Duration, rec *Recorder, keys []string) *Client {
	order := append([]string{addrs[home]}, append(append([]string(nil), addrs[:home]...), addrs[home+1:]...)...)
	return &Client{ID: id, Home: home, addrs: order, http: hc, timeout: timeout, rec: rec, keys: keys,
		rnd: rand.New(rand.NewPCG(uint64(id), 7)), lastRV: map[string]int64{}}
}

// GoHome makes the next request go to the preferred agent again.
func (c *Client) GoHome() { c.cur.Store(0) }

// Run issues requests until ctx ends, pacing them by gap.
func (c *Client) Run(ctx context.Context, gap time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.once(ctx)
		t.Reset(gap)
	}
}

func (c *Client) once(ctx context.Context) {
	key := c.keys[c.rnd.IntN(len(c.keys))]
	in := Input{Kind: Read, Key: key}
	switch r := c.rnd.IntN(10); {
	case r < 4:
	case r < 7:
		in.Kind = Write
	default:
		if rv, ok := c.lastRV[key]; ok {
			in.Kind, in.RV = CAS, rv
		}
	}
	if in.Kind != Read {
		c.seq++
		in.Value = fmt.Sprintf("c%d-%d", c.ID, c.seq)
	}
	c.Do(ctx, in)
}

// outcome classifies one exchange.
type outcome int

const (
	applied    outcome = iota // an answer that says what happened
	notApplied                // certainly had no effect: drop it
	unknown                   // may have been applied
)

// Do sends one request, records it, and returns how it ended.
func (c *Client) Do(ctx context.Context, in Input) (Output, bool) {
	idx := int(c.cur.Load())
	addr := c.addrs[idx%len(c.addrs)]
	call := c.rec.Now()
	out, how := c.exchange(ctx, addr, in)
	ret := c.rec.Now()
	if how == notApplied {
		c.cur.CompareAndSwap(int32(idx), int32((idx+1)%len(c.addrs)))
		return out, false
	}
	if how == unknown {
		if in.Kind == Read {
			return out, false // a read without an answer changes nothing
		}
		out = Output{Result: Unknown}
		c.cur.CompareAndSwap(int32(idx), int32((idx+1)%len(c.addrs)))
	}
	if out.Result == OK && out.RV > 0 {
		c.lastRV[in.Key] = out.RV
	}
	c.rec.add(Op{Client: c.ID, Home: c.Home, Input: in, Output: out, Call: call, Return: ret})
	return out, out.Result != Unknown
}

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
}

type objectMeta struct {
	Name            string `json:"name"`
	Namespace       string `json:"namespace,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

func (c *Client) exchange(ctx context.Context, base string, in Input) (Output, outcome) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	method, rv := http.MethodPut, int64(0)
	switch in.Kind {
	case Read:
		method = http.MethodGet
	case CAS:
		rv = in.RV
	}
	req := keyRequest(ctx, method, base, in.Key, in.Value, rv)
	resp, err := c.http.Do(req)
	if err != nil {
		var de dialError
		if errors.As(err, &de) {
			return Output{}, notApplied
		}
		return Output{}, unknown
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Output{}, unknown
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var obj configMap
		if err := json.Unmarshal(data, &obj); err != nil {
			return Output{}, unknown
		}
		rv, err := strconv.ParseInt(obj.Metadata.ResourceVersion, 10, 64)
		if err != nil {
			return Output{}, unknown
		}
		return Output{Result: OK, Found: true, Value: obj.Data["v"], RV: rv}, applied
	case resp.StatusCode == http.StatusNotFound && in.Kind == Read:
		return Output{Result: OK}, applied
	case resp.StatusCode == http.StatusConflict && in.Kind == CAS:
		return Output{Result: Conflict}, applied
	case resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusTooManyRequests:
		return Output{}, notApplied // "certainly not applied" by the API's contract
	case resp.StatusCode == http.StatusConflict, resp.StatusCode == http.StatusNotFound:
		return Output{}, notApplied // a plain write that gave up on conflicts; a CAS on a missing key
	default:
		return Output{}, unknown // 504, 500, anything else: cannot tell
	}
}

// keyRequest is the request that reads (GET), creates (POST) or replaces
// (PUT; conditional on rv when rv > 0) one key's ConfigMap through the API
// at base (its URL: "https://10.251.0.1:7070").
func keyRequest(ctx context.Context, method, base, key, value string, rv int64) *http.Request {
	url := base + "/api/v1/namespaces/" + keyNamespace + "/configmaps"
	if method != http.MethodPost {
		url += "/" + keyPrefix + key
	}
	if method == http.MethodGet {
		req, _ := http.NewRequestWithContext(ctx, method, url, nil)
		return req
	}
	obj := configMap{APIVersion: "v1", Kind: "ConfigMap", Metadata: objectMeta{Name: keyPrefix + key, Namespace: keyNamespace}, Data: map[string]string{"v": value}}
	if rv > 0 {
		obj.Metadata.ResourceVersion = strconv.FormatInt(rv, 10)
	}
	body, _ := json.Marshal(obj)
	req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}
