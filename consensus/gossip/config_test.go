package gossip

import (
	"bytes"
	"encoding/base64"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func validConfig() Config {
	c := DefaultConfig()
	c.NodeName = "h1"
	return c
}

func TestPresetsValidate(t *testing.T) {
	for name, c := range map[string]Config{"DefaultConfig": DefaultConfig(), "TestConfig": TestConfig()} {
		c.NodeName = "h1"
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "NodeName") {
		t.Errorf("a config without NodeName: got %v, want an error naming NodeName", err)
	}
}

func TestConfigValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"NodeName", func(c *Config) { c.NodeName = "" }},
		{"NodeName", func(c *Config) { c.NodeName = "a b" }},
		{"NodeName", func(c *Config) { c.NodeName = strings.Repeat("n", MaxNodeNameLen+1) }},
		{"BindAddr", func(c *Config) { c.BindAddr = "localhost" }},
		{"BindPort", func(c *Config) { c.BindPort = 65536 }},
		{"AdvertiseAddr", func(c *Config) { c.AdvertiseAddr = "not-an-ip" }},
		{"AdvertisePort", func(c *Config) { c.AdvertisePort = -1 }},
		{"Join[1]", func(c *Config) { c.Join = []string{"10.0.0.1:7946", "10.0.0.2"} }},
		{"Join[0]", func(c *Config) { c.Join = []string{""} }},
		{"JoinRetryMin", func(c *Config) { c.JoinRetryMin = 0 }},
		{"JoinRetryMax", func(c *Config) { c.JoinRetryMax = c.JoinRetryMin / 2 }},
		{"ProbeInterval", func(c *Config) { c.ProbeInterval = 0 }},
		{"ProbeTimeout", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }},
		{"IndirectChecks", func(c *Config) { c.IndirectChecks = -1 }},
		{"SuspicionMult", func(c *Config) { c.SuspicionMult = 0 }},
		{"SuspicionMaxTimeoutMult", func(c *Config) { c.SuspicionMaxTimeoutMult = 0 }},
		{"GossipInterval", func(c *Config) { c.GossipInterval = -time.Second }},
		{"GossipNodes", func(c *Config) { c.GossipNodes = 0 }},
		{"RetransmitMult", func(c *Config) { c.RetransmitMult = 0 }},
		{"GossipToTheDeadTime", func(c *Config) { c.GossipToTheDeadTime = 0 }},
		{"PushPullInterval", func(c *Config) { c.PushPullInterval = 0 }},
		{"StreamTimeout", func(c *Config) { c.StreamTimeout = 0 }},
		{"BroadcastTimeout", func(c *Config) { c.BroadcastTimeout = 0 }},
		{"DeadRetention", func(c *Config) { c.DeadRetention = 0 }},
		{"EventBuffer", func(c *Config) { c.EventBuffer = 0 }},
		{"EventBuffer", func(c *Config) { c.EventBuffer = MaxEventBuffer + 1 }},
	} {
		c := validConfig()
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want an error naming %s", tc.field, err, tc.field)
		}
	}
	// With a Transport, the bind address is not used and not checked.
	c := validConfig()
	c.BindAddr = ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "BindAddr") {
		t.Errorf("empty BindAddr without a Transport: got %v", err)
	}
	c.Transport = (&memberlist.MockNetwork{}).NewTransport("h1")
	if err := c.Validate(); err != nil {
		t.Errorf("empty BindAddr with a Transport: %v", err)
	}
}

func TestGossipKeySizes(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 24, 31, 32, 33, 64} {
		c := validConfig()
		c.GossipKey = bytes.Repeat([]byte{7}, n)
		err := c.Validate()
		want := n == 16 || n == 24 || n == 32
		if want != (err == nil) {
			t.Errorf("%d-byte key: got %v", n, err)
		}
		if err != nil && !strings.Contains(err.Error(), "GossipKey") {
			t.Errorf("%d-byte key: error %q does not name GossipKey", n, err)
		}
	}
	c := validConfig()
	c.GossipKey = nil
	if err := c.Validate(); err != nil {
		t.Errorf("nil key (no encryption) refused: %v", err)
	}
}

func TestParseGossipKey(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		raw := bytes.Repeat([]byte{byte(n)}, n)
		got, err := ParseGossipKey(" " + base64.StdEncoding.EncodeToString(raw) + "\n")
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%d bytes: got %x, %v", n, got, err)
		}
	}
	for _, s := range []string{
		"",
		"not base64!",
		base64.StdEncoding.EncodeToString(make([]byte, 15)),
		base64.StdEncoding.EncodeToString(make([]byte, 33)),
	} {
		_, err := ParseGossipKey(s)
		if err == nil || !strings.Contains(err.Error(), "--gossip-key") {
			t.Errorf("ParseGossipKey(%q): got %v, want an error naming --gossip-key", s, err)
		}
	}
}

// The arithmetic in DefaultConfig's comment, checked against memberlist's
// formula for the suspicion timeout (util.go suspicionTimeout).
func TestDefaultConfigSuspicionArithmetic(t *testing.T) {
	c := DefaultConfig()
	suspicion := func(n int) time.Duration {
		scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
		return time.Duration(float64(c.SuspicionMult) * scale * float64(c.ProbeInterval))
	}
	for _, n := range []int{3, 5, 10, 20} {
		min := suspicion(n)
		max := time.Duration(c.SuspicionMaxTimeoutMult) * min
		// Suspected within about two probe intervals, then dead after
		// min (confirmed) or max (unconfirmed).
		typical := 2*c.ProbeInterval + min
		worst := 2*c.ProbeInterval + max
		t.Logf("n=%2d: suspicion %v..%v, dead after about %v, at most about %v", n, min, max, typical, worst)
		if typical < 2*time.Second || typical > 5*time.Second {
			t.Errorf("n=%d: typical detection %v outside the 2-5 s target", n, typical)
		}
		if worst > 10*time.Second {
			t.Errorf("n=%d: worst detection %v over 10 s", n, worst)
		}
	}
}
