package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// received is one watch event as the client saw it.
type received struct {
	typ, name, rv string
	at            time.Time
}

// watcher is one watch stream on its own connection.
type watcher struct {
	node  string // "" watches every pod
	base  string
	tr    *http.Transport
	stall bool // never read after the headers: a stuck client

	retries atomic.Int64

	mu  sync.Mutex
	got []received
	err error
}

// Retries of a watch the server cannot start now (a Raft election under
// load answers 503 "leadership is changing"), as an agent's follower
// retries.
const (
	openAttempts = 20
	openBackoff  = 250 * time.Millisecond
)

// open starts the watch and returns once the server has answered with its
// headers (the watch is registered); the events are read in the
// background until ctx ends. An answer of 5xx or 429, or a failed
// connection, is retried up to openAttempts times.
func (w *watcher) open(ctx context.Context, c *cluster) error {
	var err error
	for i := range openAttempts {
		if err = w.openOnce(ctx, c); err == nil {
			return nil
		}
		var re retryable
		if !errors.As(err, &re) {
			return err
		}
		w.retries.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(openBackoff * time.Duration(min(i+1, 8))):
		}
	}
	return fmt.Errorf("after %d attempts: %w", openAttempts, err)
}

// retryable marks an error worth another attempt.
type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

func (w *watcher) openOnce(ctx context.Context, c *cluster) error {
	q := url.Values{"watch": {"true"}}
	if w.node != "" {
		q.Set("fieldSelector", "spec.nodeName="+w.node)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/api/v1/namespaces/"+namespace+"/pods?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if w.tr == nil {
		w.tr = &http.Transport{ForceAttemptHTTP2: true}
	}
	resp, err := (&http.Client{Transport: c.creds.Transport(w.tr)}).Do(req)
	if err != nil {
		return retryable{err}
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		err := fmt.Errorf("watch %s: %s: %s", w.node, resp.Status, b)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return retryable{err}
		}
		return err
	}
	if w.stall {
		go func() { <-ctx.Done(); resp.Body.Close() }()
		return nil
	}
	go w.read(resp.Body)
	return nil
}

func (w *watcher) read(body io.ReadCloser) {
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var ev struct {
			Type   string `json:"type"`
			Object struct {
				Metadata struct {
					Name            string `json:"name"`
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
			} `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		at := time.Now()
		w.mu.Lock()
		w.got = append(w.got, received{ev.Type, ev.Object.Metadata.Name, ev.Object.Metadata.ResourceVersion, at})
		w.mu.Unlock()
	}
}

func (w *watcher) events() []received {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]received(nil), w.got...)
}

func (w *watcher) close() {
	if w.tr != nil {
		w.tr.CloseIdleConnections()
	}
}

// openAll opens the watchers, at most par at a time.
func openAll(ctx context.Context, c *cluster, ws []*watcher, par int) error {
	sem := make(chan struct{}, par)
	errs := make(chan error, len(ws))
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := w.open(ctx, c); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // the first error, if any
}
