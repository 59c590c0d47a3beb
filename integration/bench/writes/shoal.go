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
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// member is one agent of a bench cluster (loopback addresses).
type member struct{ name, api, raft, gossip string }

// newMember picks free loopback addresses for agent name.
func newMember(name string) (member, error) {
	var addrs [3]string
	for j := range addrs {
		var err error
		if addrs[j], err = freeAddr(); err != nil {
			return member{}, err
		}
	}
	return member{name, addrs[0], addrs[1], addrs[2]}, nil
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
	cmd := exec.Command(shoalBin, append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// shoalRound starts three `shoal agent` processes, each with its own data
// directory, API, Raft and gossip listener, lets them form one cluster by
// themselves (--join the others, --bootstrap-expect 3: three voters), and
// loads their APIs, writer k on agent k mod 3 — the same shape as the etcd
// round: three server processes and a client process. Secure: one
// bootstrap token for the three (shoal token generate), HTTPS verified
// against the cluster CA and the admin token read from the bootstrapping
// agent's data dir; then joins agents, one at a time, with the worker join
// token and returns how long each took from start to Node Ready.
// Insecure: --insecure, plain HTTP.
func shoalRound(shoalBin string, isSecure bool, writers []int, d time.Duration, size, maxOps, joins int) ([]result, []time.Duration, error) {
	system := insecure
	if isSecure {
		system = secure
	}
	dir, err := os.MkdirTemp("", "shoal-bench-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	var ms []member
	for i := 1; i <= 3; i++ {
		m, err := newMember(fmt.Sprintf("n%d", i))
		if err != nil {
			return nil, nil, err
		}
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
			stop(p)
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
		if err := waitFor(60*time.Second, func() bool {
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
	var leader string
	if err := waitFor(60*time.Second, func() bool {
		resp, err := client.Get(bases[0] + "/v1/cluster/raft")
		if err != nil {
			return false
		}
		var st struct {
			LeaderID string
			Voters   []struct{ ID string }
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.LeaderID == "" || len(st.Voters) != 3 {
			return false
		}
		for i, m := range ms {
			if m.name == st.LeaderID {
				leader = bases[i]
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
		if err := waitFor(15*time.Second, func() bool {
			resp, err := client.Get(u)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		}); err != nil {
			return nil, nil, fmt.Errorf("%s never served the default namespace (logs in %s): %w", b, dir, err)
		}
	}
	payload := strings.Repeat("x", size)
	if profileLeader != "" {
		go profile(client, leader)
	}
	var out []result
	for run, w := range writers {
		r := load(system, w, d, maxOps, func(writer int, i int64) error {
			body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"r%d-w%d-%d"},"data":{"v":%q}}`, run, writer, i, payload)
			resp, err := client.Post(bases[writer%len(bases)]+"/api/v1/namespaces/default/configmaps", "application/json", strings.NewReader(body))
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
			}
			return nil
		})
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

// join starts agent name with the cluster's worker join token (read through
// the API, pinned to the CA) and returns the time from its start to its
// Node Ready as the leader at leaderURL reports it; then stops it.
func join(shoalBin, dir string, creds *testenv.Credentials, client *http.Client, ms []member, leaderURL, name string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	jt, err := creds.JoinTokens(ctx, client, ms[0].api)
	if err != nil {
		return 0, err
	}
	m, err := newMember(name)
	if err != nil {
		return 0, err
	}
	var gossip, apis []string
	for _, o := range ms {
		gossip, apis = append(gossip, o.gossip), append(apis, o.api)
	}
	start := time.Now()
	cmd, err := m.start(shoalBin, dir, gossip, "--token", jt.Worker, "--join-api", strings.Join(apis, ","))
	if err != nil {
		return 0, err
	}
	defer stop(cmd)
	var took time.Duration
	if err := waitFor(90*time.Second, func() bool {
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

// profile writes a 4 s CPU profile of the agent at base to profileLeader.
func profile(client *http.Client, base string) {
	resp, err := client.Get(base + "/debug/pprof/profile?seconds=4")
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(profileLeader)
	if err == nil {
		io.Copy(f, resp.Body)
		f.Close()
	}
}
