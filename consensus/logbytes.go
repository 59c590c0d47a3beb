package consensus

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Byte-bounded snapshots and log truncation.
//
// Raft's own triggers count entries (SnapshotThreshold, TrailingLogs), but
// one Shoal entry is a batch of up to maxBatchOps writes and maxBatchBytes
// bytes (batch.go), so a count says little about the log's size: 100,000
// one-KiB writes took about 100 entries and 128 MiB of raft.db without ever
// reaching the 8,192 entries of a snapshot. logBytes bounds both in bytes as
// well:
//
//   - The FSM adds each applied entry's size; once SnapshotBytes were
//     applied since the last snapshot it wakes the node's snapshot loop,
//     which asks raft for a snapshot (raft.Snapshot). Every snapshot, by
//     this trigger or raft's periodic one, resets the count.
//   - When a snapshot is captured, the FSM works out how many of the most
//     recent entries fit in TrailingBytes (at most TrailingLogs) and hands
//     that count to raft as its TrailingLogs (raft.ReloadConfig), which raft
//     reads when it truncates the log after that snapshot. So the log kept
//     after a snapshot is at most TrailingLogs entries and about
//     TrailingBytes (the oldest kept entry may straddle the bound).
type logBytes struct {
	snapshotBytes uint64
	trailingBytes uint64

	want chan struct{} // one slot: a snapshot is wanted

	raft atomic.Pointer[raft.Raft] // set once raft runs; nil before

	mu    sync.Mutex
	since uint64   // bytes applied since the last snapshot
	sizes []uint32 // ring of the last len(sizes) applied entries' sizes
	next  int      // ring position of the next entry
	count int      // entries in the ring (≤ len(sizes))
	asked bool     // want was signalled since the last snapshot
}

func newLogBytes(cfg Config) *logBytes {
	return &logBytes{
		snapshotBytes: cfg.SnapshotBytes,
		trailingBytes: cfg.TrailingBytes,
		want:          make(chan struct{}, 1),
		sizes:         make([]uint32, cfg.TrailingLogs),
	}
}

// applied records an applied entry of size bytes. Called on the FSM
// goroutine; never blocks.
func (b *logBytes) applied(size int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.since += uint64(size)
	if len(b.sizes) > 0 {
		b.sizes[b.next] = uint32(size)
		b.next = (b.next + 1) % len(b.sizes)
		b.count = min(b.count+1, len(b.sizes))
	}
	if b.since >= b.snapshotBytes && !b.asked {
		b.asked = true
		select {
		case b.want <- struct{}{}:
		default:
		}
	}
}

// snapshotted is called when the FSM captures a snapshot: the count starts
// again, and raft is told how many entries to keep after it.
func (b *logBytes) snapshotted() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.since, b.asked = 0, false
	keep := b.trailingEntries()
	b.mu.Unlock()
	r := b.raft.Load()
	if r == nil {
		return
	}
	rc := r.ReloadableConfig()
	if rc.TrailingLogs == keep {
		return
	}
	rc.TrailingLogs = keep
	_ = r.ReloadConfig(rc) // only TrailingLogs changes; raft accepts any value
}

// restored is called when a snapshot replaced the store: what the ring and
// the count knew is gone with the entries the snapshot covers.
func (b *logBytes) restored() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.since, b.asked, b.count = 0, false, 0
	b.mu.Unlock()
}

// trailingEntries is how many of the most recent entries fit in
// trailingBytes; the ring holds TrailingLogs of them at most. Caller holds
// mu.
func (b *logBytes) trailingEntries() uint64 {
	var sum uint64
	for i := 0; i < b.count; i++ {
		sz := uint64(b.sizes[(b.next-1-i+2*len(b.sizes))%len(b.sizes)])
		if sum+sz > b.trailingBytes {
			return uint64(i)
		}
		sum += sz
	}
	// All of the ring fits: when it is full that is trailingLogs entries
	// (the count bound); otherwise fewer entries were applied since the
	// start or the last restore, and older ones, of unknown size, go.
	return uint64(b.count)
}

// sinceSnapshot is how many bytes were applied since the last snapshot.
func (b *logBytes) sinceSnapshot() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.since
}

// wanted reports whether a snapshot was asked for since the last one.
func (b *logBytes) wanted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.asked
}

// runSnapshots asks raft for a snapshot each time the FSM wants one, until
// stop is closed. raft.Snapshot waits for a snapshot already under way, so
// there is never more than one request.
func (n *Node) runSnapshots(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	b := n.fsm.bytes
	for {
		select {
		case <-b.want:
		case <-stop:
			return
		}
		err := n.raft.Snapshot().Error()
		switch {
		case err == nil, errors.Is(err, raft.ErrNothingNewToSnapshot):
		case errors.Is(err, raft.ErrRaftShutdown):
			return
		default:
			n.logger.Warn("snapshot after the log grew by its byte bound failed", "snapshot_bytes", b.snapshotBytes, "err", err)
			// Ask again after the next entry rather than at once.
			b.mu.Lock()
			b.asked = false
			b.mu.Unlock()
		}
	}
}
