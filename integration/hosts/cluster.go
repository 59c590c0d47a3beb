package hosts

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// Limits of a Config.
const (
	MaxHosts   = 20
	maxNameLen = 20 // namespace names <Name>-sw, <Name>-h20
)

// Config says what cluster New makes.
type Config struct {
	// Bin is the shoal binary (required).
	Bin string
	// Hosts is how many hosts start at New (1..MaxHosts); AddHost adds more.
	Hosts int
	// Name prefixes the namespaces: <Name>-sw is the switch, <Name>-h1
	// the first host. Namespaces of that name left by a crashed run are
	// removed first (see Cleanup). Default "shoal-t-" and 6 random hex
	// characters. Letters, digits and '-' only.
	Name string
	// Dir holds one directory per host (h1, h2, ...). Default: a new
	// temporary directory, removed at Close; a Dir given is emptied of
	// host directories at New and left at Close (logs stay readable).
	Dir string
	// Subnet is the switch link's first three octets (default "10.250.0"):
	// host i is Subnet.i.
	Subnet string
	// BootstrapExpect is the agents' --bootstrap-expect (default
	// min(3, Hosts)); the first BootstrapExpect hosts are the founders.
	BootstrapExpect int
	// Zones is how many failure zones the hosts are spread over: host i
	// is in zone 'a'+(i-1)%Zones (default and at most 26: one per host).
	Zones int
	// AgentArgs are extra agent flags for every host (e.g. timings). They
	// go through provision.sh into /etc/default/shoal, so no value may
	// hold whitespace or quotes.
	AgentArgs []string
	// RegistryPort is the port of the image registry on 127.0.0.1 in
	// every host namespace. Default: the port it has in the root
	// namespace, so that images pushed by PushImage resolve everywhere.
	RegistryPort int
	// FormTimeout bounds New's wait for one cluster of Ready nodes
	// (default 3 minutes: the machine may be loaded).
	FormTimeout time.Duration
	// Logf receives progress lines (default: none).
	Logf func(format string, args ...any)
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]*$`)

// Validate fills defaults and checks the fields, naming the bad one.
func (c *Config) Validate() error {
	if c.Bin == "" {
		return errors.New("hosts: Config.Bin: the shoal binary is required")
	}
	if _, err := os.Stat(c.Bin); err != nil {
		return fmt.Errorf("hosts: Config.Bin: %w", err)
	}
	if c.Hosts == 0 {
		c.Hosts = 3
	}
	if c.Hosts < 1 || c.Hosts > MaxHosts {
		return fmt.Errorf("hosts: Config.Hosts %d: must be 1..%d", c.Hosts, MaxHosts)
	}
	if c.Name == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		c.Name = "shoal-t-" + hex.EncodeToString(b)
	}
	if len(c.Name) > maxNameLen || !nameRE.MatchString(c.Name) {
		return fmt.Errorf("hosts: Config.Name %q: letters, digits and '-', at most %d characters", c.Name, maxNameLen)
	}
	if c.Subnet == "" {
		c.Subnet = "10.250.0"
	}
	if a := net.ParseIP(c.Subnet + ".1"); a == nil || a.To4() == nil || strings.Count(c.Subnet, ".") != 2 {
		return fmt.Errorf("hosts: Config.Subnet %q: three octets, e.g. 10.250.0", c.Subnet)
	}
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = min(3, c.Hosts)
	}
	if c.BootstrapExpect < 1 || c.BootstrapExpect > c.Hosts {
		return fmt.Errorf("hosts: Config.BootstrapExpect %d: must be 1..Hosts (%d)", c.BootstrapExpect, c.Hosts)
	}
	for _, a := range c.AgentArgs {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			return fmt.Errorf("hosts: Config.AgentArgs %q: no empty value, whitespace, quotes, '$' or '\\' (it goes into /etc/default/shoal)", a)
		}
	}
	if c.Zones == 0 {
		c.Zones = 26
	}
	if c.Zones < 1 || c.Zones > 26 {
		return fmt.Errorf("hosts: Config.Zones %d: must be 1..26", c.Zones)
	}
	if c.RegistryPort < 0 || c.RegistryPort > 65535 {
		return fmt.Errorf("hosts: Config.RegistryPort %d: must be 0..65535", c.RegistryPort)
	}
	if c.FormTimeout == 0 {
		c.FormTimeout = 3 * time.Minute
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// Cluster is the simulated hosts, their switch and their registry.
type Cluster struct {
	cfg      Config
	Bin      string
	Switch   string // the switch namespace's name
	Registry *testenv.Registry
	Creds    *testenv.Credentials // CA and admin token, once formed
	Start    time.Time            // when New began

	token      string // bootstrap token of the founders
	tempDir    bool
	rootBefore string

	mu    sync.Mutex
	hosts []*Host
}

// New makes the switch, cfg.Hosts hosts and their agents, and returns
// once every agent sees one cluster of them all alive and every Node is
// Ready. On error, what was made is removed.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("hosts: needs root (network namespaces, containerd)")
	}
	c := &Cluster{cfg: cfg, Bin: cfg.Bin, Switch: cfg.Name + "-sw", Start: time.Now()}
	before, err := RootState()
	if err != nil {
		return nil, err
	}
	c.rootBefore = before
	if err := c.build(); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func (c *Cluster) build() error {
	cfg := &c.cfg
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "shoal-hosts-")
		if err != nil {
			return err
		}
		cfg.Dir, c.tempDir = d, true
	}
	if err := Cleanup(cfg.Name, cfg.Dir); err != nil {
		return fmt.Errorf("hosts: removing a leftover run: %w", err)
	}
	tok, err := testenv.NewBootstrapToken(c.Bin)
	if err != nil {
		return err
	}
	c.token = tok
	c.Registry = testenv.NewRegistry()
	if cfg.RegistryPort == 0 {
		_, p, _ := net.SplitHostPort(c.Registry.Addr())
		cfg.RegistryPort, _ = strconv.Atoi(p)
	}
	if _, err := makeSwitch(c.Switch); err != nil {
		return err
	}
	cfg.Logf("switch %s: bridge br0, hosts on %s.0/24", c.Switch, cfg.Subnet)
	for range cfg.Hosts {
		if _, err := c.newHost(); err != nil {
			return err
		}
	}
	founders := c.hosts[:cfg.BootstrapExpect]
	for _, h := range founders {
		args, err := c.agentArgs(h, founders, c.token, cfg.BootstrapExpect)
		if err != nil {
			return err
		}
		h.args = args
		if err := h.start(); err != nil {
			return err
		}
	}
	var dirs []string
	for _, h := range founders {
		dirs = append(dirs, h.DataDir)
	}
	// Hosts beyond the founders start once the founders hold their
	// certificates, with the same token: started together, an agent
	// beyond --bootstrap-expect could see a partial view and make a
	// second cluster identity.
	if err := c.waitFor(cfg.FormTimeout, "the founders' certificates and the admin credentials", func() bool {
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "tls", "node.crt")); err != nil {
				return false
			}
		}
		creds, err := testenv.ReadCredentials(dirs...)
		c.Creds = creds
		return err == nil
	}); err != nil {
		return err
	}
	for _, h := range c.hosts[cfg.BootstrapExpect:] {
		args, err := c.agentArgs(h, founders, c.token, 0)
		if err != nil {
			return err
		}
		h.args = args
		if err := h.start(); err != nil {
			return err
		}
	}
	return c.WaitFormed(cfg.FormTimeout)
}

// ProvisionScript is provision.sh, the script a Vagrant VM runs in
// systemd mode; the harness runs it in netns mode for each host.
//
//go:embed provision.sh
var ProvisionScript []byte

// agentArgs provisions h with provision.sh (netns mode, below h.Dir: its
// /etc/default/shoal and shoal-agent.service, the binary in
// usr/local/bin) and returns the agent's command line: the flags the
// script wrote, then the ones only a simulated host needs (its
// containerd, its namespace for pods, the registry on its loopback).
func (c *Cluster) agentArgs(h *Host, founders []*Host, token string, expect int) ([]string, error) {
	script := filepath.Join(c.cfg.Dir, "provision.sh")
	if err := os.WriteFile(script, ProvisionScript, 0o755); err != nil {
		return nil, err
	}
	var join []string
	for _, o := range founders {
		join = append(join, o.IP)
	}
	args := []string{script, "--mode", "netns", "--root", h.Dir, "--no-install", "--bin", c.Bin,
		"--node-name", h.Name, "--ip", h.IP, "--zone", h.Zone, "--data-dir", h.DataDir,
		"--token", token, "--join", strings.Join(join, ",")}
	if expect > 0 {
		args = append(args, "--bootstrap-expect", strconv.Itoa(expect))
	}
	if len(c.cfg.AgentArgs) > 0 {
		args = append(args, "--extra", strings.Join(c.cfg.AgentArgs, " "))
	}
	if out, err := exec.Command("bash", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: provision.sh: %w: %s", h.Name, err, strings.TrimSpace(string(out)))
	}
	flags, err := ReadAgentArgs(filepath.Join(h.Dir, "etc/default/shoal"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	return append(append([]string{"agent"}, flags...), h.netnsArgs(c.cfg.RegistryPort)...), nil
}

// ReadAgentArgs reads SHOAL_AGENT_ARGS from an /etc/default/shoal file
// and splits it on whitespace, as systemd does for $SHOAL_AGENT_ARGS.
func ReadAgentArgs(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "SHOAL_AGENT_ARGS=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		return strings.Fields(v), nil
	}
	return nil, fmt.Errorf("%s: no SHOAL_AGENT_ARGS line", path)
}

// Hosts are the hosts, in order of creation.
func (c *Cluster) Hosts() []*Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Host(nil), c.hosts...)
}

// Host is the host of that name (h1, h2, ...), or nil.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts() {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Config is the cluster's configuration, defaults filled.
func (c *Cluster) Config() Config { return c.cfg }

// waitFor polls cond (every 100 ms) until it holds or timeout passes.
func (c *Cluster) waitFor(timeout time.Duration, what string, cond func() bool) error {
	if !WaitUntil(timeout, cond) {
		return fmt.Errorf("hosts: timed out after %v waiting for %s", timeout, what)
	}
	return nil
}

// WaitUntil polls cond every 100 ms until it holds (true) or timeout
// passes (false).
func WaitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond) // poll interval of a condition with a deadline
	}
}

// WaitFormed waits until every running agent sees every running host
// alive in one cluster, and every running host's Node is Ready with a pod
// CIDR and its switch address as InternalIP.
func (c *Cluster) WaitFormed(timeout time.Duration) error {
	var last string
	err := c.waitFor(timeout, "one cluster of every running host, Ready", func() bool {
		last = c.formed()
		return last == ""
	})
	if err != nil {
		return fmt.Errorf("%w: %s", err, last)
	}
	c.cfg.Logf("cluster of %d formed after %v", len(c.Running()), time.Since(c.Start).Round(time.Millisecond))
	return nil
}

// formed is "" when WaitFormed's condition holds, else what is missing.
func (c *Cluster) formed() string {
	running := c.Running()
	if len(running) == 0 {
		return "no agent runs"
	}
	if c.Creds == nil {
		return "no credentials yet"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, h := range running {
		ms, err := c.Client(h).Members(ctx)
		if err != nil {
			return h.Name + ": members: " + err.Error()
		}
		alive := 0
		for _, m := range ms {
			if m.ClusterID == "" || m.ClusterID != ms[0].ClusterID {
				return h.Name + " sees two cluster ids"
			}
			if m.Status == "alive" {
				alive++
			}
		}
		if alive < len(running) {
			return fmt.Sprintf("%s sees %d alive of %d", h.Name, alive, len(running))
		}
	}
	objs, _, err := c.Client(running[0]).List(ctx, "Node", "", api.ListOptions{})
	if err != nil {
		return "nodes: " + err.Error()
	}
	ready := map[string]bool{}
	for _, o := range objs {
		n := o.(*api.Node)
		cd := api.FindCondition(n.Status.Conditions, api.NodeReady)
		if cd != nil && cd.Status == api.ConditionTrue && n.Spec.PodCIDR != "" {
			ready[n.Name] = true
		}
	}
	for _, h := range running {
		if !ready[h.Name] {
			return "node " + h.Name + " not Ready with a pod CIDR"
		}
	}
	return ""
}

// Running are the hosts whose agent runs.
func (c *Cluster) Running() []*Host {
	var out []*Host
	for _, h := range c.Hosts() {
		if h.Running() {
			out = append(out, h)
		}
	}
	return out
}

// PushImage builds program (Go source of a dependency-free package main,
// see testenv.BuildAndPush) into repo:tag and returns the reference the
// hosts pull it by: 127.0.0.1:RegistryPort/repo:tag.
func (c *Cluster) PushImage(repo, tag, program string) (string, error) {
	if _, err := testenv.BuildAndPush(c.Registry.Addr(), repo, tag, program); err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d/%s:%s", c.cfg.RegistryPort, repo, tag), nil
}

// TestImage pushes testenv.TestProgram as shoal/testprog:v1.
func (c *Cluster) TestImage() (string, error) {
	return c.PushImage("shoal/testprog", "v1", testenv.TestProgram)
}

// Close stops every agent (SIGTERM, SIGKILL 15 s later), unmounts their
// pod namespaces, stops the containerds and what they run, deletes the
// namespaces and the registry, and then checks that the root network
// namespace is as New found it. Safe to call more than once.
func (c *Cluster) Close() error {
	var errs []error
	hosts := c.Hosts()
	for _, h := range hosts {
		h.signal(sigterm)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, h := range hosts {
		if !h.waitExit(time.Until(deadline)) {
			c.cfg.Logf("%s: agent still running 15 s after SIGTERM; killing it", h.Name)
			if err := h.kill(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, h := range hosts {
		if err := h.teardown(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
		}
	}
	if err := deleteNS(c.Switch); err != nil {
		errs = append(errs, err)
	}
	if c.Registry != nil {
		c.Registry.Close()
		c.Registry = nil
	}
	if c.tempDir {
		if err := os.RemoveAll(c.cfg.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	if c.rootBefore != "" {
		after, err := RootState()
		if err != nil {
			errs = append(errs, err)
		} else if after != c.rootBefore {
			errs = append(errs, fmt.Errorf("hosts: the root network namespace changed:\nbefore:\n%s\nafter:\n%s", c.rootBefore, after))
		}
	}
	return errors.Join(errs...)
}

// Cleanup removes what a run named name left with its hosts under dir (a
// run that crashed or was killed): the processes in its namespaces, the
// containers of its containerds, its mounts under dir, the namespaces.
// Nothing else is touched. Host directories under dir are removed.
func Cleanup(name, dir string) error {
	var errs []error
	hostDirs, _ := filepath.Glob(filepath.Join(dir, "h[0-9]*"))
	for i := 1; i <= MaxHosts+10; i++ {
		if err := deleteNS(fmt.Sprintf("%s-h%d", name, i)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteNS(name + "-sw"); err != nil {
		errs = append(errs, err)
	}
	for _, hd := range hostDirs {
		// The host's containerd: "PID DIR" (its pid may be stale).
		b, err := os.ReadFile(filepath.Join(hd, "containerd"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 || !strings.HasPrefix(f[1], os.TempDir()) {
			continue
		}
		testenv.KillShims(filepath.Join(f[1], "c.sock"))
		if pid, err := strconv.Atoi(f[0]); err == nil && pid > 1 && isContainerd(pid) {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
		if err := testenv.UnmountBelow(f[1]); err != nil {
			errs = append(errs, err)
		}
		_ = os.RemoveAll(f[1])
	}
	if dir != "" {
		if err := testenv.UnmountBelow(dir); err != nil {
			errs = append(errs, err)
		}
		for _, hd := range hostDirs {
			if err := os.RemoveAll(hd); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// isContainerd reports whether pid runs containerd (a pid file may be
// stale and the pid reused).
func isContainerd(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.HasPrefix(string(b), testenv.ContainerdBinary)
}

// httpClient is an http.Client whose connections start in the namespace
// at path.
func httpClient(path string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: DialIn(path), DisableKeepAlives: true}}
}
