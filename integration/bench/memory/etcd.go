package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/integration/bench/benchproc"
)

// etcdRun starts three etcd members on loopback with their default
// settings (as the write benchmark does), puts o.objects distinct keys of
// o.size bytes through etcdload to the leader, and measures every member.
func etcdRun(etcdBin, etcdLoad string, o options) ([]proc, error) {
	e, err := benchproc.StartEtcd(etcdBin, "etcd-mem-", "shoal-mem")
	if err != nil {
		return nil, err
	}
	defer e.Stop()
	start := time.Now()
	b, err := e.Load(etcdLoad, o.writers, time.Hour, o.size, o.objects, true)
	if err != nil {
		return nil, err
	}
	fmt.Printf("  %s", b)
	if strings.Contains(string(b), "failed=") && !strings.Contains(string(b), "failed=0 ") {
		return nil, fmt.Errorf("etcdload: some puts failed: %s", b)
	}
	took := time.Since(start)
	fmt.Printf("  %d puts in %v\n", o.objects, took.Round(time.Millisecond))
	time.Sleep(o.settle) // a measurement's settling time, not synchronisation
	var out []proc
	for i, m := range e.Cmds {
		mem, err := readMem(m.Process.Pid)
		if err != nil {
			return nil, err
		}
		cpu, err := cpuSeconds(m.Process.Pid)
		if err != nil {
			return nil, err
		}
		out = append(out, proc{system: "etcd", name: e.Names[i], role: "member", mem: mem, heap: -1, cpu: cpu})
	}
	return out, nil
}
