package hollow

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// freePort's ports lie outside the kernel's ephemeral range (a voter's
// Raft port, bound only on promotion, must not meanwhile become the local
// port of an outgoing connection) and are never handed out twice (two
// agents must not share a port that neither has bound yet).
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skipf("no ephemeral range to check against: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Skipf("ip_local_port_range: %q", b)
	}
	lo, _ := strconv.Atoi(f[0])
	hi, _ := strconv.Atoi(f[1])
	room := max(0, min(lo, 65536)-portLow) + max(0, 65535-max(hi, portLow-1))
	if room < 1000 {
		t.Skipf("ephemeral range %d-%d leaves %d ports from %d up: freePort takes any", lo, hi, room, portLow)
	}
	seen := map[int]bool{}
	for range 500 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if p >= lo && p <= hi {
			t.Fatalf("freePort: %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		if p < portLow || p > 65535 {
			t.Fatalf("freePort: %d is outside [%d, 65535]", p, portLow)
		}
		if seen[p] {
			t.Fatalf("freePort: %d handed out twice", p)
		}
		seen[p] = true
	}
}

func TestPortSet(t *testing.T) {
	for _, s := range []portSet{{32768, 60999}, {20000, 30000}, {40000, 65535}, {65536, 65535}} {
		got := map[int]bool{}
		for i := range s.size() {
			p := s.pick(i)
			if p < portLow || p > 65535 || (p >= s.ephLow && p <= s.ephHigh) || got[p] {
				t.Fatalf("%+v: pick(%d) = %d", s, i, p)
			}
			got[p] = true
		}
		if want := 65536 - portLow - max(0, s.ephHigh-s.ephLow+1); len(got) != want {
			t.Fatalf("%+v: %d ports, want %d", s, len(got), want)
		}
	}
}
