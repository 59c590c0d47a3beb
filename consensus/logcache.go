package consensus

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the most recent log entries in memory in front of the log
// store, as raft.LogCache does, but bounded by bytes as well as by count.
// Raft reads recent entries back to replicate them (the leader) and to
// apply them (every voter). raft.LogCache counts entries only, and one
// Shoal entry is a batch of up to maxBatchBytes (4 MiB): its 64 slots could
// hold 256 MiB after a burst of large writes, kept until later entries
// push them out. This cache holds at most maxEntries entries and, beyond
// the newest one, maxBytes of their data.
//
// The cached entries are the newest ones, contiguous: an append that does
// not follow the newest cached entry (a follower's log overwritten after a
// leader change) starts the window afresh, and a deletion empties it.
type logCache struct {
	store      raft.LogStore
	maxEntries int
	maxBytes   int

	mu     sync.RWMutex
	ring   []*raft.Log // entry i at ring[i % len(ring)], for lo <= i <= hi
	lo, hi uint64      // the cached window; empty when hi = lo-1
	bytes  int         // data bytes of the cached entries
}

// Bounds of the log cache (see logCache).
const (
	logCacheEntries = 64
	logCacheBytes   = 32 << 20
)

func newLogCache(store raft.LogStore, maxEntries, maxBytes int) (*logCache, error) {
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil, fmt.Errorf("consensus: log cache: %d entries, %d bytes: both must be positive", maxEntries, maxBytes)
	}
	return &logCache{store: store, maxEntries: maxEntries, maxBytes: maxBytes,
		ring: make([]*raft.Log, maxEntries), lo: 1, hi: 0}, nil
}

func entrySize(l *raft.Log) int { return len(l.Data) + len(l.Extensions) }

// IsMonotonic passes on the store's answer: raft empties a monotonic log
// when it installs a snapshot instead of leaving a gap (raft-wal is one).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	var cached *raft.Log
	if idx >= c.lo && idx <= c.hi {
		cached = c.ring[idx%uint64(len(c.ring))]
	}
	c.mu.RUnlock()
	if cached != nil {
		*log = *cached
		return nil
	}
	return c.store.GetLog(idx, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs writes to the store first; only entries the store took are
// cached.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("consensus: log store: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if l.Index != c.hi+1 {
			c.clearLocked()
			c.lo, c.hi = l.Index, l.Index-1
		}
		for c.hi >= c.lo && c.hi-c.lo+1 >= uint64(c.maxEntries) {
			c.evictOldestLocked() // frees the slot l goes to
		}
		c.ring[l.Index%uint64(len(c.ring))] = l
		c.hi = l.Index
		c.bytes += entrySize(l)
		// The newest entry stays even when it alone is over maxBytes.
		for c.lo < c.hi && c.bytes > c.maxBytes {
			c.evictOldestLocked()
		}
	}
	return nil
}

func (c *logCache) evictOldestLocked() {
	slot := c.lo % uint64(len(c.ring))
	c.bytes -= entrySize(c.ring[slot])
	c.ring[slot] = nil
	c.lo++
}

func (c *logCache) clearLocked() {
	clear(c.ring)
	c.lo, c.hi, c.bytes = 1, 0, 0
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }
func (c *logCache) LastIndex() (uint64, error)  { return c.store.LastIndex() }

// DeleteRange empties the cache, then deletes from the store.
func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	c.clearLocked()
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}

// cached reports the window and its data bytes (tests).
func (c *logCache) cached() (lo, hi uint64, bytes int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lo, c.hi, c.bytes
}
