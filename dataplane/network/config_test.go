package network

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func validConfig() Config {
	c := DefaultConfig()
	c.StateDir = "/tmp/x"
	c.PodCIDR = "10.244.3.0/24"
	return c
}

func TestValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		field string
		edit  func(*Config)
	}{
		{"PodCIDR", func(c *Config) { c.PodCIDR = "" }},
		{"PodCIDR", func(c *Config) { c.PodCIDR = "10.244.3.7/24" }},
		{"PodCIDR", func(c *Config) { c.PodCIDR = "10.245.0.0/24" }},
		{"PodCIDR", func(c *Config) { c.PodCIDR = "10.244.0.0/8" }},
		{"PodCIDR", func(c *Config) { c.PodCIDR = "fd00::/64" }},
		{"PodCIDR", func(c *Config) { c.PodCIDR = "10.244.3.0/31" }},
		{"ClusterCIDR", func(c *Config) { c.ClusterCIDR = "nonsense" }},
		{"ServiceCIDR", func(c *Config) { c.ServiceCIDR = "10.244.128.0/20" }},
		{"StateDir", func(c *Config) { c.StateDir = "" }},
		{"PluginDirs", func(c *Config) { c.PluginDirs = nil }},
		{"BridgeName", func(c *Config) { c.BridgeName = "a-very-long-bridge-name" }},
		{"MTU", func(c *Config) { c.MTU = 100 }},
	}
	for _, tc := range cases {
		c := validConfig()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%+v: want an error naming %s, got %v", c, tc.field, err)
		}
	}
}

func TestPodKey(t *testing.T) {
	p := PodRef{Namespace: "default", Name: "web-0.x", UID: "0b7c9a1e-5d3f-4c2b-9f1a-2e6d8c4b7a90"}
	k, err := p.key()
	if err != nil {
		t.Fatal(err)
	}
	back, ok := podFromKey(k)
	if !ok || back != p {
		t.Fatalf("round trip %q: got %+v %v", k, back, ok)
	}
	for _, bad := range []PodRef{
		{Namespace: "", Name: "a", UID: "u"},
		{Namespace: "a_b", Name: "a", UID: "u"},
		{Namespace: "a", Name: "../x", UID: "u"},
		{Namespace: "a", Name: "x", UID: "u/v"},
		{Namespace: "a", Name: "x", UID: ""},
		{Namespace: "a", Name: strings.Repeat("x", 260), UID: "u"},
	} {
		if _, err := bad.key(); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	for _, junk := range []string{"lock", "a_b", "A_b_c", "a_b_c/d"} {
		if p, ok := podFromKey(junk); ok {
			t.Errorf("%q decoded to %+v", junk, p)
		}
	}
}

func TestPlanRoutes(t *testing.T) {
	r := func(cidr, via string) Route {
		return Route{CIDR: netip.MustParsePrefix(cidr), Via: netip.MustParseAddr(via)}
	}
	want := []Route{r("10.244.2.0/24", "10.250.0.2"), r("10.244.3.0/24", "10.250.0.3"), r("10.244.4.0/24", "10.250.0.4")}
	have := []Route{r("10.244.5.0/24", "10.250.0.5"), r("10.244.3.0/24", "10.250.0.9"), r("10.244.2.0/24", "10.250.0.2")}
	got := planRoutes(want, have)
	exp := routePlan{
		Add:     []Route{r("10.244.4.0/24", "10.250.0.4")},
		Replace: []Route{r("10.244.3.0/24", "10.250.0.3")},
		Delete:  []Route{r("10.244.5.0/24", "10.250.0.5")},
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("plan:\n got %+v\nwant %+v", got, exp)
	}
	if p := planRoutes(want, want); len(p.Add)+len(p.Replace)+len(p.Delete) != 0 {
		t.Fatalf("in sync but plan %+v", p)
	}
	if p := planRoutes(nil, have); len(p.Delete) != 3 {
		t.Fatalf("want everything deleted, got %+v", p)
	}
}

func TestValidateRoutes(t *testing.T) {
	pod := netip.MustParsePrefix("10.244.1.0/24")
	ok := Route{CIDR: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("10.250.0.2")}
	if err := validateRoutes([]Route{ok}, pod); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]Route{
		{{CIDR: netip.MustParsePrefix("10.244.2.1/24"), Via: ok.Via}},
		{{CIDR: netip.MustParsePrefix("10.244.0.0/16"), Via: ok.Via}},
		{{CIDR: ok.CIDR}},
		{{CIDR: ok.CIDR, Via: netip.MustParseAddr("fd00::1")}},
		{ok, ok},
	} {
		if err := validateRoutes(bad, pod); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}
