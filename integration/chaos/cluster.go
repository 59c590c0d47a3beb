package chaos

import (
	"context"
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
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/kubelet"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// subnet is the hosts' link, a bridge inside the switch namespace: no
// route leads anywhere else.
const subnet = "10.251.0"

// Agent is one `shoal agent` process in its own network namespace.
type Agent struct {
	Name    string
	IP      string
	ns      *testenv.NetNS
	dataDir string
	logPath string
	args    []string

	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// API is the agent's HTTP address.
func (a *Agent) API() string { return a.IP + ":7070" }

// Running reports whether the process is up (possibly paused).
func (a *Agent) Running() bool {
	if a.exited == nil {
		return false
	}
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// Cluster is five agents, the namespaces that hold them and a client
// namespace on the same link. The agents bind non-loopback addresses, so
// they run secure (issue 10): one bootstrap token for the initial agents,
// HTTPS with the CA and the admin token that the bootstrapping agent
// wrote into its data dir.
type Cluster struct {
	t      testing.TB
	bin    string
	sw     *testenv.Switch
	client *testenv.NetNS
	Agents []*Agent
	// HTTP is a client whose connections start in the client namespace;
	// it speaks TLS to the agents and sends the admin token.
	HTTP *http.Client
	// Creds are the cluster's CA and admin token.
	Creds   *testenv.Credentials
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	token   string // the bootstrap token of the initial agents
	initial int    // how many agents NewCluster started
}

// URL is the base URL of a's API.
func (c *Cluster) URL(a *Agent) string { return c.Creds.URL(a.API()) }

// BuildShoal compiles the shoal binary into dir.
func BuildShoal(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shoal-dev/shoal/cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("go build shoal: %v\n%s", err, out)
	}
	return bin
}

// dialError marks a failure to open a connection: nothing was sent.
type dialError struct{ err error }

func (e dialError) Error() string { return "dial: " + e.err.Error() }
func (e dialError) Unwrap() error { return e.err }

// NewCluster makes the namespaces and starts n agents (3 voters among
// them), and waits until they form one cluster with a leader.
func NewCluster(t testing.TB, bin string, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: bin, token: testenv.BootstrapToken(t, bin)}
	sw := testenv.NewSwitch(t)
	c.sw = sw
	c.client = testenv.NewNetNS(t)
	sw.Attach(t, c.client, "pc", subnet+".100")
	nsDial := kubelet.NetNSDialer(c.client.Path)
	c.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := nsDial(ctx, network, addr)
		if err != nil {
			return nil, dialError{err}
		}
		return conn, nil
	}
	for i := range n {
		c.Agents = append(c.Agents, c.newAgent(i+1))
	}
	c.initial = n
	// The first three --join each other only; the others --join all.
	founders := min(3, n)
	for i, a := range c.Agents {
		var join []string
		for j, o := range c.Agents {
			if o != a && (i >= founders || j < founders) {
				join = append(join, o.IP+":7946")
			}
		}
		a.args = agentArgs(a, join, c.token, "--bootstrap-expect", "3")
	}
	// Stop the agents before the namespaces go (cleanups run in reverse).
	t.Cleanup(c.stopAll)
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range c.Agents {
				t.Logf("%s log tail:\n%s", a.Name, testenv.Tail(a.logPath, 30))
			}
		}
	})
	// The three initial agents first, the others once those three hold
	// their certificates: they join the cluster they then see, with the
	// same bootstrap token. Started all at once, agents beyond
	// --bootstrap-expect can see a partial view and make a second cluster
	// identity: the agent that made the first one leaves the
	// bootstrap-token gossip (no longer a candidate) while its --join
	// address still counts as answered (agent/identity_bootstrap.go, even
	// after fbcdb2c). And since fbcdb2c an initial agent waits until every
	// --join address answered, hence the initial agents' shorter --join.
	var dirs []string
	for i, a := range c.Agents {
		if i == founders {
			testenv.WaitFor(t, 90*time.Second, "the initial agents' certificates", func() bool {
				for _, d := range dirs {
					if _, err := os.Stat(filepath.Join(d, "tls", "node.crt")); err != nil {
						return false
					}
				}
				return true
			})
			c.Creds = testenv.WaitCredentials(t, 30*time.Second, dirs...)
		}
		if err := c.Start(a); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, a.dataDir)
	}
	if c.Creds == nil {
		c.Creds = testenv.WaitCredentials(t, 90*time.Second, dirs...)
	}
	c.HTTP = &http.Client{Transport: c.Creds.Transport(&http.Transport{
		DialContext:         c.dial,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	})}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	c.WaitFormed(90 * time.Second)
	return c
}

// newAgent makes the namespace and data dir of agent number i (a<i>, at
// subnet.i on the switch).
func (c *Cluster) newAgent(i int) *Agent {
	a := &Agent{Name: fmt.Sprintf("a%d", i), IP: fmt.Sprintf("%s.%d", subnet, i)}
	a.ns = testenv.NewNetNS(c.t)
	c.sw.Attach(c.t, a.ns, fmt.Sprintf("p%d", i), a.IP)
	a.dataDir = c.t.TempDir()
	a.logPath = filepath.Join(a.dataDir, "agent.log")
	return a
}

// Add starts one more agent that joins the running cluster with token (a
// join token from GET /v1/cluster/tokens, not the bootstrap token), asking
// the initial agents' APIs for its certificate. It is stopped with the
// others.
func (c *Cluster) Add(token string) *Agent {
	c.t.Helper()
	a := c.newAgent(len(c.Agents) + 1)
	var join []string
	for _, o := range c.Agents[:c.initial] {
		join = append(join, o.IP+":7946")
	}
	a.args = agentArgs(a, join, token)
	c.Agents = append(c.Agents, a)
	if err := c.Start(a); err != nil {
		c.t.Fatal(err)
	}
	return a
}

// agentArgs are the flags of a's `shoal agent`, joining the gossip
// addresses join with token, extra flags, and those of
// SHOAL_CHAOS_AGENT_ARGS (space-separated, e.g. --raft-log-store=wal to
// check the other Raft log store under the same faults).
func agentArgs(a *Agent, join []string, token string, extra ...string) []string {
	args := []string{"agent", "--node-name", a.Name, "--data-dir", a.dataDir,
		"--http-addr", a.API(), "--raft-addr", a.IP + ":7071", "--bind", a.IP + ":7946",
		"--join", strings.Join(join, ","), "--token", token, "--voters", "3",
		"--pods=false"}
	args = append(args, extra...)
	return append(args, strings.Fields(os.Getenv("SHOAL_CHAOS_AGENT_ARGS"))...)
}

// Start runs the agent's process (again) with its data dir.
func (c *Cluster) Start(a *Agent) error {
	f, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	a.cmd = exec.Command("ip", append([]string{"netns", "exec", a.ns.Name, c.bin}, a.args...)...)
	a.cmd.Stdout, a.cmd.Stderr = f, f
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", a.Name, err)
	}
	a.paused = false
	done := make(chan struct{})
	a.exited = done
	cmd := a.cmd
	go func() { cmd.Wait(); close(done) }()
	return nil
}

// Kill SIGKILLs the agent and waits until it has exited.
func (c *Cluster) Kill(a *Agent) error {
	if !a.Running() {
		return nil
	}
	_ = syscall.Kill(a.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-a.exited:
		a.paused = false
		return nil
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s did not exit after SIGKILL", a.Name)
	}
}

// Pause stops (SIGSTOP) or continues (SIGCONT) the agent's process.
func (c *Cluster) Pause(a *Agent, stop bool) error {
	if !a.Running() {
		return fmt.Errorf("%s is not running", a.Name)
	}
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	a.paused = stop
	return syscall.Kill(a.cmd.Process.Pid, sig)
}

func (c *Cluster) stopAll() {
	for _, a := range c.Agents {
		if a.Running() {
			if a.paused {
				_ = syscall.Kill(a.cmd.Process.Pid, syscall.SIGCONT)
			}
			_ = syscall.Kill(a.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(15 * time.Second)
	for _, a := range c.Agents {
		if a.exited == nil {
			continue
		}
		select {
		case <-a.exited:
		case <-deadline:
			if err := c.Kill(a); err != nil {
				c.t.Error(err)
			}
		}
	}
	for _, a := range c.Agents {
		_ = c.Heal(a)
	}
}

// Cut drops every packet between a and the agents in others, inside a's
// namespace (input and output), leaving the clients' link alone.
func (c *Cluster) Cut(a *Agent, others []*Agent) error {
	var ips []string
	for _, o := range others {
		ips = append(ips, o.IP)
	}
	set := "{ " + strings.Join(ips, ", ") + " }"
	rules := fmt.Sprintf(`table inet shoal_chaos {
	chain in { type filter hook input priority -10; policy accept; ip saddr %s drop; }
	chain out { type filter hook output priority -10; policy accept; ip daddr %s drop; }
}
`, set, set)
	_ = c.Heal(a)
	cmd := exec.Command("ip", "netns", "exec", a.ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cut %s: %v: %s", a.Name, err, out)
	}
	return nil
}

// Heal removes a's partition rules, if any.
func (c *Cluster) Heal(a *Agent) error {
	out, err := exec.Command("ip", "netns", "exec", a.ns.Name, "nft", "delete", "table", "inet", "shoal_chaos").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("heal %s: %v: %s", a.Name, err, out)
	}
	return nil
}

// RaftInfo is the part of /v1/cluster/raft the schedule needs.
type RaftInfo struct {
	ID       string
	State    string
	LeaderID string
	Term     uint64
	Voters   []struct{ ID, Suffrage string }
}

func (c *Cluster) raft(ctx context.Context, a *Agent) (RaftInfo, error) {
	var info RaftInfo
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(a)+"/v1/cluster/raft", nil)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("%s: /v1/cluster/raft: %s", a.Name, resp.Status)
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

// Leader asks every running, unpaused agent and returns the leader that
// names itself leader with the highest term, and the voters it lists.
func (c *Cluster) Leader() (*Agent, []*Agent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var best RaftInfo
	for _, a := range c.Agents {
		if !a.Running() || a.paused {
			continue
		}
		info, err := c.raft(ctx, a)
		if err != nil || info.State != "Leader" {
			continue
		}
		if info.Term > best.Term {
			best = info
		}
	}
	if best.ID == "" {
		return nil, nil, errors.New("no agent says it leads")
	}
	var voters []*Agent
	for _, v := range best.Voters {
		if v.Suffrage == "Voter" {
			if a := c.byName(v.ID); a != nil {
				voters = append(voters, a)
			}
		}
	}
	return c.byName(best.ID), voters, nil
}

func (c *Cluster) byName(name string) *Agent {
	for _, a := range c.Agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// WaitFormed waits until one agent leads a configuration of three voters
// and every agent sees all the others alive.
func (c *Cluster) WaitFormed(timeout time.Duration) {
	c.t.Helper()
	testenv.WaitFor(c.t, timeout, "a leader with 3 voters and every agent alive in every view", func() bool {
		_, voters, err := c.Leader()
		if err != nil || len(voters) != 3 {
			return false
		}
		for _, a := range c.Agents {
			if !c.seesAll(a) {
				return false
			}
		}
		return true
	})
}

func (c *Cluster) seesAll(a *Agent) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(a)+"/v1/cluster/members", nil)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body struct {
		Members []struct{ Name, Status string }
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return false
	}
	alive := 0
	for _, m := range body.Members {
		if m.Status == "alive" {
			alive++
		}
	}
	return alive == len(c.Agents)
}
