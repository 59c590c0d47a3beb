package network

import (
	"net/netip"
	"strings"
	"testing"
)

// The masquerade ruleset, as `nft list table ip shoal-nat` prints it.
const goldenNAT = `table ip shoal-nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade
	}
}
`

func TestNATGolden(t *testing.T) {
	got := desiredNAT(netip.MustParsePrefix("10.244.0.0/16")).text()
	if got != goldenNAT {
		t.Fatalf("ruleset:\n%s\nwant:\n%s", got, goldenNAT)
	}
	got = desiredNAT(netip.MustParsePrefix("10.1.2.3/32")).text()
	want := "ip saddr 10.1.2.3 ip daddr != 10.1.2.3 masquerade"
	if !strings.Contains(got, want) {
		t.Fatalf("a /32 renders without a mask:\n%s", got)
	}
}
