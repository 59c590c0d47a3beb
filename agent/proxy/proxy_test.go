package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/lb"
)

// fakeLB records the calls and can fail the next one.
type fakeLB struct {
	mu      sync.Mutex
	calls   []string
	state   map[lb.ServiceKey]lb.Service
	failing int
}

func (f *fakeLB) Sync(changed []lb.Service, deleted []lb.ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing > 0 {
		f.failing--
		return errors.New("netlink: injected failure")
	}
	f.calls = append(f.calls, "sync")
	for _, s := range changed {
		f.state[s.Key()] = s
	}
	for _, k := range deleted {
		delete(f.state, k)
	}
	return nil
}

func (f *fakeLB) Resync(all []lb.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing > 0 {
		f.failing--
		return errors.New("netlink: injected failure")
	}
	f.calls = append(f.calls, "resync")
	f.state = map[lb.ServiceKey]lb.Service{}
	for _, s := range all {
		f.state[s.Key()] = s
	}
	return nil
}

func (f *fakeLB) get(ns, name string) (lb.Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.state[lb.ServiceKey{Namespace: ns, Name: name}]
	return s, ok
}

func (f *fakeLB) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fakeNames counts what the DNS index was told.
type fakeNames struct {
	mu                       sync.Mutex
	upserts, deletes, relist int
	last                     int
}

func (n *fakeNames) Upsert(api.Object) { n.mu.Lock(); n.upserts++; n.mu.Unlock() }
func (n *fakeNames) Delete(string, string, string) {
	n.mu.Lock()
	n.deletes++
	n.mu.Unlock()
}
func (n *fakeNames) Replace(objs []api.Object) {
	n.mu.Lock()
	n.relist++
	n.last = len(objs)
	n.mu.Unlock()
}

type objects []api.Object

func (o objects) Objects() []api.Object { return o }

func service(name, ip string, ports ...api.ServicePort) *api.Service {
	s := &api.Service{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name}, Spec: api.ServiceSpec{ClusterIP: ip, Ports: ports}}
	api.SetTypeMeta(s)
	return s
}

func endpoints(name string, port int32, ready []string, notReady ...string) *api.Endpoints {
	e := &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name}}
	api.SetTypeMeta(e)
	ss := api.EndpointSubset{Ports: []api.EndpointPort{{Name: "http", Port: port, Protocol: "TCP"}}}
	node := "n1"
	for _, ip := range ready {
		ss.Addresses = append(ss.Addresses, api.EndpointAddress{IP: ip, NodeName: &node})
	}
	for _, ip := range notReady {
		ss.NotReadyAddresses = append(ss.NotReadyAddresses, api.EndpointAddress{IP: ip})
	}
	e.Subsets = []api.EndpointSubset{ss}
	return e
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func startProxy(t *testing.T, f *fakeLB, names Names) *Proxy {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName, cfg.LB, cfg.Names = "n1", f, names
	cfg.Settle, cfg.Backoff, cfg.MaxBackoff = time.Millisecond, time.Millisecond, 10*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

var httpPort = api.ServicePort{Name: "http", Protocol: "TCP", Port: 80}

func TestProxyWaitsForBothKindsThenSyncsOnlyChanges(t *testing.T) {
	f := &fakeLB{state: map[lb.ServiceKey]lb.Service{}}
	names := &fakeNames{}
	p := startProxy(t, f, names)
	svcH := p.Handler("Service", objects{service("web", "10.96.0.10", httpPort)})
	epH := p.Handler("Endpoints", objects{endpoints("web", 8080, []string{"10.244.1.2"}, "10.244.1.3")})

	svcH(follow.Event{Type: follow.Resync})
	// Only Services are listed: a sync now would reject web's traffic.
	time.Sleep(20 * time.Millisecond) // a negative check: nothing may happen
	if calls := f.callList(); len(calls) != 0 {
		t.Fatalf("synced before Endpoints were listed: %v", calls)
	}
	epH(follow.Event{Type: follow.Resync})
	waitFor(t, "the first full sync", func() bool { return p.Syncs() == 1 })
	s, ok := f.get("default", "web")
	if !ok || len(s.Ports) != 1 || len(s.Ports[0].Endpoints) != 1 || s.Ports[0].Endpoints[0] != (lb.Endpoint{IP: "10.244.1.2", Port: 8080, Local: true}) {
		t.Fatalf("web programmed as %+v, want one ready local endpoint 10.244.1.2:8080", s)
	}

	// A new endpoint: an incremental sync of web alone.
	epH(follow.Event{Type: "MODIFIED", Object: endpoints("web", 8080, []string{"10.244.1.2", "10.244.2.2"})})
	waitFor(t, "the incremental sync", func() bool { return p.Syncs() == 2 })
	if s, _ := f.get("default", "web"); len(s.Ports[0].Endpoints) != 2 {
		t.Fatalf("web has %d endpoints, want 2", len(s.Ports[0].Endpoints))
	}
	// The service goes: deleted from the load balancer.
	svcH(follow.Event{Type: "DELETED", Object: service("web", "10.96.0.10", httpPort)})
	waitFor(t, "the deletion", func() bool { _, ok := f.get("default", "web"); return !ok })
	if calls := f.callList(); !slices.Equal(calls, []string{"resync", "sync", "sync"}) {
		t.Fatalf("calls %v, want one resync then incremental syncs", calls)
	}
	names.mu.Lock()
	defer names.mu.Unlock()
	if names.relist != 2 || names.upserts != 1 || names.deletes != 1 || names.last != 2 {
		t.Fatalf("DNS index told relist=%d (last %d objects) upserts=%d deletes=%d", names.relist, names.last, names.upserts, names.deletes)
	}
}

func TestProxyRetriesAFailedSync(t *testing.T) {
	f := &fakeLB{state: map[lb.ServiceKey]lb.Service{}, failing: 2}
	p := startProxy(t, f, nil)
	p.Handler("Service", objects{service("web", "10.96.0.10", httpPort)})(follow.Event{Type: follow.Resync})
	p.Handler("Endpoints", objects{endpoints("web", 8080, []string{"10.244.1.2"})})(follow.Event{Type: follow.Resync})
	waitFor(t, "a sync after two failures", func() bool { return p.Syncs() == 1 })
	if _, ok := f.get("default", "web"); !ok {
		t.Fatal("web not programmed after the retries")
	}
}

func TestTranslate(t *testing.T) {
	podNet := netip.MustParsePrefix("10.244.0.0/16")
	timeout := int32(60)
	svc := service("web", "10.96.0.10", httpPort, api.ServicePort{Name: "dns", Protocol: "UDP", Port: 53, NodePort: 30053})
	svc.Spec.Type = api.ServiceTypeNodePort
	svc.Spec.SessionAffinity = "ClientIP"
	svc.Spec.SessionAffinityConfig = &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: &timeout}}
	svc.Spec.ExternalTrafficPolicy, svc.Spec.InternalTrafficPolicy = "Local", "Local"
	eps := endpoints("web", 8080, []string{"10.244.1.2", "192.168.7.7"}, "10.244.1.9")
	other := "n2"
	eps.Subsets = append(eps.Subsets, api.EndpointSubset{
		Ports:     []api.EndpointPort{{Name: "dns", Port: 5353, Protocol: "UDP"}},
		Addresses: []api.EndpointAddress{{IP: "10.244.2.4", NodeName: &other}},
	})
	got := translate(svc, eps, "n1", podNet)
	want := lb.Service{
		Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", AffinityTimeout: time.Minute,
		ExternalLocal: true, InternalLocal: true,
		Ports: []lb.Port{
			{Name: "http", Protocol: "TCP", Port: 80, Endpoints: []lb.Endpoint{{IP: "10.244.1.2", Port: 8080, Local: true}}},
			{Name: "dns", Protocol: "UDP", Port: 53, NodePort: 30053, Endpoints: []lb.Endpoint{{IP: "10.244.2.4", Port: 5353}}},
		},
	}
	if !equalService(got.svc, want) {
		t.Fatalf("translate:\n got %+v\nwant %+v", got.svc, want)
	}
	if !slices.Equal(got.outside, []string{"192.168.7.7"}) {
		t.Fatalf("outside = %v, want the address outside the pod network", got.outside)
	}
	if err := got.svc.Validate(); err != nil {
		t.Fatal(err)
	}

	// Headless: no ClusterIP, so no rules. ClusterIP type: no node ports.
	h := translate(service("db", api.ClusterIPNone, httpPort), nil, "n1", podNet)
	if !h.svc.Headless() {
		t.Fatalf("headless service translated with ClusterIP %q", h.svc.ClusterIP)
	}
	c := service("c", "10.96.0.11", api.ServicePort{Name: "http", Port: 80, NodePort: 30080})
	if tr := translate(c, nil, "n1", podNet); tr.svc.Ports[0].NodePort != 0 || tr.svc.Ports[0].Protocol != "TCP" || tr.svc.AffinityTimeout != 0 {
		t.Fatalf("ClusterIP service: %+v", tr.svc)
	}
}

func equalService(a, b lb.Service) bool {
	if a.Namespace != b.Namespace || a.Name != b.Name || a.ClusterIP != b.ClusterIP || a.AffinityTimeout != b.AffinityTimeout ||
		a.ExternalLocal != b.ExternalLocal || a.InternalLocal != b.InternalLocal || len(a.Ports) != len(b.Ports) {
		return false
	}
	for i := range a.Ports {
		pa, pb := a.Ports[i], b.Ports[i]
		if pa.Name != pb.Name || pa.Protocol != pb.Protocol || pa.Port != pb.Port || pa.NodePort != pb.NodePort || !slices.Equal(pa.Endpoints, pb.Endpoints) {
			return false
		}
	}
	return true
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("a config without NodeName validated")
	}
	c.NodeName = "n1"
	c.ClusterCIDR = "10.244.0.0/33"
	if err := c.Validate(); err == nil {
		t.Fatal("a bad ClusterCIDR validated")
	}
}

// Fed by followers without a mirror (the agent's), the proxy takes a
// relist from the RESYNC event itself.
func TestProxyTakesTheRelistFromTheEvent(t *testing.T) {
	f := &fakeLB{state: map[lb.ServiceKey]lb.Service{}}
	p := startProxy(t, f, nil)
	p.Handler("Service", nil)(follow.Event{Type: follow.Resync, Objects: []api.Object{service("web", "10.96.0.10", httpPort)}})
	p.Handler("Endpoints", nil)(follow.Event{Type: follow.Resync, Objects: []api.Object{endpoints("web", 8080, []string{"10.244.1.2"})}})
	waitFor(t, "the first full sync", func() bool { return p.Syncs() == 1 })
	if s, ok := f.get("default", "web"); !ok || len(s.Ports) != 1 || len(s.Ports[0].Endpoints) != 1 {
		t.Fatalf("web programmed as %+v (%v), want one endpoint", s, ok)
	}
}

// A relist of one kind replaces that kind only: the proxy keeps both kinds
// in one map, and the other kind's objects stay.
func TestProxyRelistOfOneKindKeepsTheOther(t *testing.T) {
	f := &fakeLB{state: map[lb.ServiceKey]lb.Service{}}
	names := &fakeNames{}
	p := startProxy(t, f, names)
	svcH, epH := p.Handler("Service", nil), p.Handler("Endpoints", nil)
	svcH(follow.Event{Type: follow.Resync, Objects: []api.Object{service("a", "10.96.0.10", httpPort), service("b", "10.96.0.11", httpPort)}})
	epH(follow.Event{Type: follow.Resync, Objects: []api.Object{endpoints("a", 8080, []string{"10.244.1.2"}), endpoints("b", 8080, []string{"10.244.1.3"})}})
	waitFor(t, "the first full sync", func() bool { return p.Syncs() == 1 })

	// Service b is gone from the relist; its Endpoints stay.
	svcH(follow.Event{Type: follow.Resync, Objects: []api.Object{service("a", "10.96.0.10", httpPort)}})
	waitFor(t, "the second full sync", func() bool { return p.Syncs() == 2 })
	if _, ok := f.get("default", "b"); ok {
		t.Error("b still programmed after the Services relist dropped it")
	}
	if s, ok := f.get("default", "a"); !ok || len(s.Ports[0].Endpoints) != 1 {
		t.Errorf("a programmed as %+v (%v), want its endpoint kept", s, ok)
	}
	names.mu.Lock()
	if names.last != 3 {
		t.Errorf("DNS index relisted with %d objects, want 3 (a, its Endpoints, b's Endpoints)", names.last)
	}
	names.mu.Unlock()

	// Endpoints relisted empty: a has no endpoint; the map keeps only a.
	epH(follow.Event{Type: follow.Resync})
	waitFor(t, "the third full sync", func() bool { return p.Syncs() == 3 })
	if s, ok := f.get("default", "a"); !ok || len(s.Ports[0].Endpoints) != 0 {
		t.Errorf("a programmed as %+v (%v), want no endpoint", s, ok)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, ok := p.objects[lb.ServiceKey{Namespace: "default", Name: "a"}]; len(p.objects) != 1 || !ok || o.svc == nil || o.eps != nil {
		t.Errorf("the proxy holds %d keys (a: %+v), want a's Service alone", len(p.objects), o)
	}
}
