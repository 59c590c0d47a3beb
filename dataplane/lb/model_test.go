package lb

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
	"pgregory.net/rapid"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Table = "" }, "Table"},
		{func(c *Config) { c.Table = "a b" }, "Table"},
		{func(c *Config) { c.NodeIPs = []string{"10.0.0.1", "fe80::1"} }, "NodeIPs[1]"},
		{func(c *Config) { c.NodeIPs = []string{"10.0.0.1", "10.0.0.1"} }, "listed twice"},
		{func(c *Config) { c.ClusterCIDR = "10.244.1.0/16" }, "ClusterCIDR"},
		{func(c *Config) { c.MasqueradeMark = 0x4001 }, "MasqueradeMark"},
		{func(c *Config) { c.MasqueradeMark = 0 }, "MasqueradeMark"},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", cfg, err, c.want)
		}
		if _, err := NewApplier(cfg, "/nonexistent/netns"); err == nil {
			t.Errorf("NewApplier accepted %+v", cfg)
		}
	}
}

func TestServiceValidate(t *testing.T) {
	good := Service{Namespace: "default", Name: "web", ClusterIP: "10.96.0.1", Ports: []Port{
		{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30080, Endpoints: []Endpoint{ep("10.244.0.1", 8080)}},
		{Name: "dns", Protocol: "UDP", Port: 53, NodePort: 30080},
	}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	headless := Service{Namespace: "default", Name: "db", ClusterIP: "None", Ports: []Port{{Protocol: "bogus"}}}
	if err := headless.Validate(); err != nil {
		t.Fatalf("headless: %v", err)
	}
	for _, c := range []struct {
		edit func(*Service)
		want string
	}{
		{func(s *Service) { s.Namespace = "" }, "namespace"},
		{func(s *Service) { s.ClusterIP = "fd00::1" }, "clusterIP"},
		{func(s *Service) { s.AffinityTimeout = 25 * time.Hour }, "affinityTimeout"},
		{func(s *Service) { s.AffinityTimeout = time.Millisecond }, "affinityTimeout"},
		{func(s *Service) { s.Ports[0].Protocol = "tcp" }, "ports[0].protocol"},
		{func(s *Service) { s.Ports[0].Port = 0 }, "ports[0].port"},
		{func(s *Service) { s.Ports[0].NodePort = 70000 }, "ports[0].nodePort"},
		{func(s *Service) { s.Ports[1].Name = "http" }, "ports[1].name"},
		{func(s *Service) { s.Ports[1].Protocol, s.Ports[1].Port = "TCP", 80 }, "tcp/80 listed twice"},
		{func(s *Service) { s.Ports[1].Protocol = "TCP" }, "nodePort: tcp/30080 listed twice"},
		{func(s *Service) { s.Ports[0].Endpoints[0].IP = "10.244.0" }, "endpoints[0].ip"},
		{func(s *Service) { s.Ports[0].Endpoints[0].Port = -1 }, "endpoints[0].port"},
	} {
		s := cloneService(good)
		c.edit(&s)
		err := s.Validate()
		if !errors.Is(err, ErrInvalidService) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want ErrInvalidService naming %q", err, c.want)
		}
	}
}

// TestRenderIgnoresOrder: the table depends on the services, not on the
// order of services, ports' endpoints, or duplicates.
func TestRenderIgnoresOrder(t *testing.T) {
	cases := renderCases()
	all := cases[len(cases)-1]
	want := Render(all.cfg, all.services)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		services := make([]Service, len(all.services))
		for i, s := range all.services {
			s = cloneService(s)
			for j := range s.Ports {
				eps := s.Ports[j].Endpoints
				r.Shuffle(len(eps), func(a, b int) { eps[a], eps[b] = eps[b], eps[a] })
				if len(eps) > 0 {
					s.Ports[j].Endpoints = append(eps, eps[0])
				}
			}
			services[i] = s
		}
		r.Shuffle(len(services), func(a, b int) { services[a], services[b] = services[b], services[a] })
		if got := Render(all.cfg, services); got != want {
			t.Fatalf("order changed the table:\n%s", lineDiff(want, got))
		}
	}
}

// TestRegistryIgnoresHistory: whatever the order services claim and
// release elements in, the table holds the claim of the smallest owner.
func TestRegistryIgnoresHistory(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		owners := []ServiceKey{{"a", "1"}, {"a", "2"}, {"b", "1"}, {"c", "9"}}
		reg := newRegistry()
		set := setID{kind: skHairpin}
		type key = byte
		current := map[key]map[ServiceKey]byte{} // key → owner → value claimed
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			o := rapid.SampledFrom(owners).Draw(t, "owner")
			k := key(rapid.IntRange(0, 3).Draw(t, "key"))
			el := newElement([]byte{k}, nil, "")
			if rapid.Bool().Draw(t, "claim") {
				v := byte(rapid.IntRange(0, 2).Draw(t, "value"))
				el.val[0], el.vlen = v, 1
				reg.claim(o, set, el)
				if current[k] == nil {
					current[k] = map[ServiceKey]byte{}
				}
				current[k][o] = v
			} else {
				reg.release(o, set, &el)
				delete(current[k], o)
			}
			for k, byOwner := range current {
				got, ok := reg.installed(keyOf(set, &element{key: [16]byte{k}, klen: 1}))
				if len(byOwner) == 0 {
					if ok {
						t.Fatalf("key %d installed with no claimant", k)
					}
					continue
				}
				first := slices.MinFunc(slices.Collect(func(yield func(ServiceKey) bool) {
					for o := range byOwner {
						if !yield(o) {
							return
						}
					}
				}), compareKeys)
				if !ok || got.val[0] != byOwner[first] {
					t.Fatalf("key %d: installed %v (%v), want %d from %v", k, got.val[0], ok, byOwner[first], first)
				}
			}
		}
		n := 0
		for _, byOwner := range current {
			if len(byOwner) > 0 {
				n++
			}
		}
		if reg.sizes[set] != n {
			t.Fatalf("size %d, want %d", reg.sizes[set], n)
		}
		// The owners table numbers exactly the services holding claims,
		// counting each one's claims.
		claims := map[ServiceKey]int32{}
		for _, byOwner := range current {
			for o := range byOwner {
				claims[o]++
			}
		}
		if len(reg.owners.ids) != len(claims) {
			t.Fatalf("owners table holds %d services, want %d (%v)", len(reg.owners.ids), len(claims), claims)
		}
		for o, c := range claims {
			id, ok := reg.owners.ids[o]
			if !ok || reg.owners.keys[id] != o || reg.owners.refs[id] != c {
				t.Fatalf("owner %v: number %d (%v), %d claims counted, want %d", o, id, ok, reg.owners.refs[id], c)
			}
		}
	})
}

// TestElementMessagesFit: no element list sent to the kernel is longer than
// a netlink attribute can say (16 bits); a longer one is silently cut.
func TestElementMessagesFit(t *testing.T) {
	var msgs []netlink.Message
	conn, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		msgs = append(msgs, req...)
		return nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	r, _ := p.full(holdAll(syntheticServices(5000, 10)))
	b := newBatch(conn, "shoal")
	b.full(r)
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	var elementMsgs, elements int
	for _, m := range msgs {
		if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM) {
			continue
		}
		elementMsgs++
		if len(m.Data) > 0xffff-256 {
			t.Fatalf("an element message of %d bytes", len(m.Data))
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		for ad.Next() {
			if ad.Type() == unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				inner, _ := netlink.UnmarshalAttributes(ad.Bytes())
				elements += len(inner)
			}
		}
	}
	if want := 5000 + 50000 + 5000; elements != want {
		t.Fatalf("%d elements sent in %d messages, want %d", elements, elementMsgs, want)
	}
	t.Logf("%d elements in %d messages", elements, elementMsgs)
}

func TestNames(t *testing.T) {
	long := strings.Repeat("x", 63)
	k := ServiceKey{Namespace: long, Name: long}
	p := Port{Name: "a-very-long-nam"}
	for _, name := range []string{
		affinityServiceChain(portHash(k, p), k, p),
		affinityExternalChain(portHash(k, p), k, p),
	} {
		if len(name) > 255 {
			t.Errorf("%q: %d bytes, more than the kernel takes", name, len(name))
		}
	}
	if portHash(k, p) == portHash(k, Port{Name: "other"}) {
		t.Error("two ports, one hash")
	}
	if portHash(ServiceKey{"a", "b/c"}, Port{Name: "d"}) != portHash(ServiceKey{"a", "b/c"}, Port{Name: "d"}) {
		t.Error("hash not deterministic")
	}
	for d, want := range map[time.Duration]string{
		3 * time.Hour: "3h", 24 * time.Hour: "1d", 90 * time.Second: "1m30s", 1500 * time.Millisecond: "1s500ms",
	} {
		if got := nftDuration(d); got != want {
			t.Errorf("nftDuration(%v) = %s, want %s", d, got, want)
		}
	}
}
