package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// TestRolloutStatusRereadsAfterGoneEvent: a watch from a revision the
// server no longer keeps ends with a 410 ERROR event. rollout status must
// read the Deployment again and watch from its new revision; it used to
// ignore the event and rewatch the same old revision until its deadline.
func TestRolloutStatusRereadsAfterGoneEvent(t *testing.T) {
	dep := rolloutDeployment
	var mu sync.Mutex
	var gets, watchRVs []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		if r.URL.Query().Get("watch") != "true" {
			gets = append(gets, r.URL.Path)
			enc.Encode(dep(fmt.Sprint(5+4*(len(gets)-1)), false))
			return
		}
		watchRVs = append(watchRVs, r.URL.Query().Get("resourceVersion"))
		if len(watchRVs) == 1 {
			st := api.NewGone("too old resource version").Status()
			enc.Encode(map[string]any{"type": "ERROR", "object": st})
			return
		}
		if len(watchRVs) > 20 {
			return // bounded: the bug rewatches in a loop
		}
		enc.Encode(map[string]any{"type": "MODIFIED", "object": dep("20", true)})
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rolloutStatus(ctx, api.NewClient(ts.URL), "default", "web", io.Discard); err != nil {
		t.Fatalf("rollout status: %v (watches from %v)", err, watchRVs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gets) != 2 || fmt.Sprint(watchRVs) != "[5 9]" {
		t.Fatalf("reads %v, watches from %v; want two reads and watches from 5 then 9", gets, watchRVs)
	}
}

// rolloutDeployment is Deployment web of one replica at revision rv,
// its rollout done or not.
func rolloutDeployment(rv string, done bool) *api.Deployment {
	one := int32(1)
	d := &api.Deployment{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: rv, Generation: 1},
		Spec: api.DeploymentSpec{Replicas: &one}}
	d.Status.ObservedGeneration = 1
	if done {
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas = 1, 1, 1
	}
	api.SetTypeMeta(d)
	return d
}
