package gossip

// The keyring (issue 10, gossip key rotation): memberlist encrypts with
// the primary key and decrypts with any installed key, so a cluster
// rotates by installing the new key everywhere, then making it primary
// everywhere, then removing the old one. This file holds the keyring of
// one Gossip and the short, public names of keys and keyrings that agents
// advertise (Meta.Keyring) so the leader can tell when every member has
// reached a step. A key itself never leaves the process here.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
)

// MaxKeys bounds the keys of a keyring: a rotation needs two; a few more
// leave room, more would only slow every decryption that fails.
const MaxKeys = 4

// keyIDLen is the length in hex digits of a key ID and of a ring digest.
const keyIDLen = 8

// KeyID is a key's short public name: the first 8 hex digits of a
// domain-separated SHA-256 of it (32 bits of a hash reveal nothing of the
// key and are enough to tell the few keys of one cluster apart).
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("shoal gossip key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))[:keyIDLen]
}

// KeyringState names a keyring, primary first: the primary's KeyID, a dot,
// and a digest of the set of keys (order aside from the primary does not
// matter). Two members with the same state encrypt with the same key and
// decrypt the same keys. It is what Meta.Keyring advertises; "" for no
// keys.
func KeyringState(keys [][]byte) string {
	if len(keys) == 0 {
		return ""
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = KeyID(k)
	}
	primary := ids[0]
	slices.Sort(ids)
	ids = slices.Compact(ids)
	h := sha256.New()
	h.Write([]byte("shoal gossip keyring\x00"))
	for _, id := range ids {
		h.Write([]byte(id))
	}
	return primary + "." + hex.EncodeToString(h.Sum(nil))[:keyIDLen]
}

// checkKeyringState validates Meta.Keyring: empty, or as KeyringState
// writes it.
func checkKeyringState(s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 2*keyIDLen+1 || s[keyIDLen] != '.' {
		return fmt.Errorf("%q: want 8 hex digits, a dot, 8 hex digits", truncate(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i != keyIDLen && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%q: byte %d is not a lower-case hex digit", truncate(s), i)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// CheckKeys validates a key list, primary first: 1 to MaxKeys keys of 16,
// 24 or 32 bytes, no duplicates. Errors name the key by index.
func CheckKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("keys: none; want at least the primary")
	}
	if len(keys) > MaxKeys {
		return fmt.Errorf("keys: %d, more than the %d allowed", len(keys), MaxKeys)
	}
	for i, k := range keys {
		if err := checkKeyLen(len(k)); err != nil {
			return fmt.Errorf("keys[%d]: %v", i, err)
		}
		for j := range i {
			if bytes.Equal(k, keys[j]) {
				return fmt.Errorf("keys[%d]: the same key as keys[%d]", i, j)
			}
		}
	}
	return nil
}

// Keys returns the installed keys, primary first (nil without
// encryption).
func (g *Gossip) Keys() [][]byte {
	if g.keyring == nil {
		return nil
	}
	primary := g.keyring.GetPrimaryKey()
	out := [][]byte{primary}
	for _, k := range g.keyring.GetKeys() {
		if !bytes.Equal(k, primary) {
			out = append(out, k)
		}
	}
	return out
}

// SetKeys makes keys (primary first, see CheckKeys) the keyring: it
// installs the missing ones, makes keys[0] primary, then removes the keys
// not listed, in that order, so that a message in flight is always
// readable by one of the keys installed. It needs a Gossip made with a key
// (Config.GossipKey): encryption cannot be turned on or off while running.
func (g *Gossip) SetKeys(keys [][]byte) error {
	if err := CheckKeys(keys); err != nil {
		return fmt.Errorf("set keys: %w", err)
	}
	if g.keyring == nil {
		return errors.New("set keys: this gossip runs without encryption (no Config.GossipKey)")
	}
	g.keyMu.Lock()
	defer g.keyMu.Unlock()
	for _, k := range keys {
		if err := g.keyring.AddKey(k); err != nil {
			return fmt.Errorf("set keys: %w", err)
		}
	}
	if err := g.keyring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("set keys: %w", err)
	}
	// From the tail: memberlist's RemoveKey of the last key writes
	// nothing into the slice its decryptions may be reading; of another
	// key it shifts that slice in place. The rotation's order (the old
	// key last once the new one is primary) always removes at the tail.
	installed := slices.Clone(g.keyring.GetKeys())
	for i := len(installed) - 1; i > 0; i-- {
		k := installed[i]
		if !slices.ContainsFunc(keys, func(w []byte) bool { return bytes.Equal(w, k) }) {
			if err := g.keyring.RemoveKey(k); err != nil {
				return fmt.Errorf("set keys: %w", err)
			}
		}
	}
	return nil
}
