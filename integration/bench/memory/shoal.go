package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/integration/bench/benchproc"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// agent is one `shoal agent` process of the run.
type agent struct {
	name, api, raft, gossip string
	cmd                     *exec.Cmd
}

// shoalRun starts three secure voters (one bootstrap token, --bootstrap-expect
// 3, pods off), writes o.objects ConfigMaps through the leader's API and
// measures every agent.
func shoalRun(system, bin string, extra []string, o options) ([]proc, error) {
	dir, err := os.MkdirTemp("", "shoal-mem-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tok, err := testenv.NewBootstrapToken(bin)
	if err != nil {
		return nil, err
	}
	as := make([]*agent, 3)
	for i := range as {
		a := &agent{name: fmt.Sprintf("n%d", i+1)}
		for _, p := range []*string{&a.api, &a.raft, &a.gossip} {
			if *p, err = benchproc.FreeAddr(); err != nil {
				return nil, err
			}
		}
		as[i] = a
	}
	defer func() {
		for _, a := range as {
			if a.cmd != nil {
				benchproc.Stop(a.cmd)
			}
		}
	}()
	var dirs []string
	for _, a := range as {
		var join, joinAPI []string
		for _, b := range as {
			if b != a {
				join, joinAPI = append(join, b.gossip), append(joinAPI, b.api)
			}
		}
		logf, err := os.Create(filepath.Join(dir, a.name+".log"))
		if err != nil {
			return nil, err
		}
		args := append([]string{"agent", "--node-name", a.name, "--data-dir", filepath.Join(dir, a.name),
			"--http-addr", a.api, "--raft-addr", a.raft, "--bind", a.gossip,
			"--join", strings.Join(join, ","), "--join-api", strings.Join(joinAPI, ","),
			"--bootstrap-expect", "3", "--token", tok, "--log-level", "warn", "--pprof",
			// The control plane only: the agents leave the machine's network alone.
			"--pods=false"}, extra...)
		a.cmd = exec.Command(bin, args...)
		a.cmd.Stdout, a.cmd.Stderr = logf, logf
		err = a.cmd.Start()
		logf.Close()
		if err != nil {
			a.cmd = nil
			return nil, err
		}
		dirs = append(dirs, filepath.Join(dir, a.name))
	}
	var creds *testenv.Credentials
	var last error
	if err := benchproc.WaitFor(90*time.Second, func() bool {
		creds, last = testenv.ReadCredentials(dirs...)
		return last == nil
	}); err != nil {
		return nil, fmt.Errorf("no admin token and CA in any data dir (logs in %s): %v", dir, last)
	}
	client := &http.Client{Transport: creds.Transport(&http.Transport{MaxIdleConnsPerHost: maxWriters}), Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	leader := ""
	if err := benchproc.WaitFor(90*time.Second, func() bool {
		leader = raftLeader(client, creds.URL(as[0].api))
		return leader != ""
	}); err != nil {
		return nil, fmt.Errorf("the three agents never formed a 3-voter cluster (logs in %s)", dir)
	}
	var leaderAPI string
	for _, a := range as {
		if a.name == leader {
			leaderAPI = creds.URL(a.api)
		}
	}
	start := time.Now()
	if err := writeConfigMaps(client, leaderAPI, o); err != nil {
		return nil, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	took := time.Since(start)
	fmt.Printf("  %d writes in %v (%.0f/s)\n", o.objects, took.Round(time.Millisecond), float64(o.objects)/took.Seconds())
	// Every voter has applied every write before it is measured.
	for _, a := range as {
		u := creds.URL(a.api) + "/api/v1/namespaces/default/configmaps/" + objName(o.objects-1) + "?stale=true"
		if err := benchproc.WaitFor(5*time.Minute, func() bool { return getOK(client, u) }); err != nil {
			return nil, fmt.Errorf("%s never applied the last write (logs in %s)", a.name, dir)
		}
	}
	time.Sleep(o.settle) // a measurement's settling time, not synchronisation
	var out []proc
	for _, a := range as {
		p := proc{system: system, name: a.name, role: "follower", heap: -1}
		if a.name == leader {
			p.role = "leader"
		}
		base := creds.URL(a.api)
		if p.heap, err = heapAfterGC(client, base); err != nil {
			return nil, fmt.Errorf("%s: heap: %w", a.name, err)
		}
		if o.profileDir != "" {
			if err := saveProfile(client, base, filepath.Join(o.profileDir, fmt.Sprintf("%s-%s-%s.heap", system, a.name, p.role))); err != nil {
				return nil, fmt.Errorf("%s: heap profile: %w", a.name, err)
			}
		}
		// RSS after the collection above: what a user's `ps` shows once
		// the agent is idle.
		if p.mem, err = readMem(a.cmd.Process.Pid); err != nil {
			return nil, err
		}
		if p.cpu, err = cpuSeconds(a.cmd.Process.Pid); err != nil {
			return nil, err
		}
		if fi, err := os.Stat(filepath.Join(dir, a.name, "raft", "raft.db")); err == nil {
			p.db = fi.Size()
		}
		out = append(out, p)
	}
	return out, nil
}

func objName(i int) string { return "m" + strconv.Itoa(i) }

// writeConfigMaps creates ConfigMaps m0 .. m(objects-1) with o.size bytes of
// data through base (at least 8 bytes), with o.writers concurrent writers.
func writeConfigMaps(client *http.Client, base string, o options) error {
	// Each object's data is its own (the first 8 bytes are its number),
	// as real ones are: the agents intern repeated strings.
	payload := strings.Repeat("x", max(o.size, 8))
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range o.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.objects || firstErr.Load() != nil {
					return
				}
				body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q},"data":{"v":%q}}`, objName(i), fmt.Sprintf("%08d", i)+payload[8:])
				if err := post(client, base+"/api/v1/namespaces/default/configmaps", body); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("write %s: %w", objName(i), err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	return nil
}

// post creates an object, retrying for up to about a minute on a
// transport error or a 5xx (a leader change under load); a 409 on a retry
// means an earlier try landed.
func post(client *http.Client, u, body string) error {
	var err error
	for try := 0; try < 40; try++ {
		if try > 0 {
			time.Sleep(min(time.Duration(try)*100*time.Millisecond, 2*time.Second)) // back-off
		}
		var resp *http.Response
		resp, err = client.Post(u, "application/json", strings.NewReader(body))
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusCreated, resp.StatusCode == http.StatusConflict && try > 0:
			return nil
		case resp.StatusCode >= 500:
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
			continue
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return err
}

func getOK(client *http.Client, u string) bool {
	resp, err := client.Get(u)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// raftLeader returns the leader's ID once the cluster has three voters.
func raftLeader(client *http.Client, base string) string {
	resp, err := client.Get(base + "/v1/cluster/raft")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		LeaderID string
		Voters   []struct{ ID string }
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Voters) != 3 {
		return ""
	}
	return st.LeaderID
}

// heapAfterGC runs a collection in the agent (pprof's gc=1) and returns
// its heap in use (HeapAlloc: live objects after the collection).
func heapAfterGC(client *http.Client, base string) (int64, error) {
	resp, err := client.Get(base + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d (is --pprof on?)", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no HeapAlloc in the heap profile (%v)", sc.Err())
}

func saveProfile(client *http.Client, base, file string) error {
	resp, err := client.Get(base + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
