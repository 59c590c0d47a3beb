package dns

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolvConf(t *testing.T) {
	got := string(ResolvConf("10.244.0.1", "shop", ""))
	want := "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.244.0.1\noptions ndots:5\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	got = string(ResolvConf("fd00::1", "", "corp.example."))
	want = "search default.svc.corp.example svc.corp.example corp.example\nnameserver fd00::1\noptions ndots:5\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseResolvConf(t *testing.T) {
	data := []byte(`# generated
domain example.com
search example.com
nameserver 192.0.2.53   # first
nameserver  2001:db8::53
nameserver fe80::1%eth0
;nameserver 192.0.2.99
nameserver not-an-ip
nameserver
options edns0 ndots:1
`)
	got := ParseResolvConf(data)
	want := []string{"192.0.2.53:53", "[2001:db8::53]:53", "[fe80::1%eth0]:53"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The round trip the lead will do: the pod file is what New reads.
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, ResolvConf("127.0.0.1", "a", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	ups, err := ReadResolvConf(path)
	if err != nil || !slices.Equal(ups, []string{"127.0.0.1:53"}) {
		t.Fatalf("ReadResolvConf: %q %v", ups, err)
	}
	cfg := testConfig()
	cfg.ResolvConfPath = path
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.upstreamList(); len(got) != 1 || got[0].String() != "127.0.0.1:53" {
		t.Fatalf("upstreams from resolv.conf: %v", got)
	}
	// A missing file leaves no upstream and is not an error.
	cfg.ResolvConfPath = filepath.Join(t.TempDir(), "missing")
	if s, err = New(cfg); err != nil || len(s.upstreamList()) != 0 {
		t.Fatalf("missing resolv.conf: %v %v", s.upstreamList(), err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Domain = "" },
		func(c *Config) { c.Domain = "bad domain" },
		func(c *Config) { c.Domain = "a..b" },
		func(c *Config) { c.TTL = -1 },
		func(c *Config) { c.Upstreams = []string{"dns.example"} },
		func(c *Config) { c.ForwardTimeout = 0 },
		func(c *Config) { c.MaxForwards = 0 },
		func(c *Config) { c.UDPReaders = 0 },
		func(c *Config) { c.MaxTCPConns = 0 },
		func(c *Config) { c.TCPIdleTimeout = 0 },
	}
	for i, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, c)
		}
		if _, err := New(c); err == nil {
			t.Errorf("case %d: New accepted it", i)
		}
	}
	for _, u := range []string{"192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:53", "[2001:db8::1]"} {
		c := DefaultConfig()
		c.Upstreams = []string{u}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
