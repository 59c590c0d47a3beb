package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestListPagesAtTheFirstRevision: through a real agent, a paginated
// list's later page is served at the first page's revision even after a
// write in between (the agent's reader lists at past revisions; without
// it the page would be 410 Expired).
func TestListPagesAtTheFirstRevision(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := h.config("p0", "")
	cfg.Bootstrap = true
	ta := h.build(cfg)
	if err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(ta, nil)
	c := ta.client()
	ctx := context.Background()
	for i := range 5 {
		name := fmt.Sprintf("page-%d", i)
		waitUntil(t, 20*time.Second, "create "+name, func() string {
			if _, err := c.Create(ctx, configMap(name)); err != nil {
				return err.Error()
			}
			return ""
		})
	}
	type page struct {
		Metadata struct {
			Continue string `json:"continue"`
		} `json:"metadata"`
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	get := func(q url.Values) (page, int) {
		resp, err := http.Get("http://" + ta.Addr() + "/api/v1/namespaces/default/configmaps?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p page
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
		}
		return p, resp.StatusCode
	}
	first, code := get(url.Values{"limit": {"2"}})
	if code != http.StatusOK || len(first.Items) != 2 || first.Metadata.Continue == "" {
		t.Fatalf("first page: HTTP %d, %d items, continue %q", code, len(first.Items), first.Metadata.Continue)
	}
	if _, err := c.Create(ctx, configMap("page-later")); err != nil {
		t.Fatal(err)
	}
	seen := 2
	next := first.Metadata.Continue
	for next != "" {
		p, code := get(url.Values{"limit": {"2"}, "continue": {next}})
		if code != http.StatusOK {
			t.Fatalf("a later page after a write: HTTP %d", code)
		}
		for _, it := range p.Items {
			if it.Metadata.Name == "page-later" {
				t.Fatal("a later page holds an object written after the first page")
			}
		}
		seen += len(p.Items)
		next = p.Metadata.Continue
	}
	if seen != 5 {
		t.Fatalf("the pages held %d objects, want the 5 of the first page's revision", seen)
	}
}
