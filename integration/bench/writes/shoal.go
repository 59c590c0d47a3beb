package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/bench/benchproc"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// member is one agent of a bench cluster (loopback addresses); args are
// flags every agent of its system gets (-shoal-args, -base-args).
type member struct {
	name, api, raft, gossip string
	args                    []string
}

// newMember picks free loopback addresses for agent name.
func newMember(name string) (member, error) {
	var addrs [3]string
	for j := range addrs {
		var err error
		if addrs[j], err = benchproc.FreeAddr(); err != nil {
			return member{}, err
		}
	}
	return member{name: name, api: addrs[0], raft: addrs[1], gossip: addrs[2]}, nil
}

// start runs `shoal agent` for m with its data dir under dir, logging to
// dir/<name>.log, with extra flags.
func (m member) start(shoalBin, dir string, join []string, extra ...string) (*exec.Cmd, error) {
	logf, err := os.Create(filepath.Join(dir, m.name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"agent", "--node-name", m.name, "--data-dir", filepath.Join(dir, m.name),
		"--http-addr", m.api, "--raft-addr", m.raft, "--bind", m.gossip, "--join", strings.Join(join, ","),
		"--log-level", "warn", "--pprof",
		// The benchmark measures the control plane: no pods, so the
		// agents leave the machine's network alone.
		"--pods=false"}
	args = append(append(args, m.args...), extra...)
	cmd := exec.Command(shoalBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// profiled counts the loads profiled: it numbers their files in the order
// of the loads, so that a shape measured twice (-writers 1,1) keeps both.
var profiled int

// shoalRound starts three `shoal agent` processes, each with its own data
// directory, API, Raft and gossip listener, lets them form one cluster by
// themselves (--join the others, --bootstrap-expect 3: three voters), adds
// a fourth agent that stays a non-voter (if nonvoter), and loads their
// APIs once per load of loads, in that order, in its shape: every write on
// the leader, or each write on the next agent in turn (as etcd's client
// spreads its requests) — the shapes of the etcd round: three server processes and a client process. Secure: one bootstrap token for the three (shoal token
// generate), HTTPS verified against the cluster CA and the admin token read
// from the bootstrapping agent's data dir, the non-voter joined with the
// worker join token; then joins agents, one at a time, with the worker
// join token and returns how long each took from start to Node Ready.
// Insecure: --insecure, plain HTTP. system is secure, insecure or base
// (secure; the caller passes the base binary). args: flags for every
// agent. first: the first round, when profiles are taken (see profileDir).
func shoalRound(shoalBin, system string, args []string, nonvoter bool, loads []loadSpec, d time.Duration, size, maxOps, joins int, first bool) (_ []result, _ []time.Duration, rerr error) {
	isSecure := system != insecure
	dir, err := os.MkdirTemp("", "shoal-bench-")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		// A failed run keeps its agents' logs (the error names the dir).
		if rerr == nil {
			os.RemoveAll(dir)
		}
	}()
	var ms []member
	for i := 1; i <= 3; i++ {
		m, err := newMember(fmt.Sprintf("n%d", i))
		if err != nil {
			return nil, nil, err
		}
		m.args = args
		ms = append(ms, m)
	}
	mode := []string{"--insecure"}
	if isSecure {
		tok, err := testenv.NewBootstrapToken(shoalBin)
		if err != nil {
			return nil, nil, err
		}
		mode = []string{"--token", tok}
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			benchproc.Stop(p)
		}
	}()
	var dirs []string
	for _, m := range ms {
		var join, joinAPI []string
		for _, o := range ms {
			if o.name != m.name {
				join, joinAPI = append(join, o.gossip), append(joinAPI, o.api)
			}
		}
		extra := append([]string{"--bootstrap-expect", "3"}, mode...)
		if isSecure {
			// Each agent's API port differs: say where the others' are.
			extra = append(extra, "--join-api", strings.Join(joinAPI, ","))
		}
		cmd, err := m.start(shoalBin, dir, join, extra...)
		if err != nil {
			return nil, nil, err
		}
		procs = append(procs, cmd)
		dirs = append(dirs, filepath.Join(dir, m.name))
	}
	var creds *testenv.Credentials // nil: insecure
	if isSecure {
		var last error
		if err := benchproc.WaitFor(60*time.Second, func() bool {
			creds, last = testenv.ReadCredentials(dirs...)
			return last == nil
		}); err != nil {
			return nil, nil, fmt.Errorf("no admin token and CA in any data dir (logs in %s): %v", dir, last)
		}
	}
	client := &http.Client{Transport: creds.Transport(&http.Transport{MaxIdleConnsPerHost: 1024}), Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	bases := make([]string, len(ms))
	for i, m := range ms {
		bases[i] = creds.URL(m.api)
	}
	// Wait for the three voters.
	var leader, follower string
	voters := func() (string, []string, error) {
		resp, err := client.Get(bases[0] + "/v1/cluster/raft")
		if err != nil {
			return "", nil, err
		}
		defer resp.Body.Close()
		var st struct {
			LeaderID string
			Voters   []struct{ ID string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return "", nil, err
		}
		var ids []string
		for _, v := range st.Voters {
			ids = append(ids, v.ID)
		}
		return st.LeaderID, ids, nil
	}
	if err := benchproc.WaitFor(60*time.Second, func() bool {
		id, vs, err := voters()
		if err != nil || id == "" || len(vs) != 3 {
			return false
		}
		leader, follower = "", ""
		for i, m := range ms {
			if m.name == id {
				leader = bases[i]
			} else {
				follower = bases[i]
			}
		}
		return leader != ""
	}); err != nil {
		return nil, nil, fmt.Errorf("the three agents never formed a 3-voter cluster (logs in %s): %w", dir, err)
	}
	// Every agent must serve the data before the load starts: the leader
	// from the store, the followers from their replicas, so that no
	// follower is still catching up during the measurement.
	for i, b := range append([]string{leader}, bases...) {
		u := b + "/api/v1/namespaces/default"
		if i > 0 {
			u += "?stale=true"
		}
		if err := servesOK(client, u); err != nil {
			return nil, nil, fmt.Errorf("%s never served the default namespace (logs in %s): %w", b, dir, err)
		}
	}
	spread := bases
	var nv string // the non-voter's API
	if nonvoter {
		m, err := newMember("n4")
		if err != nil {
			return nil, nil, err
		}
		m.args = args
		var cmd *exec.Cmd
		if isSecure {
			cmd, err = startJoiner(shoalBin, dir, creds, client, ms, m)
		} else {
			cmd, err = m.start(shoalBin, dir, gossipAddrs(ms), "--insecure")
		}
		if err != nil {
			return nil, nil, err
		}
		procs = append(procs, cmd)
		nv = creds.URL(m.api)
		// A linearizable read on the non-voter goes to the leader: once
		// it answers, the non-voter knows the leader and can forward.
		if err := servesOK(client, nv+"/api/v1/namespaces/default"); err != nil {
			return nil, nil, fmt.Errorf("the non-voter n4 never served the default namespace (log %s): %w", filepath.Join(dir, "n4.log"), err)
		}
		if _, vs, err := voters(); err != nil || len(vs) != 3 || slices.Contains(vs, m.name) {
			return nil, nil, fmt.Errorf("after n4 joined, the voters are %v (%v), not the three first agents", vs, err)
		}
		spread = append(append([]string(nil), bases...), nv)
	}
	payload := strings.Repeat("x", size)
	var out []result
	run := 0
	for _, l := range loads {
		shape, w := l.shape, l.writers
		targets := []string{leader}
		switch shape {
		case spreadShape:
			targets = spread
		case nonvoterShape:
			targets = []string{nv}
		}
		run++
		write := func(writer int, i int64) error {
			body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"r%d-w%d-%d"},"data":{"v":%q}}`, run, writer, i, payload)
			resp, err := client.Post(targets[int(i)%len(targets)]+"/api/v1/namespaces/default/configmaps", "application/json", strings.NewReader(body))
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
			}
			return nil
		}
		// Unmeasured: the writers' and the agents' connections open
		// (TLS handshakes included), as a long-lived client's are.
		if warmup > 0 {
			load(system, shape, w, warmup, maxOps, func(writer int, i int64) error { return write(writer, i+1<<40) })
		}
		if profileDir != "" && first {
			profiles := map[string]string{"leader": leader, "follower": follower}
			if nv != "" {
				profiles["nonvoter"] = nv
			}
			secs := max(1, int(d.Seconds())-1)
			profiled++
			for role, base := range profiles {
				name := fmt.Sprintf("%s-%02d-%s-%d-%s", system, profiled, shape, w, role)
				go profile(client, base, "profile", secs, filepath.Join(profileDir, name+".pprof"))
				go profile(client, base, "trace", 1, filepath.Join(profileDir, name+".trace"))
				go profile(client, base, "allocs", secs, filepath.Join(profileDir, name+".allocs"))
			}
		}
		before := cpuTicks(procs)
		r := load(system, shape, w, d, maxOps, write)
		r.cpuUS = cpuPerWrite(before, cpuTicks(procs), r.ops)
		out = append(out, r)
		fmt.Printf("  %s\n", r.line())
	}
	if !isSecure || joins == 0 {
		return out, nil, nil
	}
	var joined []time.Duration
	for j := 1; j <= joins; j++ {
		took, err := join(shoalBin, dir, creds, client, ms, leader, fmt.Sprintf("j%d", j))
		if err != nil {
			return nil, nil, err
		}
		fmt.Printf("  join j%d with the worker token: start to Node Ready %v\n", j, took.Round(time.Millisecond))
		joined = append(joined, took)
	}
	return out, joined, nil
}

// servesOK waits up to 60 s for a GET of u to answer 200.
func servesOK(client *http.Client, u string) error {
	return benchproc.WaitFor(60*time.Second, func() bool {
		resp, err := client.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func gossipAddrs(ms []member) []string {
	var out []string
	for _, o := range ms {
		out = append(out, o.gossip)
	}
	return out
}

// startJoiner starts agent m with the cluster's worker join token (read
// through the API, pinned to the CA).
func startJoiner(shoalBin, dir string, creds *testenv.Credentials, client *http.Client, ms []member, m member) (*exec.Cmd, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	jt, err := creds.JoinTokens(ctx, client, ms[0].api)
	if err != nil {
		return nil, err
	}
	var apis []string
	for _, o := range ms {
		apis = append(apis, o.api)
	}
	return m.start(shoalBin, dir, gossipAddrs(ms), "--token", jt.Worker, "--join-api", strings.Join(apis, ","))
}

// join starts agent name with the cluster's worker join token and returns
// the time from its start to its Node Ready as the leader at leaderURL
// reports it; then stops it.
func join(shoalBin, dir string, creds *testenv.Credentials, client *http.Client, ms []member, leaderURL, name string) (time.Duration, error) {
	m, err := newMember(name)
	if err != nil {
		return 0, err
	}
	m.args = ms[0].args
	start := time.Now()
	cmd, err := startJoiner(shoalBin, dir, creds, client, ms, m)
	if err != nil {
		return 0, err
	}
	defer benchproc.Stop(cmd)
	var took time.Duration
	if err := benchproc.WaitFor(90*time.Second, func() bool {
		resp, err := client.Get(leaderURL + "/api/v1/nodes/" + name)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var n api.Node
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&n) != nil {
			return false
		}
		c := api.FindCondition(n.Status.Conditions, api.NodeReady)
		if c == nil || c.Status != api.ConditionTrue {
			return false
		}
		took = time.Since(start)
		return true
	}); err != nil {
		return 0, fmt.Errorf("%s never became a Ready node (log %s): %w", name, filepath.Join(dir, name+".log"), err)
	}
	return took, nil
}

// profile writes a CPU profile (kind "profile"), an execution trace
// (kind "trace") or the allocations (kind "allocs") of secs seconds of the
// agent at base to file.
func profile(client *http.Client, base, kind string, secs int, file string) {
	resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", base, kind, secs))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err == nil {
		io.Copy(f, resp.Body)
		f.Close()
	}
}
