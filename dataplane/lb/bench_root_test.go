package lb

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Benchmarks against the kernel, in a namespace each benchmark makes
// (skipped when not root). Names are stable: `make bench` runs them.
//
//	go test -run '^$' -bench . -benchtime 20x ./dataplane/lb/

// BenchmarkFullSync: a Resync of 10,000 services with 10 endpoints each
// (one batch: delete the table, build it again).
func BenchmarkFullSync(b *testing.B) {
	requireRoot(b)
	ns := newNS(b)
	a := newApplier(b, testConfig(), ns)
	services := syntheticServices(10000, 10)
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := a.Resync(services); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	reportMedian(b, durations)
}

// BenchmarkIncrementalAdd: one endpoint added to one service per Sync, in
// a table of 1,000, 10,000 and 30,000 services with 10 endpoints each. The
// new endpoint sorts first, so every endpoint of the service is renumbered
// (the worst case).
func BenchmarkIncrementalAdd(b *testing.B) {
	benchIncremental(b, func(s Service, round int) Service {
		s.Ports[0].Endpoints = append(slices.Clone(s.Ports[0].Endpoints), Endpoint{IP: fmt.Sprintf("10.0.%d.%d", round/250, round%250+1), Port: 8080})
		return s
	})
}

// BenchmarkIncrementalRemove: one endpoint removed from one service per
// Sync (the first, so every other one is renumbered).
func BenchmarkIncrementalRemove(b *testing.B) {
	benchIncremental(b, func(s Service, round int) Service {
		s.Ports[0].Endpoints = slices.Clone(s.Ports[0].Endpoints[1:])
		return s
	})
}

func benchIncremental(b *testing.B, change func(Service, int) Service) {
	requireRoot(b)
	for _, n := range []int{1000, 10000, 30000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ns := newNS(b)
			a := newApplier(b, testConfig(), ns)
			services := syntheticServices(n, 10)
			if err := a.Resync(services); err != nil {
				b.Fatal(err)
			}
			durations := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				k := i % n
				if i/n > 8 {
					b.Fatal("more rounds than endpoints")
				}
				services[k] = change(services[k], i)
				start := time.Now()
				if err := a.Sync(services[k:k+1], nil); err != nil {
					b.Fatal(err)
				}
				durations = append(durations, time.Since(start))
			}
			b.StopTimer()
			reportMedian(b, durations)
		})
	}
}

// reportMedian adds the median and the 90th percentile of the iterations
// (a benchmark's ns/op is their mean).
func reportMedian(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2])/1e6, "median-ms")
	b.ReportMetric(float64(d[len(d)*9/10])/1e6, "p90-ms")
}
