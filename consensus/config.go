package consensus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Config tunes a Node. Start from DefaultConfig (production) or TestConfig
// (in-process tests) and set the identity and addresses.
type Config struct {
	// ID is the Raft server ID; Shoal uses the node name.
	ID string

	// DataDir holds the log and stable store (raft.db or wal/, see
	// LogStore) and snapshots/ (file snapshots, the newest SnapshotRetain
	// kept). Required unless InMemory.
	DataDir string

	// LogStore picks the on-disk log: LogStoreBolt ("bolt", also "", the
	// default: raft-boltdb v2 in raft.db) or LogStoreWAL ("wal":
	// hashicorp/raft-wal in wal/, one fsync per append). A DataDir keeps
	// the kind it was made with; opening it with the other kind fails with
	// a *LogStoreMismatchError. Unused when InMemory.
	LogStore string

	// BindAddr is the Raft TCP listen address, e.g. "127.0.0.1:7071" or
	// "0.0.0.0:7071". Port 0 picks a free port. Unused when Transport is set.
	BindAddr string

	// AdvertiseAddr is the address other voters dial. It defaults to the
	// listener's address, which must then be a specific IP (not 0.0.0.0).
	AdvertiseAddr string

	// TLS, when set, wraps the Raft transport in TLS: the same *tls.Config
	// serves the listener and dials peers, so it should carry the node's
	// certificate, the cluster CA in both RootCAs and ClientCAs and
	// ClientAuth = tls.RequireAndVerifyClientCert for mutual TLS. Nil means
	// plain TCP.
	TLS *tls.Config

	// Bootstrap: if there is no existing Raft state, bootstrap a cluster of
	// one voter, this node. Existing state is never overwritten.
	Bootstrap bool

	// Transport, when set, replaces the TCP transport; tests pass a
	// raft.InmemTransport. Raft closes it on Shutdown.
	Transport raft.Transport

	// InMemory keeps the log, stable store and snapshots in memory (tests).
	InMemory bool

	// HeartbeatTimeout: a follower that hears nothing from the leader for
	// this long (randomised up to twice as long) starts an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout: a candidate that has not won within this long
	// (randomised likewise) starts a new election.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader that has not heard from a quorum for this
	// long steps down. At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout: the longest the leader waits before sending an
	// AppendEntries that carries only a new commit index.
	CommitTimeout time.Duration

	// SnapshotThreshold: take a snapshot once this many entries were applied
	// since the last one (checked every SnapshotInterval).
	SnapshotThreshold uint64
	// SnapshotBytes: take a snapshot as soon as entries of this many bytes
	// in all were applied since the last one, whatever their count (an
	// entry carries up to 1,024 writes). Between MinSnapshotBytes and
	// MaxSnapshotBytes. See logbytes.go.
	SnapshotBytes uint64
	// SnapshotInterval: how often to check whether to snapshot (randomised).
	SnapshotInterval time.Duration
	// TrailingLogs: entries kept in the log after a snapshot, so a follower
	// that is a little behind catches up from the log and not a snapshot.
	// At most MaxTrailingLogs.
	TrailingLogs uint64
	// TrailingBytes bounds those entries by size too: after a snapshot the
	// log keeps the most recent entries that fit in TrailingBytes, at most
	// TrailingLogs of them. At most MaxSnapshotBytes; 0 keeps none.
	TrailingBytes uint64
	// SnapshotRetain: how many snapshots to keep on disk.
	SnapshotRetain int

	// ApplyTimeout bounds how long Propose, AddVoter and RemoveServer wait to
	// hand their entry to Raft when the caller's context has no earlier
	// deadline.
	ApplyTimeout time.Duration

	// Logger receives the node's and raft's logs. Nil means a logger named
	// "raft" at Warn level on stderr: raft is chatty at Info.
	Logger hclog.Logger

	// Observer, if set, receives the node's measurements (for metrics).
	Observer Observer
}

// Observer receives what a Node measures. Its methods are called from the
// node's goroutines and must return at once.
type Observer interface {
	// ApplyDone: one entry took d from raft.Apply to being applied to the
	// leader's store (or failing).
	ApplyDone(d time.Duration)
	// LeaderChanged: the leader this node knows changed to another server.
	LeaderChanged()
}

// DefaultConfig returns production settings.
//
// Timings: raft's own defaults (1s heartbeat and election timeouts, 500ms
// lease) are sized for any LAN with a wide margin. A failed leader is noticed
// after one randomised heartbeat timeout (T..2T) and replaced after an
// election (about T more), so those defaults mean 2-4 s of write
// unavailability. DESIGN asks for failover in seconds, and Shoal's voters sit
// on one LAN (sub-millisecond RTT, fsync of a few ms), so we halve them: 500ms
// gives roughly 1-2 s failover while staying two orders of magnitude above the
// round trip and a slow fsync, so GC pauses and disk stalls do not cause
// spurious elections. Operators on slow networks can raise them.
//
// Snapshots: an entry is a batch of up to 1,024 writes (up to 4 MiB), so
// raft's count of 8192 entries can mean gigabytes of raft.db, most of it in
// each voter's page cache and mmap; 100,000 one-KiB writes once grew raft.db
// to 128 MiB without reaching it. The log is therefore also bounded by
// bytes: a snapshot after 32 MiB of entries, and 8 MiB (at most 10240
// entries) kept after it, enough for a voter that was down for a restart to
// catch up from the log under a steady write load. The count trigger stays
// for many small entries.
//
// raft.db never shrinks, and a compaction reads every page it frees, so a
// voter's resident memory holds the whole file: about SnapshotBytes plus
// TrailingBytes. 32+8 MiB against 64+16 measured 48 MiB of raft.db instead
// of 80 and 17-20 MiB less RSS per voter after 100,000 one-KiB writes, for
// snapshots that took about 3% of the leader's CPU instead of 1% during
// those writes (a snapshot writes the whole store). An earlier run of
// 16+4 MiB saved 35 MiB and measured about a quarter more agent CPU.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		LogStore:           LogStoreBolt,
		SnapshotThreshold:  8192,
		SnapshotBytes:      32 << 20,
		SnapshotInterval:   120 * time.Second,
		TrailingLogs:       10240,
		TrailingBytes:      8 << 20,
		SnapshotRetain:     2,
		ApplyTimeout:       10 * time.Second,
	}
}

// TestConfig returns fast timings for clusters inside one test process. They
// are looser than raft's own tests (50ms): tests here run with -race, with
// TLS handshakes, on a shared 2-core machine, where leases of 200ms or less
// were measured to step leaders down spuriously under load.
func TestConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 300 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotInterval = time.Second
	c.ApplyTimeout = 5 * time.Second
	return c
}

// Validate reports the first setting that cannot work, naming the field.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("consensus: config: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if c.ID == "" {
		return bad("ID", "required")
	}
	if !c.InMemory && c.DataDir == "" {
		return bad("DataDir", "required unless InMemory")
	}
	if k := logStoreKind(c.LogStore); k != LogStoreBolt && k != LogStoreWAL {
		return bad("LogStore", "%q is neither %q nor %q", c.LogStore, LogStoreBolt, LogStoreWAL)
	}
	if c.Transport == nil {
		if c.BindAddr == "" {
			return bad("BindAddr", "required unless Transport is set")
		}
		if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
			return bad("BindAddr", "%v", err)
		}
	}
	if c.AdvertiseAddr != "" {
		if err := checkAdvertise(c.AdvertiseAddr); err != nil {
			return bad("AdvertiseAddr", "%v", err)
		}
	}
	const floor = 5 * time.Millisecond // raft refuses anything shorter
	if c.HeartbeatTimeout < floor {
		return bad("HeartbeatTimeout", "%v is shorter than %v", c.HeartbeatTimeout, floor)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return bad("ElectionTimeout", "%v is shorter than HeartbeatTimeout (%v)", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout < floor {
		return bad("LeaderLeaseTimeout", "%v is shorter than %v", c.LeaderLeaseTimeout, floor)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return bad("LeaderLeaseTimeout", "%v is longer than HeartbeatTimeout (%v)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.CommitTimeout < time.Millisecond {
		return bad("CommitTimeout", "%v is shorter than 1ms", c.CommitTimeout)
	}
	if c.SnapshotThreshold == 0 {
		return bad("SnapshotThreshold", "must be positive")
	}
	if c.SnapshotBytes < MinSnapshotBytes || c.SnapshotBytes > MaxSnapshotBytes {
		return bad("SnapshotBytes", "%d is outside [%d, %d]", c.SnapshotBytes, MinSnapshotBytes, MaxSnapshotBytes)
	}
	if c.TrailingLogs > MaxTrailingLogs {
		return bad("TrailingLogs", "%d is more than %d", c.TrailingLogs, MaxTrailingLogs)
	}
	if c.TrailingBytes > MaxSnapshotBytes {
		return bad("TrailingBytes", "%d is more than %d", c.TrailingBytes, MaxSnapshotBytes)
	}
	if c.SnapshotInterval < floor {
		return bad("SnapshotInterval", "%v is shorter than %v", c.SnapshotInterval, floor)
	}
	if c.SnapshotRetain < 1 {
		return bad("SnapshotRetain", "must be at least 1")
	}
	if c.ApplyTimeout <= 0 {
		return bad("ApplyTimeout", "must be positive")
	}
	return nil
}

// Limits of the log's bounds.
const (
	// MinSnapshotBytes: a smaller SnapshotBytes would snapshot the whole
	// store after every few writes.
	MinSnapshotBytes = 64 << 10
	// MaxSnapshotBytes bounds SnapshotBytes and TrailingBytes: more would
	// give back the unbounded raft.db the byte bound exists to prevent.
	MaxSnapshotBytes = 4 << 30
	// MaxTrailingLogs: the FSM keeps one 4-byte size per trailing entry.
	MaxTrailingLogs = 1 << 20
)

// checkAdvertise accepts host:port with a specific IP and a non-zero port.
func checkAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("%q is not an IP address", host)
	}
	if ip.IsUnspecified() {
		return fmt.Errorf("%q is unspecified; peers cannot dial it", host)
	}
	if port == "" || port == "0" {
		return errors.New("port must be set and non-zero")
	}
	return nil
}

// maxAppendEntries bounds, in entries, what raft puts in one
// AppendEntries and in one batch for the FSM; raft has no bound in bytes.
// An entry of this package holds up to maxBatchOps writes and about
// maxBatchBytes (a single larger proposal goes alone), so it was 256 such
// entries, up to 1 GiB in one request, when it was set for entries of one
// write each. A follower whose FSM lags queues up to 128 of these batches
// of decoded entries (raft's fsmMutateCh), and a leader reads each
// request's entries from the log: at 1,000 hollow nodes in one process
// the decoded entries read back from the log held 2.5 GB of a 7.6 GB
// heap. 32 entries is at most 128 MiB a request and usually a few MiB;
// in steady state an AppendEntries carries the one or two new entries
// the batcher keeps in flight, so throughput does not depend on it.
const maxAppendEntries = 32

// raftConfig derives raft's configuration.
func (c Config) raftConfig(logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.Logger = logger
	// Let raft gather concurrent proposals into one disk write and one
	// AppendEntries: the difference between hundreds and thousands of
	// writes per second with many writers.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = maxAppendEntries
	return rc
}
