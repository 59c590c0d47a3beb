package hosts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/integration/testenv"
)

const sigterm = syscall.SIGTERM

// Host is one simulated machine: a network namespace on the switch, a
// private containerd, a directory and a `shoal agent` inside the namespace.
type Host struct {
	Name      string // h1, h2, ...: its node name
	Zone      string // a, b, c, ... (see Config.Zones)
	IP        string // on eth0, its link to the switch
	NetNS     string // the namespace's name, e.g. shoal-t-1a2b3c-h1
	NetNSPath string // /run/netns/<NetNS>: --pod-netns
	Port      string // its port on the switch bridge (h1, ...)
	Dir       string // the host's own directory
	DataDir   string // the agent's --data-dir (Dir/data)
	LogPath   string // the agent's stdout and stderr (Dir/agent.log)
	Ctrd      *testenv.Containerd

	c        *Cluster
	args     []string
	regClose func()

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	dead   bool // KillHost: its containerd is gone for good
}

// API is the agent's API address, host:port.
func (h *Host) API() string { return h.IP + ":7070" }

// Args are the agent's command line (without the binary).
func (h *Host) Args() []string { return append([]string(nil), h.args...) }

// newHost makes host number len(hosts)+1: its namespace on the switch,
// its directory, containerd and registry listener. Its agent is not
// started.
func (c *Cluster) newHost() (*Host, error) {
	c.mu.Lock()
	i := len(c.hosts) + 1
	h := &Host{c: c, Name: fmt.Sprintf("h%d", i), Zone: string(rune('a' + (i-1)%c.cfg.Zones)),
		IP: fmt.Sprintf("%s.%d", c.cfg.Subnet, i), NetNS: fmt.Sprintf("%s-h%d", c.cfg.Name, i), Port: fmt.Sprintf("h%d", i)}
	c.hosts = append(c.hosts, h)
	c.mu.Unlock()
	if i > MaxHosts {
		return nil, fmt.Errorf("hosts: at most %d hosts", MaxHosts)
	}
	h.NetNSPath = filepath.Join("/run/netns", h.NetNS)
	h.Dir = filepath.Join(c.cfg.Dir, h.Name)
	h.DataDir = filepath.Join(h.Dir, "data")
	h.LogPath = filepath.Join(h.Dir, "agent.log")
	if err := os.MkdirAll(h.DataDir, 0o700); err != nil {
		return nil, err
	}
	if out, err := exec.Command("ip", "netns", "add", h.NetNS).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", h.NetNS, err, out)
	}
	if err := ip("-n", h.NetNS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	if err := attach(c.Switch, h.NetNS, h.Port, h.IP); err != nil {
		return nil, err
	}
	ctrd, err := testenv.LaunchContainerd()
	if err != nil {
		return nil, fmt.Errorf("%s: containerd: %w", h.Name, err)
	}
	h.Ctrd = ctrd
	// For Cleanup after a crash of this process.
	if err := os.WriteFile(filepath.Join(h.Dir, "containerd"), []byte(fmt.Sprintf("%d %s\n", ctrd.PID, ctrd.Dir)), 0o644); err != nil {
		return nil, err
	}
	l, err := listenIn(h.NetNSPath, fmt.Sprintf("127.0.0.1:%d", c.cfg.RegistryPort))
	if err != nil {
		return nil, fmt.Errorf("%s: registry listener: %w", h.Name, err)
	}
	srv := newServer(c.Registry.Handler())
	go srv.Serve(l)
	h.regClose = func() { srv.Close() }
	c.cfg.Logf("host %s: netns %s, %s on the switch, zone %s, containerd %s", h.Name, h.NetNS, h.IP, h.Zone, ctrd.Socket)
	return h, nil
}

// netnsArgs are the agent flags only a simulated host needs: its private
// containerd, its own namespace for pods, the registry on its loopback.
func (h *Host) netnsArgs(registryPort int) []string {
	return []string{"--containerd-socket", h.Ctrd.Socket, "--containerd-namespace", h.Ctrd.Namespace,
		"--runc-root", h.Ctrd.RuncRoot, "--cgroup-parent", h.Ctrd.CgroupParent,
		"--pod-netns", h.NetNSPath, "--insecure-registry", fmt.Sprintf("127.0.0.1:%d", registryPort)}
}

// start runs the agent inside the host's namespace (nsenter --net: the
// mount namespace stays the machine's, so containerd sees the pod
// namespaces the agent bind-mounts).
func (h *Host) start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dead {
		return fmt.Errorf("%s: the host was killed (KillHost) and cannot start again", h.Name)
	}
	if h.cmd != nil && !closed(h.exited) {
		return fmt.Errorf("%s: the agent is already running", h.Name)
	}
	f, err := os.OpenFile(h.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// The binary provision.sh installed.
	bin := filepath.Join(h.Dir, "usr/local/bin/shoal")
	cmd := exec.Command("nsenter", append([]string{"--net=" + h.NetNSPath, "--", bin}, h.args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a ^C on the parent does not reach it before
	// Close runs in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start agent: %w", h.Name, err)
	}
	done := make(chan struct{})
	h.cmd, h.exited = cmd, done
	go func() { cmd.Wait(); close(done) }()
	_ = os.WriteFile(filepath.Join(h.Dir, "agent.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	return nil
}

func closed(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether the agent process is up.
func (h *Host) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmd != nil && !closed(h.exited)
}

// PID is the agent's process id, 0 if it does not run.
func (h *Host) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil || closed(h.exited) {
		return 0
	}
	return h.cmd.Process.Pid
}

func (h *Host) signal(sig syscall.Signal) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd != nil && !closed(h.exited) {
		_ = syscall.Kill(h.cmd.Process.Pid, sig)
	}
}

// waitExit waits up to timeout for the agent to exit; true if it is not
// running.
func (h *Host) waitExit(timeout time.Duration) bool {
	h.mu.Lock()
	ch := h.exited
	h.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	case <-time.After(max(timeout, 0)):
		return false
	}
}

// kill SIGKILLs the agent and waits (15 s at most) until it has exited.
func (h *Host) kill() error {
	h.signal(syscall.SIGKILL)
	if !h.waitExit(15 * time.Second) {
		return fmt.Errorf("%s: the agent did not exit after SIGKILL", h.Name)
	}
	return nil
}

// teardown stops the agent's leftovers, the containerd and the registry
// listener, and deletes the namespace.
func (h *Host) teardown() error {
	var errs []error
	if err := testenv.UnmountBelow(h.DataDir); err != nil {
		errs = append(errs, err)
	}
	if h.Ctrd != nil {
		if err := h.Ctrd.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if h.regClose != nil {
		h.regClose()
	}
	if err := deleteNS(h.NetNS); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StartAgent starts h's agent again (after Stop, Kill or a crash) on its
// data dir, with the same flags.
func (c *Cluster) StartAgent(h *Host) error { return h.start() }

// StopAgent stops h's agent gracefully (SIGTERM; SIGKILL after timeout).
func (c *Cluster) StopAgent(h *Host, timeout time.Duration) error {
	h.signal(sigterm)
	if h.waitExit(timeout) {
		return nil
	}
	return h.kill()
}

// Kill SIGKILLs h's agent and waits until it has exited; its containerd
// and containers keep running, as after an agent crash.
func (c *Cluster) Kill(h *Host) error { return h.kill() }

// RestartAgent kills h's agent (SIGKILL) and starts it again.
func (c *Cluster) RestartAgent(h *Host) error {
	if err := h.kill(); err != nil {
		return err
	}
	return h.start()
}

// KillHost kills the whole machine: the agent (SIGKILL), its containers
// and containerd (SIGKILL), and unmounts its pods' namespaces. The host
// stays on the switch, but cannot be started again.
func (c *Cluster) KillHost(h *Host) error {
	if err := h.kill(); err != nil {
		return err
	}
	h.mu.Lock()
	h.dead = true
	h.mu.Unlock()
	testenv.KillShims(h.Ctrd.Socket)
	_ = syscall.Kill(h.Ctrd.PID, syscall.SIGKILL)
	select {
	case <-h.Ctrd.Exited():
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s: containerd did not exit after SIGKILL", h.Name)
	}
	return testenv.UnmountBelow(h.DataDir)
}

// Cut drops every frame to and from h at the switch (the host's links
// stay up): it can reach no other host, and none reaches it.
func (c *Cluster) Cut(h *Host) error { return cut(c.Switch, h.Port) }

// Heal undoes Cut.
func (c *Cluster) Heal(h *Host) error { return heal(c.Switch, h.Port) }

// AddHost makes one more host and starts its agent joining the cluster
// with a voter join token (asked of the first running host).
func (c *Cluster) AddHost(ctx context.Context) (*Host, error) {
	running := c.Running()
	if len(running) == 0 || c.Creds == nil {
		return nil, errors.New("hosts: AddHost: no running host to join")
	}
	jt, err := c.Creds.JoinTokens(ctx, c.authedHTTP(running[0], 10*time.Second), running[0].API())
	if err != nil {
		return nil, err
	}
	h, err := c.newHost()
	if err != nil {
		return nil, err
	}
	founders := c.Hosts()[:c.cfg.BootstrapExpect]
	args, err := c.agentArgs(h, founders, jt.Voter, 0)
	if err != nil {
		return nil, err
	}
	h.args = args
	if err := h.start(); err != nil {
		return nil, err
	}
	return h, nil
}
