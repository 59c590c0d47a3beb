package identity

// Gossip key rotation, the record's side (issue 10): the list of gossip
// keys (primary first) and where a rotation stands, and the pure decision
// the leader makes from the keyrings the members advertise
// (gossip.Meta.Keyring). A rotation goes
//
//	install: the record lists [old, new]; every agent installs new as a
//	         second key (decrypts with both, encrypts with old)
//	use:     the record lists [new, old]; every agent encrypts with new
//	remove:  the record lists [new]; every agent drops old
//	none:    done
//
// and the leader moves it on only when every alive member that is not
// named in the record's revocations shows, in its gossip metadata, exactly
// the keyring the record lists for the current phase. A member that is
// down does not hold the rotation up: when it comes back it fetches the
// current list over the API with its certificate before it gossips (see
// the agent), which is also how a revoked node is left out: its
// certificate is refused, so it never learns the new key.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// MaxGossipKeys bounds the record's gossip keys (a rotation needs two).
const MaxGossipKeys = gossip.MaxKeys

// Phase is a step of a gossip key rotation.
type Phase string

// The phases, in order; PhaseNone is no rotation in progress.
const (
	PhaseNone    Phase = ""
	PhaseInstall Phase = "install"
	PhaseUse     Phase = "use"
	PhaseRemove  Phase = "remove"
)

// Validate refuses a phase that is none of the above.
func (p Phase) Validate() error {
	switch p {
	case PhaseNone, PhaseInstall, PhaseUse, PhaseRemove:
		return nil
	}
	return fmt.Errorf("phase: %q is none of %q, %q, %q or empty", truncate(string(p)), PhaseInstall, PhaseUse, PhaseRemove)
}

// String is the phase's name, "none" for PhaseNone.
func (p Phase) String() string {
	if p == PhaseNone {
		return "none"
	}
	return string(p)
}

// Rotation is where a gossip key rotation stands.
type Rotation struct {
	Phase Phase `json:"phase"`
	// Since is when Phase began (for PhaseNone: when the last rotation
	// ended; zero if there was none).
	Since time.Time `json:"since,omitzero"`
}

// ErrRotationInProgress refuses a rotation while another is under way.
var ErrRotationInProgress = errors.New("a gossip key rotation is in progress")

// checkGossipKeys checks a key list: 1 to MaxGossipKeys keys of KeyBytes,
// no duplicates.
func checkGossipKeys(keys [][]byte) error {
	if err := gossip.CheckKeys(keys); err != nil {
		return err
	}
	for i, k := range keys {
		if len(k) != KeyBytes {
			return fmt.Errorf("keys[%d]: %d bytes, want %d", i, len(k), KeyBytes)
		}
	}
	return nil
}

// SealGossipKeys seals keys (primary first) into r with kek: the list, and
// the primary alone where records before rotations kept it.
func (r *Record) SealGossipKeys(kek []byte, keys [][]byte) error {
	if err := checkGossipKeys(keys); err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	primary, err := pki.Seal(kek, keys[0], aad(keyGossipKey))
	if err != nil {
		return err
	}
	list, _ := json.Marshal(keys) // [][]byte always marshals (base64 strings)
	sealed, err := pki.Seal(kek, list, aad(keyGossipKeys))
	if err != nil {
		return err
	}
	r.GossipKeySealed, r.GossipKeysSealed = primary, sealed
	return nil
}

// openGossipKeys opens the key list, or, in a record written before
// rotations, the one key.
func (r *Record) openGossipKeys(open func(key string, sealed []byte) ([]byte, error)) ([][]byte, error) {
	if len(r.GossipKeysSealed) == 0 {
		k, err := open(keyGossipKey, r.GossipKeySealed)
		if err != nil {
			return nil, err
		}
		if len(k) != KeyBytes {
			return nil, fmt.Errorf("cluster identity record: data.%s: %d bytes, want %d", keyGossipKey, len(k), KeyBytes)
		}
		return [][]byte{k}, nil
	}
	b, err := open(keyGossipKeys, r.GossipKeysSealed)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("cluster identity record: data.%s: %w", keyGossipKeys, err)
	}
	if err := checkGossipKeys(keys); err != nil {
		return nil, fmt.Errorf("cluster identity record: data.%s: %w", keyGossipKeys, err)
	}
	return keys, nil
}

// StartRotation begins a rotation to newKey: the phase becomes install and
// newKey is added after the current keys. It refuses while a rotation is
// in progress (ErrRotationInProgress) and when the record would hold more
// than MaxGossipKeys keys.
func StartRotation(rot Rotation, keys [][]byte, newKey []byte, now time.Time) (Rotation, [][]byte, error) {
	if rot.Phase != PhaseNone {
		return rot, keys, fmt.Errorf("%w (phase %s since %s): wait for it to finish", ErrRotationInProgress, rot.Phase, rot.Since.Format(time.RFC3339))
	}
	if len(keys)+1 > MaxGossipKeys {
		return rot, keys, fmt.Errorf("gossip keys: the record holds %d, and %d is the most allowed", len(keys), MaxGossipKeys)
	}
	next := append(slices.Clone(keys), newKey)
	if err := checkGossipKeys(next); err != nil {
		return rot, keys, fmt.Errorf("gossip keys: %w", err)
	}
	return Rotation{Phase: PhaseInstall, Since: now.UTC()}, next, nil
}

// MemberKeys is what the leader knows of one gossip member for a rotation.
type MemberKeys struct {
	Name string
	// Alive: the member is alive in the leader's gossip view.
	Alive bool
	// Keyring is the gossip.KeyringState it advertises.
	Keyring string
}

// Progress is the state of a rotation's current phase.
type Progress struct {
	Phase Phase
	// Expect is the keyring state the phase waits for (gossip.KeyringState
	// of the record's keys).
	Expect string
	// Confirmed are the alive members that show Expect; Waiting those
	// that do not yet; Revoked the alive members named in the record's
	// revocations, not waited for (they cannot fetch keys).
	Confirmed, Waiting, Revoked []string
}

// Done reports whether the phase may end: every member waited for shows
// the expected keyring, and at least one does.
func (p Progress) Done() bool { return len(p.Waiting) == 0 && len(p.Confirmed) > 0 }

// CheckPhase computes the progress of the current phase of a rotation
// whose record lists keys, from the members' advertised keyrings.
func CheckPhase(phase Phase, keys [][]byte, members []MemberKeys, revoked map[string]time.Time) Progress {
	p := Progress{Phase: phase, Expect: gossip.KeyringState(keys)}
	for _, m := range members {
		_, isRevoked := revoked[m.Name]
		switch {
		case !m.Alive:
		case m.Keyring == p.Expect:
			p.Confirmed = append(p.Confirmed, m.Name)
		case isRevoked:
			p.Revoked = append(p.Revoked, m.Name)
		default:
			p.Waiting = append(p.Waiting, m.Name)
		}
	}
	return p
}

// NextPhase is the phase after phase and the keys the record lists in it:
// install -> use (the newest key, the last, becomes primary), use ->
// remove (only the primary is kept), remove -> none. ok is false for
// PhaseNone.
func NextPhase(phase Phase, keys [][]byte) (next Phase, nextKeys [][]byte, ok bool) {
	switch phase {
	case PhaseInstall:
		last := len(keys) - 1
		return PhaseUse, append([][]byte{keys[last]}, keys[:last]...), true
	case PhaseUse:
		return PhaseRemove, [][]byte{keys[0]}, true
	case PhaseRemove:
		return PhaseNone, keys, true
	}
	return phase, keys, false
}
