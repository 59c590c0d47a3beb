package consensus

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// BenchmarkProposeParallel: 3 voters in this process, on disk (with
// fsync), over TCP on loopback; 64 concurrent writers (and one) each
// creating 1 KiB ConfigMaps, one op per proposal; with each log store.
// Compare with the etcd anchor in PLATFORM.md (3 members, 64 writers, 1 KiB
// puts). disk-B/op is what the three voters made the kernel write to disk
// per op (/proc/self/io write_bytes: log, stable store and snapshots),
// against about 1,100 bytes of op: the log store's write amplification.
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
	disk0, diskOK := diskWritten(b)
	defer func() { reportDisk(b, disk0, diskOK, float64(b.N), "disk-B/op") }()
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

// diskWritten is write_bytes of /proc/self/io: the bytes this process
// caused to be sent to the storage layer so far; ok false (logged) where
// the kernel does not account them. On a tmpfs TMPDIR it stays 0.
func diskWritten(b *testing.B) (n int64, ok bool) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Logf("no disk-B metric: %v", err)
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if v, found := strings.CutPrefix(line, "write_bytes:"); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Logf("no disk-B metric: /proc/self/io: %q: %v", line, err)
				return 0, false
			}
			return n, true
		}
	}
	b.Logf("no disk-B metric: /proc/self/io has no write_bytes")
	return 0, false
}

// reportDisk reports the bytes written since disk0 (from diskWritten),
// divided by per, as unit.
func reportDisk(b *testing.B, disk0 int64, ok bool, per float64, unit string) {
	if n, ok2 := diskWritten(b); ok && ok2 {
		b.ReportMetric(float64(n-disk0)/per, unit)
	}
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

// BenchmarkLogStoreAppend: the log stores alone, appending as Raft does
// (in index order, one StoreLogs call at a time, with fsync), in several
// shapes of calls: how many entries a call carries and how large each
// is. disk-B/B is what the kernel was asked to write per byte of entry
// data (/proc/self/io), bbolt-page-B/B the page bytes bbolt allocated for
// it (bolt). The log is compacted as it grows (see keep below).
//
//	go test -run '^$' -bench LogStoreAppend -benchtime 300x ./consensus/
func BenchmarkLogStoreAppend(b *testing.B) {
	shapes := []struct{ per, size int }{{1, 1 << 10}, {1, 64 << 10}, {8, 8 << 10}, {1, 1 << 20}, {8, 128 << 10}}
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		for _, sh := range shapes {
			name := fmt.Sprintf("%s/%dx%dKiB", kind, sh.per, sh.size>>10)
			b.Run(name, func(b *testing.B) { benchLogStoreAppend(b, kind, sh.per, sh.size) })
		}
	}
}

func benchLogStoreAppend(b *testing.B, kind string, per, size int) {
	var (
		d   *disk
		err error
	)
	dir := b.TempDir()
	if kind == LogStoreBolt {
		d, err = openBolt(dir)
	} else {
		d, err = openWAL(dir, hclog.NewNullLogger())
	}
	if err != nil {
		b.Fatal(err)
	}
	defer d.close()
	data := make([]byte, size)
	var idx uint64
	// As Raft's compaction does, keep the newest entries (about 8 MiB of
	// them, 8 to 1,024) and delete the older ones each time that many
	// more were appended; before the timer, the log is filled twice that
	// far, so freed pages are reused from the start.
	keep := uint64(min(max(8<<20/size, 8), 1024))
	appendCall := func() {
		logs := make([]*raft.Log, per)
		for i := range logs {
			idx++
			logs[i] = &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
		}
		if err := d.logs.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
		if idx%keep < uint64(per) && idx > keep {
			first, err := d.logs.FirstIndex()
			if err != nil {
				b.Fatal(err)
			}
			if err := d.logs.DeleteRange(first, idx-keep); err != nil {
				b.Fatal(err)
			}
		}
	}
	for idx < 2*keep {
		appendCall()
	}
	// bbolt's own count of the page bytes it allocated (bolt only).
	pages := func() int64 { return 0 }
	if bs, ok := d.logs.(*raftboltdb.BoltStore); ok {
		pages = func() int64 { st := bs.Stats(); return st.TxStats.GetPageAlloc() }
	}
	pages0 := pages()
	disk0, diskOK := diskWritten(b)
	b.SetBytes(int64(per * size))
	b.ResetTimer()
	for range b.N {
		appendCall()
	}
	b.StopTimer()
	reportDisk(b, disk0, diskOK, float64(b.N*per*size), "disk-B/B")
	if kind == LogStoreBolt {
		b.ReportMetric(float64(pages()-pages0)/float64(b.N*per*size), "bbolt-page-B/B")
	}
}
