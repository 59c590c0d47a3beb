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
	// The leader's controllers rewrite the Service after its creation
	// (its cluster IP): the mirror holds the stored object itself once it
	// has followed the last write, never a copy of it.
	waitUntil(t, 20*time.Second, "the mirror holding the stored object itself", func() string {
		stored, err := a.Store().Get(store.Key{Kind: "Service", Namespace: "default", Name: "two"})
		if err != nil {
			return err.Error()
		}
		objs := all.Objects()
		if len(objs) != 1 || objs[0] != stored {
			return fmt.Sprintf("the mirror holds %d objects, the first not the stored object (%p): a copy, or an older revision", len(objs), stored)
		}
		return ""
	})
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

// TestFollowLocalAfterDemotion: a follower reading its agent's store in
// process goes on, through another voter, once the agent stops being a
// voter while it runs (its replica stops moving and its watches end). The
// demotion is the agent's own step (becomeNonvoter), taken here by hand on
// a voter of three.
func TestFollowLocalAfterDemotion(t *testing.T) {
	h := newHarness(t, fastTimings)
	cfgs := h.configs(3, "d")
	for i := range cfgs {
		cfgs[i].BootstrapExpect = 3
	}
	tas := h.start(cfgs...)
	waitUntil(t, 30*time.Second, "three voters, one leader", func() string { return settled(tas, 3) })
	leader := leaderOf(tas)
	target := tas[0]
	if target == leader {
		target = tas[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitUntil(t, 20*time.Second, "namespace default", func() string {
		if _, err := leader.Store().Get(store.Key{Kind: "Namespace", Name: "default"}); err != nil {
			return err.Error()
		}
		return ""
	})
	if _, err := leader.client().Create(ctx, configMap("before")); err != nil {
		t.Fatal(err)
	}
	f, err := follow.New(follow.Config{Endpoints: target.followEndpoints, Local: target.localFollow, Kind: "ConfigMap", Logger: target.log})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.Run(ctx, func(follow.Event) {}) }()
	has := func(name string) func() string {
		return func() string {
			for _, o := range f.Objects() {
				if o.GetObjectMeta().Name == name {
					return ""
				}
			}
			return fmt.Sprintf("%s not in the mirror of %s (%d objects)", name, target.cfg.NodeName, len(f.Objects()))
		}
	}
	waitUntil(t, 20*time.Second, "the first ConfigMap mirrored", has("before"))
	n := target.Node()
	if n == nil {
		t.Fatalf("%s is not a voter", target.cfg.NodeName)
	}
	stored, err := n.Store().Get(store.Key{Kind: "ConfigMap", Namespace: "default", Name: "before"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Objects()[0]; got != stored {
		t.Fatalf("the mirror on the voter %s does not read its store in process", target.cfg.NodeName)
	}
	target.becomeNonvoter(ctx, "test")
	if _, err := leader.client().Create(ctx, configMap("after")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the ConfigMap written after the demotion mirrored", has("after"))
}
