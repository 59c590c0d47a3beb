package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// etcdRun starts three etcd members on loopback with their default
// settings (as the write benchmark does), puts o.objects distinct keys of
// o.size bytes through etcdload to the leader, and measures every member.
func etcdRun(etcdBin, etcdLoad string, o options) ([]proc, error) {
	dir, err := os.MkdirTemp("", "etcd-mem-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	type member struct {
		name, peer, client string
		cmd                *exec.Cmd
	}
	ms := make([]*member, 3)
	var initial, endpoints []string
	for i := range ms {
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ms[i] = &member{name: fmt.Sprintf("e%d", i+1), peer: "http://" + p, client: "http://" + c}
		initial = append(initial, ms[i].name+"="+ms[i].peer)
		endpoints = append(endpoints, ms[i].client)
	}
	defer func() {
		for _, m := range ms {
			if m.cmd != nil {
				stopProc(m.cmd)
			}
		}
	}()
	for _, m := range ms {
		logf, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			return nil, err
		}
		m.cmd = exec.Command(etcdBin,
			"--name", m.name,
			"--data-dir", filepath.Join(dir, m.name),
			"--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "shoal-mem")
		m.cmd.Stdout, m.cmd.Stderr = logf, logf
		err = m.cmd.Start()
		logf.Close()
		if err != nil {
			m.cmd = nil
			return nil, err
		}
	}
	start := time.Now()
	cmd := exec.Command(etcdLoad, "-endpoints", strings.Join(endpoints, ","), "-writers", strconv.Itoa(o.writers),
		"-duration", "1h", "-size", strconv.Itoa(o.size), "-max-ops", strconv.Itoa(o.objects), "-leader-only")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w (logs in %s)", etcdLoad, err, dir)
	}
	fmt.Printf("  %s", b)
	if strings.Contains(string(b), "failed=") && !strings.Contains(string(b), "failed=0 ") {
		return nil, fmt.Errorf("etcdload: some puts failed: %s", b)
	}
	took := time.Since(start)
	fmt.Printf("  %d puts in %v\n", o.objects, took.Round(time.Millisecond))
	time.Sleep(o.settle) // a measurement's settling time, not synchronisation
	var out []proc
	for _, m := range ms {
		mem, err := readMem(m.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		cpu, err := cpuSeconds(m.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		out = append(out, proc{system: "etcd", name: m.name, role: "member", mem: mem, heap: -1, cpu: cpu})
	}
	return out, nil
}
