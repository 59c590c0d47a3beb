package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// namespace holds the bench's pods.
const namespace = "default"

// write is one acknowledged write: the pod and resourceVersion it made,
// when it was sent and when its answer arrived.
type write struct {
	name, rv  string
	send, ack time.Time
}

// writer creates and updates pods bound to the watchers' nodes at a steady
// rate on one API.
type writer struct {
	client *http.Client
	base   string
	nodes  []string
	prefix string

	mu     sync.Mutex
	writes []write
	failed atomic.Int64
	behind atomic.Int64 // ticks skipped because conc writes were in flight
	errMu  sync.Mutex
	first  error
}

// run writes at rate per second for d with at most conc in flight. Write i
// goes to node i mod len(nodes): the first round creates one pod per node,
// the next ones update it (an annotation), as status updates would.
func (w *writer) run(ctx context.Context, rate float64, d time.Duration, conc int) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	end := time.After(d)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-end:
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			w.behind.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.one(ctx, i)
		}()
	}
}

func (w *writer) one(ctx context.Context, i int) {
	node := w.nodes[i%len(w.nodes)]
	name := w.prefix + "-" + node
	var req *http.Request
	var err error
	if i < len(w.nodes) {
		body, _ := json.Marshal(map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "namespace": namespace, "labels": map[string]string{"app": "watchfan"}},
			"spec": map[string]any{
				"nodeName":   node,
				"containers": []map[string]any{{"name": "c", "image": "registry.invalid/watchfan:1"}},
			},
		})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/api/v1/namespaces/"+namespace+"/pods", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		body := fmt.Sprintf(`{"metadata":{"annotations":{"watchfan/seq":"%d"}}}`, i)
		req, err = http.NewRequestWithContext(ctx, http.MethodPatch, w.base+"/api/v1/namespaces/"+namespace+"/pods/"+name, bytes.NewReader([]byte(body)))
		if err == nil {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
	}
	if err != nil {
		w.fail(err)
		return
	}
	send := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		w.fail(err)
		return
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	ack := time.Now()
	if err != nil || resp.StatusCode/100 != 2 {
		w.fail(fmt.Errorf("%s %s: %s %s", req.Method, name, resp.Status, bytes.TrimSpace(b[:min(len(b), 300)])))
		return
	}
	var obj struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &obj); err != nil || obj.Metadata.ResourceVersion == "" {
		w.fail(fmt.Errorf("%s %s: no resourceVersion in the answer", req.Method, name))
		return
	}
	w.mu.Lock()
	w.writes = append(w.writes, write{name, obj.Metadata.ResourceVersion, send, ack})
	w.mu.Unlock()
}

func (w *writer) fail(err error) {
	w.failed.Add(1)
	w.errMu.Lock()
	if w.first == nil {
		w.first = err
	}
	w.errMu.Unlock()
}
