package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// TestRolloutStatusRidesOutALeaderChange: while the cluster elects a new
// leader, reads and watches answer 503 ("retry shortly"). rollout status
// waits for a rollout that takes minutes, so it must retry them until its
// deadline instead of failing (found by the fault scenarios of issue 12:
// a spontaneous election on a loaded machine failed `rollout status`).
func TestRolloutStatusRidesOutALeaderChange(t *testing.T) {
	dep := rolloutDeployment
	unavailable := func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(api.NewServiceUnavailable("the cluster has no leader at the moment; retry shortly").Status())
	}
	var mu sync.Mutex
	gets, watches := 0, 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") != "true" {
			gets++
			if gets == 1 { // the first read meets the election
				unavailable(w)
				return
			}
			json.NewEncoder(w).Encode(dep("5", false))
			return
		}
		watches++
		if watches <= 2 { // so do the first two watches
			unavailable(w)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"type": "MODIFIED", "object": dep("9", true)})
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rolloutStatus(ctx, api.NewClient(ts.URL), "default", "web", io.Discard); err != nil {
		t.Fatalf("rollout status through a leader change: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gets != 2 || watches != 3 {
		t.Fatalf("%d reads and %d watches; want 2 and 3", gets, watches)
	}
}
