package main

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The agent's default memory policy (issue 14, memory per object).
//
// A voter's heap is mostly its replica of the store: long-lived objects.
// Go's collector lets the heap grow by GOGC percent (100) of the live heap
// before it collects, so a voter holding 175 MiB of objects (100,000 1 KiB
// ConfigMaps) had a resident set of about 420 MiB, most of it headroom for
// garbage. By default the agent therefore caps that headroom: every
// second it sets Go's soft memory limit to the live heap, plus
// max(minHeadroom, live/headroomDivisor), plus the runtime's own memory
// beside the heap. A heap under 64 MiB live (most agents, which are not
// voters, and small clusters) keeps GOGC's behaviour, since the limit is
// above GOGC's goal; from 64 to 256 MiB the headroom is 64 MiB, above that
// a quarter. The cost is CPU: the collector runs live/headroom times as
// often as with GOGC=100 for the same allocation (2.7 times at 175 MiB
// live, up to 4). With a 32 MiB floor the same run measured 15 MiB less
// RSS per voter for about a fifth more agent CPU during the writes; 64 MiB
// leaves small and mid-sized stores alone.
//
// The policy is off when the user chose: --memory-limit (a fixed limit),
// or GOMEMLIMIT or GOGC in the environment; --memory-limit=off turns
// every limit off.
const (
	minHeadroom     = 64 << 20
	headroomDivisor = 4
	tunePeriod      = time.Second
)

// headroomLimit is the memory limit that leaves the heap live bytes plus
// its headroom, given the runtime's memory beside the heap (nonHeap).
func headroomLimit(live, nonHeap uint64) int64 {
	return int64(live + max(minHeadroom, live/headroomDivisor) + nonHeap)
}

// autoMemoryLimit reports whether the default policy applies.
func autoMemoryLimit(flag string) bool {
	return flag == "" && os.Getenv("GOMEMLIMIT") == "" && os.Getenv("GOGC") == ""
}

var tuneSamples = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

// tuneOnce sets the memory limit from the runtime's current figures and
// returns it.
func tuneOnce(s []metrics.Sample) int64 {
	metrics.Read(s)
	v := make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	live, total, heap := v[0], v[1], v[2]+v[3]+v[4]+v[5]
	var nonHeap uint64
	if total > heap {
		nonHeap = total - heap
	}
	limit := headroomLimit(live, nonHeap)
	debug.SetMemoryLimit(limit)
	return limit
}

// tuneMemory runs the default policy until ctx ends, then lifts the limit.
func tuneMemory(ctx context.Context) {
	s := make([]metrics.Sample, len(tuneSamples))
	for i, n := range tuneSamples {
		s[i].Name = n
	}
	t := time.NewTicker(tunePeriod)
	defer t.Stop()
	defer debug.SetMemoryLimit(math.MaxInt64) // no limit
	for {
		tuneOnce(s)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
