package gossip

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Limits on Config values.
const (
	MaxNodeNameLen = 128     // node names travel in every gossip message
	MaxEventBuffer = 1 << 20 // Events channel capacity
)

// Config configures a Gossip. Start from DefaultConfig (or TestConfig) and
// change what you need; New calls Validate.
type Config struct {
	// NodeName must be unique in the cluster; it is also the agent's Raft
	// server ID. Join refuses to take a name an alive member already has.
	NodeName string

	// BindAddr and BindPort are where gossip listens, UDP and TCP on the
	// same port. BindPort 0 picks a free port (tests).
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what the others dial. Empty and
	// 0: derived from the bind address (memberlist picks a private address
	// when binding to 0.0.0.0).
	AdvertiseAddr string
	AdvertisePort int

	// Join lists host:port of members to join; Join retries them with
	// exponential back-off between JoinRetryMin and JoinRetryMax. Empty:
	// this is the first node.
	Join                       []string
	JoinRetryMin, JoinRetryMax time.Duration

	// GossipKey, when set, encrypts all gossip with AES-GCM; 16, 24 or 32
	// bytes (AES-128, -192, -256). nil: no encryption. Every member must
	// use the same key: a node with another key cannot join.
	GossipKey []byte
	// GossipKeys are further keys, installed to decrypt but never used
	// to encrypt (a key rotation in progress; see SetKeys). They need
	// GossipKey; with it at most MaxKeys keys in all.
	GossipKeys [][]byte

	// Transport replaces memberlist's UDP/TCP transport; BindAddr and
	// BindPort are then unused. Optional.
	Transport memberlist.NodeAwareTransport

	// Failure detection (SWIM). Every ProbeInterval each member pings one
	// other member, round robin. No ack within ProbeTimeout: it asks
	// IndirectChecks others to ping for it and tries TCP, until the end of
	// the interval. Still nothing: the member is suspect for
	//
	//	min = SuspicionMult * max(1, log10(n)) * ProbeInterval
	//
	// (n the number of members) once SuspicionMult-2 other members
	// independently confirm the suspicion, up to
	// SuspicionMaxTimeoutMult*min without confirmations, and then dead.
	// A suspect member that is in fact alive refutes in that time.
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	IndirectChecks          int
	SuspicionMult           int
	SuspicionMaxTimeoutMult int

	// Dissemination. Every GossipInterval a member sends queued messages
	// (joins, metadata changes, suspicions) to GossipNodes random members;
	// each message is sent RetransmitMult*ceil(log10(n+1)) times.
	// GossipToTheDeadTime is how long dead members still get gossip, so
	// that a member wrongly declared dead hears it and refutes; memberlist
	// forgets a dead member after it (this package's table does not: see
	// DeadRetention).
	GossipInterval      time.Duration
	GossipNodes         int
	RetransmitMult      int
	GossipToTheDeadTime time.Duration

	// PushPullInterval is the period of full state exchanges over TCP with
	// one random member; they repair whatever gossip lost. StreamTimeout
	// bounds each TCP exchange (join, push/pull, TCP ping).
	PushPullInterval time.Duration
	StreamTimeout    time.Duration

	// BroadcastTimeout is how long UpdateMeta waits for memberlist to
	// confirm that a metadata change has been gossiped.
	BroadcastTimeout time.Duration

	// EventBuffer is the capacity of the Events channel. The agent's
	// reader only wakes its loops, which re-read the table, so a small
	// buffer loses nothing; each slot holds a whole Member (about 200
	// bytes, with pointers the collector scans), allocated with the
	// channel whether used or not.
	EventBuffer int
	// DeadRetention is how long a dead or departed member stays in the
	// member table before it is forgotten.
	DeadRetention time.Duration
	// ReconnectInterval is how often Reconnect joins again one of the
	// members seen dead or departed (at random, with the chance
	// departed/alive) and the Join addresses of no known member: memberlist never probes a dead
	// member, so without it the two sides of a healed partition, or a
	// member wrongly declared dead while it stalled, stay apart for good.
	// 0 turns reconnection off.
	ReconnectInterval time.Duration

	// Logger receives this package's logs and memberlist's, the latter at
	// their own level ([DEBUG] as Debug, [INFO] as Info, [WARN] as Warn,
	// [ERR] as Error). nil: slog.Default().
	Logger *slog.Logger
	// Now stamps the member table (Member.Since). nil: time.Now.
	Now func() time.Time

	// CheckCluster, if set, is asked about the metadata of every alive
	// member with a cluster id (Meta.ClusterID not empty) that the other
	// side of a join or push/pull brings; an error refuses the whole merge
	// (see ClusterRefusedError), so two clusters' memberships never mix.
	// It is called from memberlist's goroutines and must return quickly.
	CheckCluster func(member string, m Meta) error
}

// DefaultConfig returns timings for a LAN of 3 to 20 hosts, aiming to declare
// a host that stops answering dead within about 3 to 5 seconds.
//
// The arithmetic, n the number of members:
//
//   - a dead host is probed by someone within about one ProbeInterval
//     (each of the n-1 others pings one member per interval), and that
//     probe fails at the end of its interval: suspect after 0.5 to 1 s;
//   - SuspicionMult 4 gives min = 4 * 0.5 s = 2 s while log10(n) <= 1
//     (n <= 10) and 4 * 1.3 * 0.5 s = 2.6 s at n = 20; with n >= 4 the timer
//     starts at SuspicionMaxTimeoutMult*min = 6 s and falls to min as
//     SuspicionMult-2 = 2 other members confirm, which they do within a
//     probe round or two; with n = 3 there is no one to confirm and min
//     applies directly;
//   - so dead after about 3 s (up to 3.6 s at n = 20), and after at most
//     about 7 s (8.8 s at n = 20) when confirmations are slow.
//
// ProbeTimeout 250 ms is far above LAN round trips but tolerates a short
// garbage-collection or scheduling stall without a false suspicion, and a
// member wrongly suspected has 2 s or more to refute. GossipInterval 200 ms
// to 3 members spreads a message to 20 members in about three rounds.
func DefaultConfig() Config {
	return Config{
		BindAddr:      "0.0.0.0",
		BindPort:      7946,
		AdvertisePort: 0,
		JoinRetryMin:  time.Second,
		JoinRetryMax:  30 * time.Second,

		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            250 * time.Millisecond,
		IndirectChecks:          3,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 3,

		GossipInterval: 200 * time.Millisecond,
		GossipNodes:    3,
		// memberlist's LAN default of 4 sends a message only 4 times
		// below 10 members. When agents join together (a cluster
		// starting), their announcements share the same few packets and
		// a member can miss them all until the next push/pull. Measured
		// on loopback, 5 members joining in a burst: with 4, one start
		// in 30 left a member unaware of two others for over 15 s; with
		// 6, none in 60. The cost is a few hundred bytes per change.
		RetransmitMult: 6,
		// Long enough for a member wrongly declared dead to hear it and
		// refute; also how long memberlist remembers the dead.
		GossipToTheDeadTime: 30 * time.Second,

		// memberlist's LAN default is 30 s; a full state of 20 members
		// is about 12 KiB, cheap enough to repair lost gossip twice as
		// often.
		PushPullInterval: 15 * time.Second,
		StreamTimeout:    5 * time.Second,
		BroadcastTimeout: 5 * time.Second,

		EventBuffer:   128,
		DeadRetention: 24 * time.Hour,

		ReconnectInterval: 5 * time.Second,
	}
}

// TestConfig returns timings for several members in one process over
// loopback: death is detected in about a second, joins retry after 20 ms.
func TestConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.JoinRetryMin = 20 * time.Millisecond
	c.JoinRetryMax = 200 * time.Millisecond
	// Generous for loopback, because tests run under -race on a busy
	// machine: a stalled process must not look dead.
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 2
	c.GossipInterval = 20 * time.Millisecond
	c.GossipToTheDeadTime = 5 * time.Second
	c.PushPullInterval = 2 * time.Second
	c.StreamTimeout = 2 * time.Second
	c.BroadcastTimeout = 2 * time.Second
	c.EventBuffer = 256
	c.ReconnectInterval = 500 * time.Millisecond
	return c
}

// Validate checks every field; the error names each field that is wrong.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("gossip config: "+format, args...))
	}

	switch {
	case c.NodeName == "":
		bad("NodeName is empty")
	case len(c.NodeName) > MaxNodeNameLen:
		bad("NodeName is %d bytes, longer than the limit of %d", len(c.NodeName), MaxNodeNameLen)
	default:
		if err := checkToken(c.NodeName, MaxNodeNameLen); err != nil {
			bad("NodeName %q: %v", c.NodeName, err)
		}
	}

	if c.Transport == nil {
		if net.ParseIP(c.BindAddr) == nil {
			bad("BindAddr %q is not an IP address", c.BindAddr)
		}
		if c.BindPort < 0 || c.BindPort > 65535 {
			bad("BindPort %d: want 0-65535", c.BindPort)
		}
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("AdvertisePort %d: want 0-65535", c.AdvertisePort)
	}

	for i, a := range c.Join {
		if err := checkHostPort(a); err != nil {
			bad("Join[%d] %q: %v", i, a, err)
		}
	}
	if c.JoinRetryMin <= 0 {
		bad("JoinRetryMin %v must be positive", c.JoinRetryMin)
	}
	if c.ReconnectInterval < 0 {
		bad("ReconnectInterval %v must not be negative", c.ReconnectInterval)
	}
	if c.JoinRetryMax < c.JoinRetryMin {
		bad("JoinRetryMax %v must be at least JoinRetryMin %v", c.JoinRetryMax, c.JoinRetryMin)
	}

	if err := checkKeyLen(len(c.GossipKey)); c.GossipKey != nil && err != nil {
		bad("GossipKey: %v", err)
	}
	if len(c.GossipKeys) > 0 {
		if c.GossipKey == nil {
			bad("GossipKeys: %d keys without a GossipKey (the primary)", len(c.GossipKeys))
		} else if err := CheckKeys(append([][]byte{c.GossipKey}, c.GossipKeys...)); err != nil {
			bad("GossipKey and GossipKeys: %v", err)
		}
	}

	positive := func(name string, d time.Duration) {
		if d <= 0 {
			bad("%s %v must be positive", name, d)
		}
	}
	positive("ProbeInterval", c.ProbeInterval)
	positive("ProbeTimeout", c.ProbeTimeout)
	if c.ProbeTimeout > 0 && c.ProbeInterval > 0 && c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout %v must be shorter than ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	positive("GossipInterval", c.GossipInterval)
	positive("GossipToTheDeadTime", c.GossipToTheDeadTime)
	positive("PushPullInterval", c.PushPullInterval)
	positive("StreamTimeout", c.StreamTimeout)
	positive("BroadcastTimeout", c.BroadcastTimeout)
	positive("DeadRetention", c.DeadRetention)
	if c.IndirectChecks < 0 {
		bad("IndirectChecks %d must not be negative", c.IndirectChecks)
	}
	atLeastOne := func(name string, v int) {
		if v < 1 {
			bad("%s %d must be at least 1", name, v)
		}
	}
	atLeastOne("SuspicionMult", c.SuspicionMult)
	atLeastOne("SuspicionMaxTimeoutMult", c.SuspicionMaxTimeoutMult)
	atLeastOne("GossipNodes", c.GossipNodes)
	atLeastOne("RetransmitMult", c.RetransmitMult)
	if c.EventBuffer < 1 || c.EventBuffer > MaxEventBuffer {
		bad("EventBuffer %d: want 1-%d", c.EventBuffer, MaxEventBuffer)
	}
	return errors.Join(errs...)
}

func checkKeyLen(n int) error {
	switch n {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%d bytes; want 16, 24 or 32 (AES-128, AES-192 or AES-256)", n)
}

// ParseGossipKey decodes the --gossip-key flag: standard base64 of 16, 24 or
// 32 random bytes (for example `head -c 32 /dev/urandom | base64`).
func ParseGossipKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("--gossip-key is empty; want base64 of 16, 24 or 32 bytes")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key is not valid base64: %v", err)
	}
	if err := checkKeyLen(len(key)); err != nil {
		return nil, fmt.Errorf("--gossip-key decodes to %v", err)
	}
	return key, nil
}

// memberlistConfig translates c, which has been validated, for memberlist.
func (c Config) memberlistConfig() *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeName
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	if c.Transport != nil {
		mc.Transport = c.Transport
	}
	if c.GossipKey != nil {
		var more [][]byte
		for _, k := range c.GossipKeys {
			more = append(more, append([]byte(nil), k...))
		}
		// Validated: NewKeyring cannot fail.
		mc.Keyring, _ = memberlist.NewKeyring(more, append([]byte(nil), c.GossipKey...))
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.IndirectChecks = c.IndirectChecks
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	mc.GossipInterval = c.GossipInterval
	mc.GossipNodes = c.GossipNodes
	mc.RetransmitMult = c.RetransmitMult
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.StreamTimeout
	// A name held by a dead member may be taken at once by another
	// address (a host that came back with a new IP); a name held by an
	// alive or suspect member never is. memberlist's 0 would mean never,
	// which leaves such a host outside the cluster, unseen, until
	// GossipToTheDeadTime has passed.
	mc.DeadNodeReclaimTime = time.Nanosecond
	mc.EnableCompression = false
	return mc
}

// joinAddrString is for log lines: "a:1, b:2".
func joinAddrString(addrs []string) string {
	return strings.Join(addrs, ", ")
}
