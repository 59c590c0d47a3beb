package consensus

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// BenchmarkProposeParallel: 3 voters in this process, on disk (with
// fsync), over TCP on loopback; 64 concurrent writers (and one) each
// creating 1 KiB ConfigMaps, one op per proposal; with each log store.
// Compare with the etcd anchor in PLATFORM.md (3 members, 64 writers, 1 KiB
// puts).
//
//	go test -run '^$' -bench ProposeParallel -benchtime 5000x ./consensus/
func BenchmarkProposeParallel(b *testing.B) {
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		for _, writers := range []int{64, 1} {
			b.Run(fmt.Sprintf("%s/writers=%d", kind, writers), func(b *testing.B) { benchProposeParallel(b, kind, writers) })
		}
	}
}

func benchProposeParallel(b *testing.B, kind string, writers int) {
	c := &cluster{t: b}
	for i := 0; i < 3; i++ {
		cfg := diskConfig(b, fmt.Sprintf("bench%d", i), b.TempDir(), "127.0.0.1:0")
		cfg.Bootstrap = i == 0
		cfg.LogStore = kind
		// Production timings: the benchmark measures throughput, not
		// failover, and short leases cost heartbeats.
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout =
			d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout, d.CommitTimeout
		c.start(cfg)
	}
	c.join()
	lead := c.leader()

	var seq atomic.Int64
	// RunParallel starts parallelism × GOMAXPROCS goroutines: at least
	// GOMAXPROCS, so one writer is a plain loop.
	b.ReportAllocs()
	if writers == 1 {
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			res, err := lead.Propose(context.Background(), []store.Op{createOp(configMap("default", fmt.Sprintf("cm-%d", i), 1024))})
			if err != nil || res[0].Err != nil {
				b.Fatal(err, res)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		return
	}
	b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := seq.Add(1)
			res, err := lead.Propose(ctx, []store.Op{createOp(configMap("default", fmt.Sprintf("cm-%d", n), 1024))})
			if err != nil {
				b.Error(err)
				return
			}
			if res[0].Err != nil {
				b.Error(res[0].Err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

// benchOps is a batch like the ones controllers and kubelets propose: pods
// with status and conditions, and a 1 KiB ConfigMap.
func benchOps(b *testing.B) []store.Op {
	var ops []store.Op
	for _, f := range []string{"pod.json", "web.yaml", "db.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "api", "testdata", f))
		if err != nil {
			b.Fatal(err)
		}
		objs, err := api.DecodeManifests(data)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range objs {
			api.SetDefaults(o)
			ops = append(ops, createOp(o))
		}
	}
	return append(ops, createOp(configMap("default", "cm", 1024)))
}

// BenchmarkCodecDecode is what every voter pays per entry it applies.
//
//	go test -run '^$' -bench 'Codec' -benchmem ./consensus/
func BenchmarkCodecDecode(b *testing.B) {
	cmd, err := EncodeApplyOps(benchOps(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeApplyOps(cmd[1:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecEncode is what the leader pays per proposal.
func BenchmarkCodecEncode(b *testing.B) {
	ops := benchOps(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeApplyOps(ops); err != nil {
			b.Fatal(err)
		}
	}
}
