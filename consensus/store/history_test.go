package store

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// bigConfigMap is a ConfigMap with size bytes of data of its own.
func bigConfigMap(name string, i, size int) *api.ConfigMap {
	v := fmt.Sprintf("%08d", i) + strings.Repeat("z", size-8)
	return &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"file": v}}
}

// The history is bounded by bytes as well as by count (issue 14): with
// 256 KiB ConfigMaps and a 1 MiB bound, the count (1000) never binds; the
// oldest events go once their objects pass 1 MiB, and a watch from an
// event that went gets ErrTooOld, as one past the count does.
func TestHistoryBoundedByBytes(t *testing.T) {
	const size = 256 << 10
	s := New(Config{HistorySize: 1000, HistoryBytes: 1 << 20, WatchBuffer: 16})
	for i := range 10 {
		mustApply(t, s, create(bigConfigMap(fmt.Sprint("c", i), i, size)))
	}
	// Each create charges one object of a little over 256 KiB: three fit.
	s.mu.RLock()
	n, base, bytes := s.hist.n, s.hist.base, s.hist.bytes
	s.mu.RUnlock()
	if n != 3 || base != 7 || bytes > 1<<20 || bytes < 3*size {
		t.Fatalf("history holds %d events after revision %d, %d bytes; want 3 after 7, between %d and %d bytes", n, base, bytes, 3*size, 1<<20)
	}
	if _, err := s.Watch("ConfigMap", "", 6, Selector{}); !errors.Is(err, ErrTooOld) {
		t.Fatalf("watch from 6: %v, want ErrTooOld", err)
	}
	w, err := s.Watch("ConfigMap", "", 7, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for want := int64(8); want <= 10; want++ {
		ev := <-w.Events()
		if ev.Revision != want || ev.Type != Added {
			t.Fatalf("replayed %s@%d, want ADDED@%d", ev.Type, ev.Revision, want)
		}
	}
	// An update charges the new version and the one it replaced.
	next := bigConfigMap("c9", 99, size)
	mustApply(t, s, update(next))
	s.mu.RLock()
	n, base = s.hist.n, s.hist.base
	s.mu.RUnlock()
	if n != 2 || base != 9 {
		t.Fatalf("after an update the history holds %d events after revision %d, want 2 after 9", n, base)
	}
	// One event larger than the bound alone is still kept: a watch from
	// just before it works.
	mustApply(t, s, create(bigConfigMap("huge", 0, 2<<20)))
	s.mu.RLock()
	n, base = s.hist.n, s.hist.base
	s.mu.RUnlock()
	if n != 1 || base != 11 {
		t.Fatalf("after a 2 MiB create the history holds %d events after revision %d, want 1 after 11", n, base)
	}
	if objs, err := s.ListAt("ConfigMap", "", Selector{}, 11); err != nil || len(objs) != 10 {
		t.Fatalf("ListAt(11) = %d objects, %v; want 10", len(objs), err)
	}
}

// What the history keeps alive is bounded by HistoryBytes: 400 updates of
// a 64 KiB ConfigMap kept every replaced version (25 MiB) with the count
// bound alone (10,000 events); with a 2 MiB byte bound, the live heap grows
// by about 2 MiB. go test -run TestHistoryHeapBoundedByBytes -v ./consensus/store
func TestHistoryHeapBoundedByBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 25 MiB")
	}
	const size, updates = 64 << 10, 400
	s := New(Config{HistoryBytes: 2 << 20})
	mustApply(t, s, create(bigConfigMap("big", 0, size)))
	before := heapAlloc()
	for i := 1; i <= updates; i++ {
		mustApply(t, s, update(bigConfigMap("big", i, size)))
	}
	after := heapAlloc()
	runtime.KeepAlive(s)
	grew := (float64(after) - float64(before)) / (1 << 20)
	t.Logf("%d updates of a %d KiB ConfigMap: the live heap grew by %.1f MiB", updates, size>>10, grew)
	if grew > 4 {
		t.Errorf("the live heap grew by %.1f MiB, want at most 4 (2 MiB of history and the stored object)", grew)
	}
}

// objectSize counts what an object reaches, so a ConfigMap of 1 KiB is
// estimated at a little more than 1 KiB.
func TestObjectSize(t *testing.T) {
	small := objectSize(configMap("default", "x"))
	big := objectSize(bigConfigMap("x", 0, 1024))
	if big-small < 1000 || big-small > 1100 {
		t.Errorf("1 KiB of data adds %d bytes to the estimate (%d → %d)", big-small, small, big)
	}
	if small < 200 || small > 1000 {
		t.Errorf("a small ConfigMap is estimated at %d bytes", small)
	}
	p := pod("default", "p", "n1", map[string]string{"app": "web"})
	if got := objectSize(p); got < 500 {
		t.Errorf("a pod is estimated at %d bytes", got)
	}
	if objectSize(nil) != 0 {
		t.Error("nil has a size")
	}
}

// The history's ring starts empty and grows on demand to its limit: a store
// that records nothing holds no ring, and one that records keeps exactly
// the changes a whole ring would (the newest, at most limit of them and
// within the byte bound), whatever the growth and wrap-around in between.
func TestHistoryRingGrows(t *testing.T) {
	if h := New(DefaultConfig()).hist; cap(h.buf) != 0 {
		t.Fatalf("a new store's history holds a ring of %d changes, want none until one is recorded", cap(h.buf))
	}
	for _, limit := range []int{1, 3, minHistoryRing - 1, minHistoryRing, minHistoryRing + 1, 300} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			const maxBytes = 40 << 10
			h := newHistory(limit, maxBytes, 7)
			var want []change // the reference: a plain slice
			var bytes int64
			for i := range 6 * limit {
				// Large changes first, so that the byte bound drops the
				// oldest while the ring is still growing, then small
				// ones, so that the ring grows from a wrapped start.
				size := int64(2000 + (i*7919)%3000)
				if i >= 2*limit {
					size = int64(10 + i%7)
				}
				c := change{rev: int64(i) + 8, size: size}
				h.push(c)
				want, bytes = append(want, c), bytes+c.size
				for len(want) > limit || (bytes > maxBytes && len(want) > 1) {
					bytes -= want[0].size
					want = want[1:]
				}
				if len(h.buf) > limit {
					t.Fatalf("push %d: ring of %d, over the limit %d", i, len(h.buf), limit)
				}
				if h.base != want[0].rev-1 || h.bytes != bytes {
					t.Fatalf("push %d: base %d and %d bytes, want %d and %d", i, h.base, h.bytes, want[0].rev-1, bytes)
				}
				var got []int64
				h.after(h.base, func(c change) { got = append(got, c.rev) })
				if len(got) != len(want) || got[0] != want[0].rev || got[len(got)-1] != want[len(want)-1].rev {
					t.Fatalf("push %d: the history holds revisions %v, want %d..%d", i, got, want[0].rev, want[len(want)-1].rev)
				}
				for j := range got {
					if got[j] != want[j].rev {
						t.Fatalf("push %d: revisions %v out of order", i, got)
					}
				}
			}
		})
	}
}
