package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/integration/bench/benchproc"
)

// etcdRound starts a three-member etcd cluster on loopback, in plaintext
// (system etcd) or with client and peer TLS as Kubernetes runs it (system
// etcdTLS), and runs etcdload against it once per load, in the order given.
func etcdRound(system, etcdBin, etcdLoad string, loads []loadSpec, d time.Duration, size, maxOps int) ([]result, error) {
	start := benchproc.StartEtcd
	if system == etcdTLS {
		start = benchproc.StartEtcdTLS
	}
	e, err := start(etcdBin, "etcd-bench-", "shoal-bench")
	if err != nil {
		return nil, err
	}
	defer e.Stop()
	procs := e.Cmds
	var out []result
	for _, l := range loads {
		shape, w := l.shape, l.writers
		if shape == nonvoterShape {
			continue // Shoal only
		}
		before := cpuTicks(procs)
		b, err := e.Load(etcdLoad, w, d, size, maxOps, shape == leaderShape)
		if err != nil {
			return nil, err
		}
		after := cpuTicks(procs)
		r, err := parseResult(b)
		if err != nil {
			return nil, err
		}
		r.cpuUS = cpuPerWrite(before, after, r.ops)
		r.system, r.shape = system, shape
		out = append(out, r)
		fmt.Printf("  %s\n", r.line())
	}
	return out, nil
}

func parseResult(b []byte) (result, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "RESULT ") {
			continue
		}
		r := result{}
		for _, f := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(f, "=")
			num, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "system":
				r.system = v
			case "writers":
				r.writers = int(num)
			case "ops":
				r.ops = int(num)
			case "failed":
				r.failed = int(num)
			case "ops_per_s":
				r.opsPerS = num
			case "p50_ms":
				r.p50 = num
			case "p99_ms":
				r.p99 = num
			}
		}
		return r, nil
	}
	return result{}, errors.New("etcdload printed no RESULT line")
}
