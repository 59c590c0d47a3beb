package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestKeyringStateAndIDs(t *testing.T) {
	a, b := testKey(1), testKey(2)
	if KeyID(a) == KeyID(b) || len(KeyID(a)) != 8 {
		t.Fatalf("KeyID: %q %q", KeyID(a), KeyID(b))
	}
	if strings.Contains(KeyringState([][]byte{a, b}), fmt.Sprintf("%x", a[:4])) {
		t.Fatal("the keyring state shows key bytes")
	}
	ab, ba := KeyringState([][]byte{a, b}), KeyringState([][]byte{b, a})
	if ab == ba || ab[9:] != ba[9:] || !strings.HasPrefix(ab, KeyID(a)+".") {
		t.Fatalf("states %q and %q: want the same set digest with different primaries", ab, ba)
	}
	if one := KeyringState([][]byte{a}); one[9:] == ab[9:] {
		t.Fatal("one key and two keys give the same set digest")
	}
	for _, s := range []string{"", ab} {
		if err := checkKeyringState(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"abc", "ABCDEF01.00000000", "0123456780000000001", "01234567-01234567"} {
		if err := checkKeyringState(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
	if err := (Meta{Keyring: "nope"}).Validate(); err == nil || !strings.Contains(err.Error(), "Keyring") {
		t.Errorf("meta with a bad keyring state: %v", err)
	}
}

func TestCheckKeys(t *testing.T) {
	for _, tc := range []struct {
		keys [][]byte
		want string
	}{
		{nil, "none"},
		{[][]byte{testKey(1), testKey(2), testKey(3), testKey(4), testKey(5)}, "5, more than the 4 allowed"},
		{[][]byte{testKey(1), testKey(1)}, "keys[1]: the same key as keys[0]"},
		{[][]byte{testKey(1), {1, 2}}, "keys[1]: 2 bytes"},
	} {
		err := CheckKeys(tc.keys)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d keys: %v, want %q", len(tc.keys), err, tc.want)
		}
	}
	c := TestConfig()
	c.NodeName = "a"
	c.GossipKeys = [][]byte{testKey(2)}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "GossipKeys") {
		t.Errorf("GossipKeys without GossipKey: %v", err)
	}
}

// A cluster rotates its key in the three steps (install, use, remove)
// without any member seeing another die; afterwards a node that holds
// only the old key cannot join, and one with the new key can.
func TestKeyRotationSteps(t *testing.T) {
	old, fresh := testKey(1), testKey(2)
	// Patient failure detection: the assertion is that the rotation
	// kills nobody, so a stall of the loaded test machine must not.
	nodes := startCluster(t, 3, func(c *Config) {
		c.GossipKey = old
		c.ProbeInterval, c.ProbeTimeout = time.Second, 500*time.Millisecond
		c.SuspicionMult = 4
	})
	steps := [][][]byte{{old, fresh}, {fresh, old}, {fresh}}
	for i, keys := range steps {
		// One member at a time, as agents poll at different moments.
		for _, n := range nodes {
			if err := n.SetKeys(keys); err != nil {
				t.Fatalf("step %d, %s: %v", i, n.cfg.NodeName, err)
			}
			if got := KeyringState(n.Keys()); got != KeyringState(keys) {
				t.Fatalf("step %d, %s: keyring %s, want %s", i, n.cfg.NodeName, got, KeyringState(keys))
			}
			if !bytes.Equal(n.Keys()[0], keys[0]) {
				t.Fatalf("step %d, %s: primary is not keys[0]", i, n.cfg.NodeName)
			}
		}
		// Let gossip and probes run on the new keys for a while.
		never(t, time.Second, converged(nodes))
	}
	stale := startNode(t, "stale", func(c *Config) { c.GossipKey = old; c.Join = []string{nodes[0].addr()} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stale.Join(ctx); !errors.Is(err, ErrGossipKey) {
		t.Fatalf("a node with the removed key joined: %v", err)
	}
	again := startNode(t, "again", func(c *Config) { c.GossipKey = fresh })
	again.join(t, nodes[0])
	eventually(t, waitLong, converged(append(nodes, again)))
}

func TestSetKeysNeedsEncryption(t *testing.T) {
	n := startNode(t, "plain", nil)
	if err := n.SetKeys([][]byte{testKey(1)}); err == nil {
		t.Fatal("SetKeys on a gossip without encryption succeeded")
	}
	if n.Keys() != nil {
		t.Fatal("Keys of a gossip without encryption")
	}
}
