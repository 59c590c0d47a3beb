package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// TestFollowLocalSharesStore: on a voter, a follower given the agent's
// localFollow mirrors the store's own objects (the same pointers, no
// decoded copy), sees additions and deletions in order, and a selector
// narrows it as over HTTP.
func TestFollowLocalSharesStore(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := h.config("l0", "z0")
	cfg.BootstrapExpect = 1
	tas := h.start(cfg)
	waitUntil(t, 20*time.Second, "one voter leading", func() string { return settled(tas, 1) })
	a := tas[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc := func(name, tier string) *api.Service {
		return &api.Service{
			ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"tier": tier}},
			Spec:       api.ServiceSpec{Ports: []api.ServicePort{{Port: 80}}},
		}
	}
	waitUntil(t, 20*time.Second, "namespace default", func() string {
		if _, err := a.Store().Get(store.Key{Kind: "Namespace", Name: "default"}); err != nil {
			return err.Error()
		}
		return ""
	})
	if _, err := a.client().Create(ctx, svc("one", "web")); err != nil {
		t.Fatal(err)
	}

	events := make(chan follow.Event, 64)
	run := func(f *follow.Follower) {
		go func() { _ = f.Run(ctx, func(ev follow.Event) { events <- ev }) }()
	}
	all, err := follow.New(follow.Config{Endpoints: a.followEndpoints, Local: a.localFollow, Kind: "Service", Logger: a.log})
	if err != nil {
		t.Fatal(err)
	}
	web, err := follow.New(follow.Config{Endpoints: a.followEndpoints, Local: a.localFollow, Kind: "Service", LabelSelector: "tier=web", Logger: a.log})
	if err != nil {
		t.Fatal(err)
	}
	run(all)
	run(web)
	if _, err := a.client().Create(ctx, svc("two", "db")); err != nil {
		t.Fatal(err)
	}
	if err := a.client().Delete(ctx, "Service", "default", "one"); err != nil {
		t.Fatal(err)
	}
	names := func(f *follow.Follower) string {
		s := ""
		for _, o := range f.Objects() {
			s += o.GetObjectMeta().Name + " "
		}
		return s
	}
	waitUntil(t, 20*time.Second, "the mirrors follow the store", func() string {
		if got, got2 := names(all), names(web); got != "two " || got2 != "" {
			return fmt.Sprintf("all: %q, tier=web: %q", got, got2)
		}
		return ""
	})
	stored, err := a.Store().Get(store.Key{Kind: "Service", Namespace: "default", Name: "two"})
	if err != nil {
		t.Fatal(err)
	}
	if got := all.Objects()[0]; got != stored {
		t.Fatalf("the mirror holds a copy (%p) of the stored object (%p), want the object itself", got, stored)
	}
	var deleted bool
	for len(events) > 0 {
		if ev := <-events; ev.Type == "DELETED" && ev.Object.GetObjectMeta().Name == "one" {
			deleted = ev.ResourceVersion > 0
		}
	}
	if !deleted {
		t.Fatal("no DELETED event with a revision for the deleted Service")
	}
}

// TestLocalSourceRefuses: the local source answers only for
// the agent's own address, and a watch from a revision the store no longer
// holds is 410 Gone, as over HTTP.
func TestLocalSourceRefuses(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfg := h.config("l0", "z0")
	cfg.BootstrapExpect = 1
	tas := h.start(cfg)
	waitUntil(t, 20*time.Second, "one voter leading", func() string { return settled(tas, 1) })
	a := tas[0]
	if s := a.localFollow("127.0.0.1:1"); s != nil {
		t.Fatalf("another address read locally: %T", s)
	}
	src := a.localFollow(a.ln.Addr().String())
	if src == nil {
		t.Fatal("the agent's own address is not read locally")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := src.List(ctx, "Service", "", api.ListOptions{LabelSelector: "a in (("}); err == nil {
		t.Fatal("a bad label selector was accepted")
	}
	if _, _, err := src.List(ctx, "Service", "", api.ListOptions{}); err != nil {
		t.Fatalf("linearizable list: %v", err)
	}
	// Push the store's history past revision 1.
	st := a.Store()
	for st.Revision() <= int64(store.DefaultConfig().HistorySize)+2 {
		ops := make([]store.Op, 0, 500)
		for i := range 500 {
			n := fmt.Sprintf("cm-%d-%d", st.Revision(), i)
			cm := configMap(n)
			cm.Namespace = "x"
			ops = append(ops, store.Op{Type: store.OpCreate, Object: cm})
		}
		if _, err := a.Node().Propose(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Watch(ctx, "ConfigMap", "", api.ListOptions{}, "1"); !api.IsGone(err) {
		t.Fatalf("watch from a revision no longer held: %v, want 410 Gone", err)
	}
}
