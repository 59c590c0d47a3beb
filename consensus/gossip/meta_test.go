package gossip

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

func TestMetaRoundTrip(t *testing.T) {
	in := Meta{
		APIAddr: "10.0.0.1:8080", RaftAddr: "[fd00::1]:8300", Zone: "rack-1",
		Role: RoleVoter, ClusterID: "c-42", Version: "v0.1.0", Leaving: true, Worker: true,
	}
	b, err := encodeMeta(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	if !strings.Contains(string(b), `"v":1`) {
		t.Fatalf("encoding %s carries no version", b)
	}
}

// The largest valid Meta must fit memberlist's limit, or memberlist would
// panic when it broadcasts it.
func TestMetaLargestFits(t *testing.T) {
	addr := func() string {
		host := strings.Repeat("h", MaxAddrLen-len(":65535"))
		return host + ":65535"
	}
	m := Meta{
		APIAddr: addr(), RaftAddr: addr(),
		Zone:      strings.Repeat("z", MaxZoneLen),
		Role:      RoleNonvoter,
		ClusterID: strings.Repeat("c", MaxClusterLen),
		Version:   strings.Repeat("v", MaxVersionLen),
		Leaving:   true,
		Worker:    true,
		Keyring:   KeyringState([][]byte{make([]byte, 32)}),
	}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize {
		t.Fatalf("largest valid meta encodes to %d bytes, over %d", len(b), memberlist.MetaMaxSize)
	}
	t.Logf("largest valid meta: %d of %d bytes", len(b), memberlist.MetaMaxSize)

	// A leader's: a voter, neither Worker nor Leaving, the largest term.
	m.Role, m.Worker, m.Leaving, m.LeaderTerm = RoleVoter, false, false, math.MaxUint64
	if b, err = encodeMeta(m); err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize {
		t.Fatalf("largest valid leader's meta encodes to %d bytes, over %d", len(b), memberlist.MetaMaxSize)
	}
	t.Logf("largest valid leader's meta: %d of %d bytes", len(b), memberlist.MetaMaxSize)
	if got, err := decodeMeta(b); err != nil || got != m {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
}

func TestMetaValidateNamesField(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name  string
		meta  Meta
		field string
	}{
		{"api not host:port", Meta{APIAddr: "10.0.0.1"}, "APIAddr"},
		{"api port zero", Meta{APIAddr: "10.0.0.1:0"}, "APIAddr"},
		{"api empty host", Meta{APIAddr: ":8080"}, "APIAddr"},
		{"api too long", Meta{APIAddr: long(MaxAddrLen-4) + ":8080"}, "APIAddr"},
		{"raft not host:port", Meta{RaftAddr: "raft"}, "RaftAddr"},
		{"raft port too big", Meta{RaftAddr: "h:70000"}, "RaftAddr"},
		{"zone too long", Meta{Zone: long(MaxZoneLen + 1)}, "Zone"},
		{"zone with space", Meta{Zone: "rack 1"}, "Zone"},
		{"zone with quote", Meta{Zone: `a"b`}, "Zone"},
		{"zone not ascii", Meta{Zone: "zoné"}, "Zone"},
		{"role unknown", Meta{Role: "leader"}, "Role"},
		{"cluster too long", Meta{ClusterID: long(MaxClusterLen + 1)}, "ClusterID"},
		{"version with backslash", Meta{Version: `v\1`}, "Version"},
		{"version too long", Meta{Version: long(MaxVersionLen + 1)}, "Version"},
		{"leader not a voter", Meta{Role: RoleNonvoter, LeaderTerm: 3}, "LeaderTerm"},
		{"leader without a role", Meta{LeaderTerm: 3}, "LeaderTerm"},
		{"leader a worker", Meta{Role: RoleVoter, Worker: true, LeaderTerm: 3}, "LeaderTerm"},
		{"leader leaving", Meta{Role: RoleVoter, Leaving: true, LeaderTerm: 3}, "LeaderTerm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.meta.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
			if _, err := encodeMeta(tc.meta); err == nil {
				t.Fatal("encodeMeta accepted it")
			}
		})
	}
	// At the limits exactly: accepted.
	ok := Meta{Zone: long(MaxZoneLen), ClusterID: long(MaxClusterLen), Version: long(MaxVersionLen),
		APIAddr: long(MaxAddrLen-5) + ":8080"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("meta at the limits refused: %v", err)
	}
}

func TestMetaDecodeCompatibility(t *testing.T) {
	// A newer agent: higher version, fields we do not know.
	m, err := decodeMeta([]byte(`{"v":3,"api":"h:1","zone":"z","gpu":true,"labels":{"a":"b"}}`))
	if err != nil {
		t.Fatalf("newer metadata refused: %v", err)
	}
	if m.APIAddr != "h:1" || m.Zone != "z" {
		t.Fatalf("known fields lost: %+v", m)
	}
	for _, bad := range []string{``, `{}`, `{"v":0}`, `not json`, `{"v":"1"}`} {
		if _, err := decodeMeta([]byte(bad)); err == nil {
			t.Errorf("decodeMeta(%q) accepted it", bad)
		}
	}
}

// The metadata cache answers as decodeMeta does, errors included, returns
// copies the caller may change, and stays within maxCachedMetas.
func TestMetaCacheAgreesAndStaysBounded(t *testing.T) {
	var c metaCache
	m := Meta{APIAddr: "10.0.0.1:6443", RaftAddr: "10.0.0.1:8300", Zone: "a", Role: RoleVoter, ClusterID: "c1", Version: "v"}
	buf, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second answer comes from the cache
		got, err := c.decode(buf)
		if err != nil || got != m {
			t.Fatalf("decode = %+v, %v; want %+v", got, err, m)
		}
		got.Zone = "changed by the caller"
	}
	for _, bad := range [][]byte{nil, []byte("{"), []byte(`{"v":0}`)} {
		for range 2 {
			_, want := decodeMeta(bad)
			if _, err := c.decode(bad); err == nil || err.Error() != want.Error() {
				t.Errorf("decode(%q): %v, want %v", bad, err, want)
			}
		}
	}
	for i := range 3 * maxCachedMetas {
		m.APIAddr = fmt.Sprintf("10.0.%d.%d:6443", i/250, i%250)
		b, _ := encodeMeta(m)
		if got, err := c.decode(b); err != nil || got.APIAddr != m.APIAddr {
			t.Fatalf("entry %d: %+v, %v", i, got, err)
		}
		if n := len(c.m); n > maxCachedMetas {
			t.Fatalf("entry %d: %d cached, over the limit of %d", i, n, maxCachedMetas)
		}
	}
}
