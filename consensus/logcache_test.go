package consensus

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// countingStore counts the reads that reach the store under a cache.
type countingStore struct {
	*raft.InmemStore
	gets     int
	failNext bool
}

func (s *countingStore) GetLog(idx uint64, l *raft.Log) error {
	s.gets++
	return s.InmemStore.GetLog(idx, l)
}

func (s *countingStore) StoreLogs(logs []*raft.Log) error {
	if s.failNext {
		s.failNext = false
		return errors.New("disk full")
	}
	return s.InmemStore.StoreLogs(logs)
}

func entries(from uint64, n, size int) []*raft.Log {
	logs := make([]*raft.Log, n)
	for i := range logs {
		idx := from + uint64(i)
		logs[i] = &raft.Log{Index: idx, Term: 1, Data: bytes.Repeat([]byte{byte(idx)}, size)}
	}
	return logs
}

func mustCache(t *testing.T, s raft.LogStore, n, b int) *logCache {
	t.Helper()
	c, err := newLogCache(s, n, b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hits tells whether idx is served without reaching the store.
func hits(t *testing.T, c *logCache, s *countingStore, idx uint64) bool {
	t.Helper()
	before := s.gets
	var l raft.Log
	if err := c.GetLog(idx, &l); err != nil {
		t.Fatalf("GetLog(%d): %v", idx, err)
	}
	if l.Index != idx || len(l.Data) == 0 || l.Data[0] != byte(idx) {
		t.Fatalf("GetLog(%d) = index %d, data %.8x", idx, l.Index, l.Data)
	}
	return s.gets == before
}

func TestLogCacheBoundByCount(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := mustCache(t, s, 8, 1<<20)
	if err := c.StoreLogs(entries(1, 20, 10)); err != nil {
		t.Fatal(err)
	}
	if lo, hi, b := c.cached(); lo != 13 || hi != 20 || b != 80 {
		t.Fatalf("cached %d..%d, %d bytes; want 13..20, 80", lo, hi, b)
	}
	for idx := uint64(1); idx <= 20; idx++ {
		if got, want := hits(t, c, s, idx), idx >= 13; got != want {
			t.Errorf("entry %d served from the cache: %v, want %v", idx, got, want)
		}
	}
}

func TestLogCacheBoundByBytes(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := mustCache(t, s, 64, 4<<20)
	for i := uint64(1); i <= 10; i++ { // one 1 MiB entry per append, as a batch
		if err := c.StoreLogs(entries(i, 1, 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	if lo, hi, b := c.cached(); lo != 7 || hi != 10 || b != 4<<20 {
		t.Fatalf("cached %d..%d, %d bytes; want 7..10, 4 MiB", lo, hi, b)
	}
	if hits(t, c, s, 6) || !hits(t, c, s, 7) {
		t.Error("want entry 6 read from the store and 7 from the cache")
	}
	// An entry larger than the bound alone is still cached, by itself.
	if err := c.StoreLogs(entries(11, 1, 5<<20)); err != nil {
		t.Fatal(err)
	}
	if lo, hi, b := c.cached(); lo != 11 || hi != 11 || b != 5<<20 {
		t.Fatalf("cached %d..%d, %d bytes; want 11..11, 5 MiB", lo, hi, b)
	}
	if !hits(t, c, s, 11) || hits(t, c, s, 10) {
		t.Error("want entry 11 from the cache and 10 from the store")
	}
}

func TestLogCacheGapsDeletesAndFailures(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := mustCache(t, s, 8, 1<<20)
	if err := c.StoreLogs(entries(1, 5, 10)); err != nil {
		t.Fatal(err)
	}
	// Not following the newest cached entry: the window starts afresh.
	if err := c.StoreLogs(entries(3, 2, 20)); err != nil {
		t.Fatal(err)
	}
	if lo, hi, b := c.cached(); lo != 3 || hi != 4 || b != 40 {
		t.Fatalf("after an overwrite: cached %d..%d, %d bytes; want 3..4, 40", lo, hi, b)
	}
	if err := c.DeleteRange(3, 5); err != nil {
		t.Fatal(err)
	}
	if lo, hi, b := c.cached(); hi >= lo || b != 0 {
		t.Fatalf("after DeleteRange: cached %d..%d, %d bytes; want empty", lo, hi, b)
	}
	var l raft.Log
	if err := c.GetLog(3, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog of a deleted entry: %v, want ErrLogNotFound", err)
	}
	// What the store refused is not cached.
	s.failNext = true
	if err := c.StoreLogs(entries(6, 2, 10)); err == nil {
		t.Fatal("StoreLogs: want the store's error")
	}
	if lo, hi, _ := c.cached(); hi >= lo {
		t.Fatalf("after a failed append: cached %d..%d; want empty", lo, hi)
	}
	if _, err := newLogCache(s, 0, 1); err == nil {
		t.Error("newLogCache with 0 entries: want an error")
	}
	if _, err := newLogCache(s, 1, 0); err == nil {
		t.Error("newLogCache with 0 bytes: want an error")
	}
	if c.IsMonotonic() {
		t.Error("IsMonotonic over an InmemStore: want false")
	}
}

// TestLogCacheAgreesWithStore: under random appends, overwrites and
// deletions the cache answers what the store holds, and stays within its
// bounds.
func TestLogCacheAgreesWithStore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	const maxEntries, maxBytes = 16, 64 << 10
	c := mustCache(t, s, maxEntries, maxBytes)
	var last uint64
	for step := 0; step < 3000; step++ {
		switch r := rng.IntN(10); {
		case r < 7 || last == 0: // append 1-5 entries after the last
			logs := entries(last+1, 1+rng.IntN(5), 1+rng.IntN(16<<10))
			if err := c.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			last += uint64(len(logs))
		case r < 9: // a follower's conflict: delete a suffix, append again
			from := 1 + rng.Uint64N(last)
			if err := c.DeleteRange(from, last); err != nil {
				t.Fatal(err)
			}
			last = from - 1
		default: // compaction: delete a prefix
			first, _ := s.FirstIndex()
			if first > 0 && first < last {
				if err := c.DeleteRange(first, first+rng.Uint64N(last-first)); err != nil {
					t.Fatal(err)
				}
			}
		}
		lo, hi, b := c.cached()
		if hi >= lo && (hi-lo+1 > maxEntries || (hi > lo && b > maxBytes)) {
			t.Fatalf("step %d: cached %d..%d, %d bytes: over the bounds", step, lo, hi, b)
		}
		first, _ := s.FirstIndex()
		for idx := first; first > 0 && idx <= last; idx++ {
			var want, got raft.Log
			werr := s.InmemStore.GetLog(idx, &want)
			gerr := c.GetLog(idx, &got)
			if (werr == nil) != (gerr == nil) || (werr == nil && (got.Index != want.Index || !bytes.Equal(got.Data, want.Data))) {
				t.Fatalf("step %d: GetLog(%d) = %d/%v, store has %d/%v", step, idx, got.Index, gerr, want.Index, werr)
			}
		}
	}
}

type monotonicStore struct{ *raft.InmemStore }

func (monotonicStore) IsMonotonic() bool { return true }

// TestLogCachePassesMonotonic: raft asks the log store (through the cache)
// whether it is monotonic, and empties a monotonic one when it installs a
// snapshot; raft-wal refuses an append that leaves a gap.
func TestLogCachePassesMonotonic(t *testing.T) {
	if !mustCache(t, monotonicStore{raft.NewInmemStore()}, 1, 1).IsMonotonic() {
		t.Error("over a monotonic store: IsMonotonic false")
	}
	if mustCache(t, raft.NewInmemStore(), 1, 1).IsMonotonic() {
		t.Error("over an InmemStore: IsMonotonic true")
	}
}

// TestLogCacheCompactionKeepsTheRest: deleting a prefix (compaction after
// a snapshot) drops only the deleted entries; the cache keeps its own
// copies, so the caller's Logs (on the leader, fields of the proposals'
// futures) are not kept alive or shared.
func TestLogCacheCompactionKeepsTheRest(t *testing.T) {
	s := &countingStore{InmemStore: raft.NewInmemStore()}
	c := mustCache(t, s, 8, 1<<20)
	logs := entries(1, 8, 10)
	if err := c.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRange(1, 5); err != nil {
		t.Fatal(err)
	}
	if lo, hi, b := c.cached(); lo != 6 || hi != 8 || b != 30 {
		t.Fatalf("after deleting 1..5: cached %d..%d, %d bytes; want 6..8, 30", lo, hi, b)
	}
	for _, l := range logs {
		l.Data = nil
	}
	if !hits(t, c, s, 6) || !hits(t, c, s, 8) {
		t.Error("entries 6 and 8 not served from the cache after the compaction")
	}
	if err := c.DeleteRange(1, 3); err != nil { // below the window
		t.Fatal(err)
	}
	if lo, hi, _ := c.cached(); lo != 6 || hi != 8 {
		t.Fatalf("after deleting below the window: cached %d..%d; want 6..8", lo, hi)
	}
}

// TestLogCacheConcurrent: readers while entries are appended and the log
// compacted, as raft's replication, FSM and snapshot goroutines do (run
// under -race). An entry read is the one stored at its index, or not found
// once compacted.
func TestLogCacheConcurrent(t *testing.T) {
	s := raft.NewInmemStore()
	c := mustCache(t, s, 16, 64<<10)
	const total = 4000
	var appended atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-done:
					return
				default:
				}
				last := appended.Load()
				if last == 0 {
					continue
				}
				idx := last - rng.Uint64N(min(last, 64))
				var l raft.Log
				err := c.GetLog(idx, &l)
				if errors.Is(err, raft.ErrLogNotFound) {
					continue
				}
				if err != nil || l.Index != idx || len(l.Data) == 0 || l.Data[0] != byte(idx) {
					t.Errorf("GetLog(%d) = index %d, err %v, data %.4x", idx, l.Index, err, l.Data)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // compaction, as the snapshot goroutine
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if last := appended.Load(); last > 100 {
				first, _ := s.FirstIndex()
				if first < last-50 {
					if err := c.DeleteRange(first, last-50); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}
	}()
	for i := uint64(1); i <= total; i += 4 {
		if err := c.StoreLogs(entries(i, 4, 1+int(i%8192))); err != nil {
			t.Fatal(err)
		}
		appended.Store(i + 3)
	}
	close(done)
	wg.Wait()
}

// cached reports the window and its data bytes; hi < lo when empty.
func (c *logCache) cached() (lo, hi uint64, bytes int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.n == 0 {
		return 1, 0, 0
	}
	return c.lo, c.hiLocked(), c.bytes
}
