package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/integration/testenv"
)

// agent is one `shoal agent` process of the bench cluster.
type agent struct {
	name, api, raft, gossip string
	dir                     string
	cmd                     *exec.Cmd
}

// cluster is three secure agents, all voters.
type cluster struct {
	dir    string
	agents []*agent
	creds  *testenv.Credentials
	leader string // API URL of the leader
	urls   []string
}

// startCluster starts three agents that bootstrap one cluster by
// themselves and waits for three voters and a leader.
func startCluster(shoalBin string, n int) (*cluster, error) {
	dir, err := os.MkdirTemp("", "shoal-watchfan-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	for i := 1; i <= n; i++ {
		a := &agent{name: fmt.Sprintf("n%d", i)}
		for _, p := range []*string{&a.api, &a.raft, &a.gossip} {
			if *p, err = freeAddr(); err != nil {
				c.stop()
				return nil, err
			}
		}
		a.dir = filepath.Join(dir, a.name)
		c.agents = append(c.agents, a)
	}
	tok, err := testenv.NewBootstrapToken(shoalBin)
	if err != nil {
		c.stop()
		return nil, err
	}
	for _, a := range c.agents {
		var join, joinAPI []string
		for _, o := range c.agents {
			if o != a {
				join, joinAPI = append(join, o.gossip), append(joinAPI, o.api)
			}
		}
		logf, err := os.Create(filepath.Join(dir, a.name+".log"))
		if err != nil {
			c.stop()
			return nil, err
		}
		a.cmd = exec.Command(shoalBin, "agent", "--node-name", a.name, "--data-dir", a.dir,
			"--http-addr", a.api, "--raft-addr", a.raft, "--bind", a.gossip,
			"--join", strings.Join(join, ","), "--join-api", strings.Join(joinAPI, ","),
			"--bootstrap-expect", fmt.Sprint(n), "--token", tok, "--log-level", "warn",
			// The bench measures the control plane: no pods, so the
			// agents leave the machine's network alone.
			"--pods=false", "--pprof")
		a.cmd.Stdout, a.cmd.Stderr = logf, logf
		err = a.cmd.Start()
		logf.Close()
		if err != nil {
			c.stop()
			return nil, err
		}
	}
	var dirs []string
	for _, a := range c.agents {
		dirs = append(dirs, a.dir)
	}
	var last error
	if err := waitFor(90*time.Second, func() bool {
		c.creds, last = testenv.ReadCredentials(dirs...)
		return last == nil
	}); err != nil {
		c.stop()
		return nil, fmt.Errorf("no admin token and CA in any data dir (logs in %s): %v", dir, last)
	}
	for _, a := range c.agents {
		c.urls = append(c.urls, c.creds.URL(a.api))
	}
	client := c.client(10 * time.Second)
	defer client.CloseIdleConnections()
	if err := waitFor(90*time.Second, func() bool {
		id, voters, err := raftState(client, c.urls[0])
		if err != nil || id == "" || voters != n {
			return false
		}
		for i, a := range c.agents {
			if a.name == id {
				c.leader = c.urls[i]
			}
		}
		return c.leader != ""
	}); err != nil {
		c.stop()
		return nil, fmt.Errorf("the agents never formed a %d-voter cluster (logs in %s): %w", n, dir, err)
	}
	// Every agent serves the namespace before the bench starts.
	for _, u := range c.urls {
		if err := waitFor(60*time.Second, func() bool {
			resp, err := client.Get(u + "/api/v1/namespaces/default?stale=true")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s never served the default namespace (logs in %s): %w", u, dir, err)
		}
	}
	return c, nil
}

// client is an HTTPS client with the admin token and its own connections.
func (c *cluster) client(timeout time.Duration) *http.Client {
	tr := &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 256}
	return &http.Client{Transport: c.creds.Transport(tr), Timeout: timeout}
}

func raftState(client *http.Client, base string) (leader string, voters int, err error) {
	resp, err := client.Get(base + "/v1/cluster/raft")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var st struct {
		LeaderID string
		Voters   []struct{ ID string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", 0, err
	}
	return st.LeaderID, len(st.Voters), nil
}

// stop ends every agent (SIGTERM, then SIGKILL after 20 s) and removes
// the data directories.
func (c *cluster) stop() {
	for _, a := range c.agents {
		if a.cmd == nil || a.cmd.Process == nil {
			continue
		}
		a.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { a.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			a.cmd.Process.Kill()
			<-done
		}
	}
	if keepDir {
		fmt.Printf("agents' logs kept in %s\n", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
