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
// push them out. This cache holds at most maxEntries entries and at most
// maxBytes of their data (capacity, not length: a batch's buffer may be
// larger than its bytes), except that the newest entry stays even when it
// alone is larger.
//
// The cached entries are the newest ones, contiguous: an append that does
// not follow the newest cached entry (a follower's log overwritten after a
// leader change) starts the window afresh. A deletion of a prefix (Raft's
// compaction after a snapshot) drops only what it deletes; any other
// deletion empties the window.
//
// The cache holds its own copy of each raft.Log: on the leader the Log
// raft stores is a field of the proposal's future, which would otherwise
// keep the future, and the results it carries, alive.
type logCache struct {
	store      raft.LogStore
	maxEntries int
	maxBytes   int

	mu    sync.RWMutex
	ring  []*raft.Log // entry i at ring[i % len(ring)], for lo <= i < lo+n
	lo    uint64      // the oldest cached index, when n > 0
	n     int         // how many entries are cached
	bytes int         // data bytes (capacity) of the cached entries
}

var _ raft.MonotonicLogStore = (*logCache)(nil)

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
		ring: make([]*raft.Log, maxEntries)}, nil
}

func entrySize(l *raft.Log) int { return cap(l.Data) + cap(l.Extensions) }

// IsMonotonic passes on the store's answer: raft empties a monotonic log
// when it installs a snapshot instead of leaving a gap (raft-wal is one).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// hiLocked is the newest cached index (n > 0).
func (c *logCache) hiLocked() uint64 { return c.lo + uint64(c.n) - 1 }

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	var cached *raft.Log
	if c.n > 0 && idx >= c.lo && idx <= c.hiLocked() {
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
		if c.n > 0 && l.Index != c.hiLocked()+1 {
			c.clearLocked()
		}
		if c.n == 0 {
			c.lo = l.Index
		}
		if c.n == c.maxEntries {
			c.evictOldestLocked() // frees the slot l goes to
		}
		cp := *l
		c.ring[l.Index%uint64(len(c.ring))] = &cp
		c.n++
		c.bytes += entrySize(&cp)
		for c.n > 1 && c.bytes > c.maxBytes {
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
	c.n--
}

func (c *logCache) clearLocked() {
	clear(c.ring)
	c.lo, c.n, c.bytes = 0, 0, 0
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }
func (c *logCache) LastIndex() (uint64, error)  { return c.store.LastIndex() }

// DeleteRange drops the deleted entries from the cache, then deletes them
// from the store.
func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	switch {
	case c.n == 0 || max < c.lo || min > c.hiLocked():
		// Nothing cached is deleted.
	case min <= c.lo && max < c.hiLocked():
		for c.lo <= max {
			c.evictOldestLocked()
		}
	default:
		c.clearLocked()
	}
	c.mu.Unlock()
	return c.store.DeleteRange(min, max)
}
