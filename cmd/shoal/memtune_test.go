package main

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// The default headroom is a quarter of the live heap, at least 64 MiB, on
// top of the runtime's memory beside the heap.
func TestHeadroomLimit(t *testing.T) {
	for _, c := range []struct {
		live, nonHeap uint64
		want          int64
	}{
		{0, 0, 64 << 20},
		{10 << 20, 5 << 20, (10 + 64 + 5) << 20},
		{175 << 20, 0, (175 + 64) << 20},
		{256 << 20, 0, (256 + 64) << 20},
		{400 << 20, 10 << 20, (400 + 100 + 10) << 20},
	} {
		if got := headroomLimit(c.live, c.nonHeap); got != c.want {
			t.Errorf("headroomLimit(%d MiB, %d MiB) = %d MiB, want %d MiB", c.live>>20, c.nonHeap>>20, got>>20, c.want>>20)
		}
	}
}

func TestAutoMemoryLimitOnlyWhenUnset(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	if !autoMemoryLimit("") {
		t.Error("no flag, no environment: the default policy should apply")
	}
	for _, flag := range []string{"off", "120MiB"} {
		if autoMemoryLimit(flag) {
			t.Errorf("--memory-limit=%s: the default policy applies", flag)
		}
	}
	t.Setenv("GOGC", "200")
	if autoMemoryLimit("") {
		t.Error("GOGC set: the default policy applies")
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if autoMemoryLimit("") {
		t.Error("GOMEMLIMIT set: the default policy applies")
	}
}

// tuneOnce sets a limit above what the process uses now; tuneMemory lifts
// it when its context ends.
func TestTuneSetsAndLiftsTheLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	s := make([]metrics.Sample, len(tuneSamples))
	for i, n := range tuneSamples {
		s[i].Name = n
	}
	limit := tuneOnce(s)
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("limit in force %d, tuneOnce returned %d", got, limit)
	}
	metrics.Read(s)
	if used := s[1].Value.Uint64() - s[5].Value.Uint64(); limit < int64(used) {
		t.Errorf("limit %d MiB is below the memory in use, %d MiB", limit>>20, used>>20)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tuneMemory(ctx) // returns at once: ctx has ended
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after tuneMemory ended the limit is %d, want none", got)
	}
}
