package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// etcdRound starts a three-member etcd cluster on loopback and runs etcdload
// against it once per shape and writer count.
func etcdRound(etcdBin, etcdLoad string, writers []int, d time.Duration, size, maxOps int) ([]result, error) {
	dir, err := os.MkdirTemp("", "etcd-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	type member struct{ name, peer, client string }
	var ms []member
	for i := 1; i <= 3; i++ {
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{fmt.Sprintf("e%d", i), "http://" + p, "http://" + c})
	}
	var initial, endpoints []string
	for _, m := range ms {
		initial = append(initial, m.name+"="+m.peer)
		endpoints = append(endpoints, m.client)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	for _, m := range ms {
		logf, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			return nil, err
		}
		defer logf.Close()
		cmd := exec.Command(etcdBin,
			"--name", m.name,
			"--data-dir", filepath.Join(dir, m.name),
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "shoal-bench")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
	}
	var out []result
	for _, shape := range shapes {
		for _, w := range writers {
			cmd := exec.Command(etcdLoad, "-endpoints", strings.Join(endpoints, ","), "-writers", strconv.Itoa(w),
				"-duration", d.String(), "-size", strconv.Itoa(size), "-max-ops", strconv.Itoa(maxOps),
				"-leader-only="+strconv.FormatBool(shape == leaderShape))
			cmd.Stderr = os.Stderr
			before := cpuTicks(procs)
			b, err := cmd.Output()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", etcdLoad, err)
			}
			after := cpuTicks(procs)
			r, err := parseResult(b)
			if err != nil {
				return nil, err
			}
			r.cpuUS = cpuPerWrite(before, after, r.ops)
			r.shape = shape
			out = append(out, r)
			fmt.Printf("  %s\n", r.line())
		}
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
