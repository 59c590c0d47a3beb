package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/hashicorp/memberlist"
)

// Roles an agent advertises in Meta.Role.
const (
	RoleNone     = ""         // not in a cluster yet
	RoleVoter    = "voter"    // a Raft voter
	RoleNonvoter = "nonvoter" // in a cluster, not a voter
)

// Limits on Meta fields. They are chosen so that the largest valid Meta
// encodes under memberlist.MetaMaxSize (512 bytes): 2*100 + 2*64 + 48 + 17
// bytes of values plus about 113 bytes of keys and punctuation is 506
// (TestMetaLargestFits measures it).
const (
	MaxAddrLen    = 100 // APIAddr, RaftAddr
	MaxZoneLen    = 64
	MaxClusterLen = 64
	MaxVersionLen = 48
)

// metaVersion is the version of the metadata encoding this binary writes.
// Rule for later versions: only add fields. A reader ignores fields it does
// not know, so an older agent keeps understanding a newer one's metadata; a
// change that cannot be expressed by adding a field needs a new key.
const metaVersion = 1

// Meta is what each agent advertises in its memberlist node metadata.
type Meta struct {
	APIAddr   string // host:port of the HTTP API
	RaftAddr  string // host:port where Raft listens, or would listen once this agent is a voter
	Zone      string // failure zone; the voter manager spreads voters across zones
	Role      string // RoleVoter, RoleNonvoter or RoleNone
	ClusterID string // empty until the agent belongs to a cluster
	Version   string // the agent's software version

	// Leaving is set by Gossip.Leave just before this agent leaves, so the
	// others can tell a departure from a failure and stop counting on it
	// (the voter manager treats a leaving member as not eligible).
	// UpdateMeta keeps whatever Leave set.
	Leaving bool
	// Worker says this agent's certificate may not vote (it joined with a
	// worker token): the voter manager never promotes it, and Raft would
	// refuse its connections anyway.
	Worker bool
	// Keyring is KeyringState of the gossip keys this agent has installed
	// (its primary key's ID and a digest of the set): the leader moves a
	// key rotation on when every member shows the state it waits for.
	// Empty when the agent does not take part in rotations.
	Keyring string
	// LeaderTerm is the Raft term in which this agent leads, 0 when it
	// does not: non-voters learn the leader from gossip instead of asking
	// the voters. Only a voter that is not a Worker advertises it, and
	// not while Leaving (UpdateMeta clears it then). Several members may
	// advertise a term for a moment after an election; the highest wins.
	LeaderTerm uint64
}

// wireMeta is the JSON form of Meta. Keys are short: the whole encoding must
// fit in 512 bytes.
type wireMeta struct {
	V         int    `json:"v"`
	APIAddr   string `json:"api,omitempty"`
	RaftAddr  string `json:"raft,omitempty"`
	Zone      string `json:"zone,omitempty"`
	Role      string `json:"role,omitempty"`
	ClusterID string `json:"cluster,omitempty"`
	Version   string `json:"ver,omitempty"`
	Leaving   bool   `json:"leaving,omitempty"`
	Worker    bool   `json:"worker,omitempty"`
	Keyring   string `json:"gk,omitempty"`
	// Written by version 1 agents since leaders advertise themselves;
	// older ones ignore it and non-voters then ask the voters.
	LeaderTerm uint64 `json:"lt,omitempty"`
}

// Validate checks every field against its limit; the error names the field.
func (m Meta) Validate() error {
	var errs []error
	check := func(field, v string, max int) {
		if err := checkToken(v, max); err != nil {
			errs = append(errs, fmt.Errorf("meta: %s: %w", field, err))
		}
	}
	checkAddr := func(field, v string) {
		check(field, v, MaxAddrLen)
		if v == "" {
			return
		}
		if err := checkHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("meta: %s %q: %w", field, v, err))
		}
	}
	checkAddr("APIAddr", m.APIAddr)
	checkAddr("RaftAddr", m.RaftAddr)
	check("Zone", m.Zone, MaxZoneLen)
	check("ClusterID", m.ClusterID, MaxClusterLen)
	check("Version", m.Version, MaxVersionLen)
	if err := checkKeyringState(m.Keyring); err != nil {
		errs = append(errs, fmt.Errorf("meta: Keyring: %w", err))
	}
	switch m.Role {
	case RoleNone, RoleVoter, RoleNonvoter:
	default:
		errs = append(errs, fmt.Errorf("meta: Role %q: want %q, %q or empty", m.Role, RoleVoter, RoleNonvoter))
	}
	// Only a voter leads; keeping the others out also keeps the largest
	// metadata under memberlist's limit (a leader's is never a Worker's,
	// a Leaving one's or a nonvoter's: TestMetaLargestFits).
	if m.LeaderTerm != 0 && (m.Role != RoleVoter || m.Worker || m.Leaving) {
		errs = append(errs, fmt.Errorf("meta: LeaderTerm %d: only a voter that is not a Worker and not Leaving advertises leadership (Role %q, Worker %v, Leaving %v)",
			m.LeaderTerm, m.Role, m.Worker, m.Leaving))
	}
	return errors.Join(errs...)
}

// checkToken accepts printable ASCII without spaces, quotes or backslashes,
// at most max bytes: such a value is copied into JSON byte for byte, which
// keeps the encoded size predictable.
func checkToken(v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%d bytes, longer than the limit of %d", len(v), max)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return fmt.Errorf("byte %d (%q) is not allowed: use printable ASCII without spaces, quotes or backslashes", i, c)
		}
	}
	return nil
}

func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port: %v", err)
	}
	if host == "" {
		return errors.New("want host:port: the host is empty")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	return nil
}

// encodeMeta validates m and returns its wire form, at most
// memberlist.MetaMaxSize bytes.
func encodeMeta(m Meta) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	w := wireMeta{
		V:       metaVersion,
		APIAddr: m.APIAddr, RaftAddr: m.RaftAddr, Zone: m.Zone, Role: m.Role,
		ClusterID: m.ClusterID, Version: m.Version, Leaving: m.Leaving, Worker: m.Worker,
		Keyring: m.Keyring, LeaderTerm: m.LeaderTerm,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > memberlist.MetaMaxSize {
		// Unreachable with the limits above; kept as the last guard
		// because memberlist panics on oversized metadata.
		return nil, fmt.Errorf("meta: encodes to %d bytes, over memberlist's limit of %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// decodeMeta reads metadata written by any version of this package. Fields
// it does not know are ignored; metadata without a version is not ours.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) == 0 {
		return Meta{}, errors.New("meta: empty (not a Shoal agent?)")
	}
	var w wireMeta
	if err := json.Unmarshal(b, &w); err != nil {
		return Meta{}, fmt.Errorf("meta: not a Shoal agent's metadata: %w", err)
	}
	if w.V < 1 {
		return Meta{}, fmt.Errorf("meta: version %d: want 1 or later (not a Shoal agent?)", w.V)
	}
	return Meta{
		APIAddr: w.APIAddr, RaftAddr: w.RaftAddr, Zone: w.Zone, Role: w.Role,
		ClusterID: w.ClusterID, Version: w.Version, Leaving: w.Leaving, Worker: w.Worker,
		Keyring: w.Keyring, LeaderTerm: w.LeaderTerm,
	}, nil
}

// maxCachedMetas bounds a metaCache: past it the cache starts again empty
// (a cluster has one encoding per member and per change of its metadata).
const maxCachedMetas = 8192

// metas remembers decoded metadata by its encoding: memberlist hands the
// same bytes over again with every alive message and every state exchange
// (at 250 members in one process, decoding them was 6% of the CPU). It is
// the process's, not each Gossip's: a decoding depends on the bytes alone,
// and agents sharing a process (tests, hollow nodes: 0.43 GB of caches at
// 1,000 of them) see the same members.
var metas metaCache

// metaCache maps metadata encodings to their decoding. Safe for
// concurrent use; the zero value is empty.
type metaCache struct {
	mu sync.RWMutex
	m  map[string]cachedMeta
}

type cachedMeta struct {
	meta Meta
	err  error
}

// decode is decodeMeta(b), from the cache when b was decoded before.
func (c *metaCache) decode(b []byte) (Meta, error) {
	c.mu.RLock()
	got, ok := c.m[string(b)]
	c.mu.RUnlock()
	if ok {
		return got.meta, got.err
	}
	meta, err := decodeMeta(b)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedMetas {
		c.m = make(map[string]cachedMeta)
	}
	c.m[string(b)] = cachedMeta{meta, err}
	c.mu.Unlock()
	return meta, err
}
