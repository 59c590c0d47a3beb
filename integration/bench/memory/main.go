// Command memory measures what a replica holds per stored object (issue
// 14, "memory per object"): three `shoal agent` voters and three etcd 3.4
// members, each loaded with the same number of 1 KiB objects (ConfigMaps
// with 1 KiB of data through Shoal's HTTP API; 1 KiB values through etcd's
// v3 client, via the etcdload program), then the resident set (RSS: VmRSS,
// split into anonymous and file-backed pages, the latter being bolt's
// mmap) of every process and, for Shoal, the Go heap in use after a
// collection (through /debug/pprof). It prints each process and the ratio
// of the mean Shoal voter's RSS to the mean etcd member's.
//
// The default is 10,000 objects so that `make bench` stays short; the
// figure the issue asks for is `-objects 100000`. With -base-shoal another
// shoal binary (a build before a change) is measured in the same run, and
// with -profile the heap profiles of the Shoal voters are kept for
// `go tool pprof -top -inuse_space`.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Limits of the flags.
const (
	maxObjects = 1_000_000
	maxSize    = 1 << 20
	maxWriters = 1024
)

// proc is what was measured of one server process.
type proc struct {
	system string // shoal, base or etcd
	name   string
	role   string // leader or follower
	mem    procMem
	heap   int64   // Go heap in use after a GC (bytes), -1 when not measured
	db     int64   // size of the Raft log's file (Shoal: raft.db), 0 when not measured
	cpu    float64 // CPU seconds used from start to the measurement
}

type options struct {
	objects, size, writers int
	settle                 time.Duration
	profileDir             string
}

func main() {
	var o options
	flag.IntVar(&o.objects, "objects", 10000, fmt.Sprintf("objects written to each system (the issue's figure: 100000; at most %d)", maxObjects))
	flag.IntVar(&o.size, "size", 1024, "bytes of data per object")
	flag.IntVar(&o.writers, "writers", 64, "concurrent writers")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "wait after the last write before measuring (snapshots and the collector finish what the load started)")
	flag.StringVar(&o.profileDir, "profile", "", "keep the heap profile (after a GC) of each Shoal voter in this directory")
	etcdBin := flag.String("etcd", "/usr/bin/etcd", "etcd server binary; empty skips etcd")
	etcdLoad := flag.String("etcdload", "bin/etcdload", "the etcdload program")
	shoalBin := flag.String("shoal", "bin/shoal", "the shoal binary")
	baseBin := flag.String("base-shoal", "", "another shoal binary (a build before a change), measured as system \"base\" in the same run")
	extraFlags := flag.String("shoal-flags", "", "extra flags for every shoal agent, space-separated (e.g. --memory-limit=300MiB)")
	flag.Parse()
	switch {
	case o.objects < 1 || o.objects > maxObjects:
		fatalf("-objects: %d is not between 1 and %d", o.objects, maxObjects)
	case o.size < 1 || o.size > maxSize:
		fatalf("-size: %d is not between 1 and %d", o.size, maxSize)
	case o.writers < 1 || o.writers > maxWriters:
		fatalf("-writers: %d is not between 1 and %d", o.writers, maxWriters)
	case o.settle < 0 || o.settle > 10*time.Minute:
		fatalf("-settle: %v is not between 0 and 10m", o.settle)
	}
	if *etcdBin != "" {
		if _, err := os.Stat(*etcdBin); err != nil {
			fatalf("-etcd: %v (install the Debian package etcd-server, or pass -etcd '' to skip)", err)
		}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			fatalf("-profile: %v", err)
		}
	}
	extra := strings.Fields(*extraFlags)

	var all []proc
	run := func(name string, f func() ([]proc, error)) {
		fmt.Printf("%s: %d objects of %d bytes, %d writers\n", name, o.objects, o.size, o.writers)
		ps, err := f()
		if err != nil {
			fatalf("%s: %v", name, err)
		}
		all = append(all, ps...)
	}
	run("shoal", func() ([]proc, error) { return shoalRun("shoal", *shoalBin, extra, o) })
	if *baseBin != "" {
		run("base", func() ([]proc, error) { return shoalRun("base", *baseBin, extra, o) })
	}
	if *etcdBin != "" {
		run("etcd", func() ([]proc, error) { return etcdRun(*etcdBin, *etcdLoad, o) })
	}
	report(all, o)
}

func report(ps []proc, o options) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].system < ps[j].system })
	fmt.Printf("\n%-6s %-5s %-8s %9s %9s %9s %12s %11s %7s\n", "system", "proc", "role", "RSS MiB", "anon MiB", "file MiB", "heap MiB(GC)", "raft.db MiB", "CPU s")
	mean := map[string]float64{}
	count := map[string]int{}
	for _, p := range ps {
		heap := "-"
		if p.heap >= 0 {
			heap = fmt.Sprintf("%.1f", mib(p.heap))
		}
		db := "-"
		if p.db > 0 {
			db = fmt.Sprintf("%.1f", mib(p.db))
		}
		fmt.Printf("%-6s %-5s %-8s %9.1f %9.1f %9.1f %12s %11s %7.1f\n", p.system, p.name, p.role, mib(p.mem.rss), mib(p.mem.anon), mib(p.mem.file), heap, db, p.cpu)
		mean[p.system] += float64(p.mem.rss)
		count[p.system]++
	}
	for s := range mean {
		mean[s] /= float64(count[s])
	}
	for _, s := range []string{"shoal", "base", "etcd"} {
		if count[s] > 0 {
			fmt.Printf("%-6s mean RSS per process %.1f MiB with %d objects\n", s, mib(int64(mean[s])), o.objects)
		}
	}
	if mean["etcd"] > 0 {
		fmt.Printf("RESULT objects=%d shoal/etcd=%.2f", o.objects, mean["shoal"]/mean["etcd"])
		if mean["base"] > 0 {
			fmt.Printf(" base/etcd=%.2f shoal/base=%.2f", mean["base"]/mean["etcd"], mean["shoal"]/mean["base"])
		}
		fmt.Println()
	} else if mean["base"] > 0 {
		fmt.Printf("RESULT objects=%d shoal/base=%.2f\n", o.objects, mean["shoal"]/mean["base"])
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "memory: "+format+"\n", args...)
	os.Exit(1)
}
