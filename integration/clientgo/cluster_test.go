package clientgo

// A real cluster for the client-go tests that need one: `shoal agent`
// processes on loopback, secure as a user runs them (a bootstrap token,
// then TLS verified against the cluster CA and the admin token), pods off
// (--pods=false: the control plane only, the machine's network is left
// alone). Each agent binds its own loopback address 127.A.B.N with the
// default ports, A and B random per cluster, so that clusters of tests
// running at the same time never share an address.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/testenv"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Limits of the harness.
const (
	// formTimeout bounds the forming of the cluster (the machine is
	// shared and slow: agents may take long to start under -race).
	formTimeout = 3 * time.Minute
	// stopTimeout bounds a graceful stop before the agent is killed.
	stopTimeout = 20 * time.Second
)

// shoalBinary is the shoal binary the cluster tests run: $SHOAL_BIN, or
// built once per test binary from the main module.
var shoalBinary = sync.OnceValues(func() (string, error) {
	if b := os.Getenv("SHOAL_BIN"); b != "" {
		return b, nil
	}
	dir, err := os.MkdirTemp("", "shoal-clientgo-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "shoal")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/shoal")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/shoal: %v\n%s", err, out)
	}
	return bin, nil
})

// binDir is the directory shoalBinary built into, removed by TestMain.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// agentProc is one `shoal agent` process.
type agentProc struct {
	name, ip, dataDir, logPath string
	args                       []string
	cmd                        *exec.Cmd
	exited                     chan struct{}
}

// api is the agent's API address (host:port).
func (a *agentProc) api() string { return net.JoinHostPort(a.ip, "7070") }

func (a *agentProc) gossip() string { return net.JoinHostPort(a.ip, "7946") }

func (a *agentProc) running() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// cluster is three voters and, optionally, non-voters.
type cluster struct {
	t      *testing.T
	bin    string
	dir    string
	prefix string // "127.A.B."
	agents []*agentProc
	creds  *testenv.Credentials
	http   *http.Client
}

// startCluster starts three agents that form one cluster by themselves
// (--bootstrap-expect 3, one bootstrap token), waits until they are its
// three voters with a leader, then adds nonVoters agents with the worker
// join token and waits until each serves the API.
func startCluster(t *testing.T, nonVoters int) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster of shoal processes")
	}
	bin, err := shoalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, bin: bin, dir: t.TempDir()}
	c.prefix = freePrefix(t)
	t.Cleanup(c.stopAll)
	tok := testenv.BootstrapToken(t, bin)
	var gossips []string
	for i := range 3 {
		gossips = append(gossips, net.JoinHostPort(c.prefix+fmt.Sprint(10+i), "7946"))
	}
	var dirs []string
	for i := range 3 {
		a := c.newAgent(fmt.Sprintf("c%d", i), 10+i)
		var join []string
		for _, g := range gossips {
			if g != a.gossip() {
				join = append(join, g)
			}
		}
		c.start(a, "--bootstrap-expect", "3", "--token", tok, "--join", strings.Join(join, ","))
		dirs = append(dirs, a.dataDir)
	}
	c.creds = testenv.WaitCredentials(t, formTimeout, dirs...)
	c.http = c.creds.HTTPClient(10 * time.Second)
	t.Cleanup(c.http.CloseIdleConnections)
	c.waitUntil(formTimeout, "three voters and a leader", func() string {
		leader, voters, err := c.raft(c.agents[0])
		if err != nil {
			return err.Error()
		}
		if leader == "" || len(voters) != 3 {
			return fmt.Sprintf("leader %q, voters %v", leader, voters)
		}
		return ""
	})
	for i := range nonVoters {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		jt, err := c.creds.JoinTokens(ctx, c.http, c.agents[0].api())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		a := c.newAgent(fmt.Sprintf("c%d", 3+i), 13+i)
		c.start(a, "--token", jt.Worker, "--join", strings.Join(gossips, ","))
	}
	for _, a := range c.agents {
		c.waitUntil(formTimeout, a.name+" serves the default namespace", func() string {
			return c.get(a, "/api/v1/namespaces/default")
		})
	}
	return c
}

// freePrefix picks 127.A.B. such that nothing listens on the agents'
// ports of 127.A.B.10-13 yet.
func freePrefix(t *testing.T) string {
	t.Helper()
	for range 50 {
		p := fmt.Sprintf("127.%d.%d.", 20+rand.IntN(200), 1+rand.IntN(250))
		free := true
		for i := 10; i < 14 && free; i++ {
			for _, port := range []string{"7070", "7071", "7946"} {
				ln, err := net.Listen("tcp", net.JoinHostPort(p+fmt.Sprint(i), port))
				if err != nil {
					free = false
					break
				}
				ln.Close()
			}
		}
		if free {
			return p
		}
	}
	t.Fatal("no free loopback prefix")
	return ""
}

func (c *cluster) newAgent(name string, host int) *agentProc {
	ip := c.prefix + fmt.Sprint(host)
	return &agentProc{name: name, ip: ip, dataDir: filepath.Join(c.dir, name), logPath: filepath.Join(c.dir, name+".log")}
}

// start runs a with the common flags and extra.
func (c *cluster) start(a *agentProc, extra ...string) {
	c.t.Helper()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	a.args = append([]string{"agent", "--node-name", a.name, "--data-dir", a.dataDir,
		"--http-addr", a.api(), "--raft-addr", net.JoinHostPort(a.ip, "7071"), "--bind", a.gossip(),
		"--zone", "z-" + a.name, "--pods=false", "--log-level", "info"}, extra...)
	a.cmd = exec.Command(c.bin, a.args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	a.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(a.cmd, a.exited)
	if !containsAgent(c.agents, a) {
		c.agents = append(c.agents, a)
	}
}

func containsAgent(as []*agentProc, a *agentProc) bool {
	for _, o := range as {
		if o == a {
			return true
		}
	}
	return false
}

// kill crashes a (SIGKILL: no hand-over, no gossip leave) and waits for
// the process to end.
func (c *cluster) kill(a *agentProc) {
	c.t.Helper()
	a.cmd.Process.Kill()
	select {
	case <-a.exited:
	case <-time.After(stopTimeout):
		c.t.Fatalf("%s did not die", a.name)
	}
}

// stopAll stops every agent still running (SIGTERM, then SIGKILL) and
// prints the logs' tails if the test failed.
func (c *cluster) stopAll() {
	for _, a := range c.agents {
		if a.cmd != nil && a.running() {
			a.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, a := range c.agents {
		if a.cmd == nil {
			continue
		}
		select {
		case <-a.exited:
		case <-time.After(stopTimeout):
			a.cmd.Process.Kill()
			<-a.exited
		}
	}
	if c.t.Failed() {
		for _, a := range c.agents {
			b, _ := os.ReadFile(a.logPath)
			if len(b) > 12000 {
				b = b[len(b)-12000:]
			}
			c.t.Logf("log of %s (tail):\n%s", a.name, b)
		}
	}
}

// alive are the agents whose process runs.
func (c *cluster) alive() []*agentProc {
	var out []*agentProc
	for _, a := range c.agents {
		if a.running() {
			out = append(out, a)
		}
	}
	return out
}

// raft asks a for the leader's and the voters' names (those with a vote:
// the voter manager stages agents as non-voters first).
func (c *cluster) raft(a *agentProc) (string, []string, error) {
	resp, err := c.http.Get(c.creds.URL(a.api()) + "/v1/cluster/raft")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	var st struct {
		LeaderID string
		Voters   []struct{ ID, Suffrage string }
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET /v1/cluster/raft at %s: %s", a.name, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", nil, err
	}
	var ids []string
	for _, v := range st.Voters {
		if v.Suffrage == "Voter" { // not the staged non-voters
			ids = append(ids, v.ID)
		}
	}
	return st.LeaderID, ids, nil
}

// byName is the agent called name.
func (c *cluster) byName(name string) *agentProc {
	for _, a := range c.agents {
		if a.name == name {
			return a
		}
	}
	c.t.Fatalf("no agent %q", name)
	return nil
}

// leader is the current leader as a running agent sees it.
func (c *cluster) leader() *agentProc {
	c.t.Helper()
	var name string
	c.waitUntil(time.Minute, "a leader", func() string {
		for _, a := range c.alive() {
			l, _, err := c.raft(a)
			if err == nil && l != "" {
				name = l
				return ""
			}
		}
		return "no running agent knows a leader"
	})
	return c.byName(name)
}

// get GETs path at a and returns "" on 200, else what happened.
func (c *cluster) get(a *agentProc, path string) string {
	resp, err := c.http.Get(c.creds.URL(a.api()) + path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return fmt.Sprintf("GET %s at %s: %s %s", path, a.name, resp.Status, strings.TrimSpace(b.String()))
	}
	return ""
}

// restConfig is a client-go configuration for a's API: TLS pinned to the
// cluster CA, the admin token, JSON (Shoal reads no protobuf), no client
// rate limit. No client timeout: it would cut watches; requests are
// bounded by their contexts.
func (c *cluster) restConfig(a *agentProc) *rest.Config {
	return &rest.Config{
		Host:            c.creds.URL(a.api()),
		BearerToken:     c.creds.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.creds.CAPEM},
		ContentConfig:   rest.ContentConfig{ContentType: "application/json"},
		QPS:             -1,
	}
}

// client is a clientset for a's API.
func (c *cluster) client(a *agentProc) kubernetes.Interface {
	c.t.Helper()
	cs, err := kubernetes.NewForConfig(c.restConfig(a))
	if err != nil {
		c.t.Fatal(err)
	}
	return cs
}

// waitUntil polls cond until it returns "" or d passes, then fails the
// test with cond's last complaint.
func (c *cluster) waitUntil(d time.Duration, what string, cond func() string) {
	c.t.Helper()
	if msg := poll(d, cond); msg != "" {
		c.t.Fatalf("timed out after %v waiting for %s: %s", d, what, msg)
	}
}

// poll calls cond every 100 ms until it returns "" or d passes, and
// returns its last answer.
func poll(d time.Duration, cond func() string) string {
	deadline := time.Now().Add(d)
	for {
		msg := cond()
		if msg == "" || time.Now().After(deadline) {
			return msg
		}
		time.Sleep(100 * time.Millisecond)
	}
}
