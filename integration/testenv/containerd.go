package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ContainerdBinary and CtrBinary are the daemon and its CLI (Debian's
// containerd package installs both).
var (
	ContainerdBinary = "/usr/bin/containerd"
	CtrBinary        = "/usr/bin/ctr"
)

// Containerd is a private containerd daemon with its own config, root, state
// and socket under one short temporary directory.
//
// Two daemons on one machine collide when they share a containerd namespace,
// the runc state root or the cgroup paths (PLATFORM.md): use Namespace,
// RuncRoot and CgroupParent, which are unique per daemon, when you create
// containers on it.
type Containerd struct {
	Dir          string // everything below lives here; removed at Stop
	Socket       string // absolute path of the gRPC socket
	Root         string // containerd --root (content, snapshots, metadata)
	State        string // containerd --state (shim bundles, sockets)
	LogPath      string // the daemon's stdout and stderr
	Namespace    string // suggested containerd namespace, unique per daemon
	RuncRoot     string // suggested runc state root (runc options Root)
	CgroupParent string // suggested cgroup parent, e.g. /shoal-test-1a2b3c4d
	PID          int

	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	stopOnce sync.Once
	stopErr  error
}

// StartContainerd starts a private containerd and stops it, kills what it
// left running and removes its directories at test cleanup. It skips the
// test when not root or when containerd is not installed.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	RequireRoot(t)
	if _, err := os.Stat(ContainerdBinary); err != nil {
		t.Skipf("skipping: %s not installed (apt-get install containerd runc)", ContainerdBinary)
	}
	c, err := LaunchContainerd()
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log tail (%s):\n%s", c.LogPath, Tail(c.LogPath, 40))
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	return c
}

// LaunchContainerd is StartContainerd for TestMain, where no testing.TB
// exists: the caller must call Stop.
func LaunchContainerd() (*Containerd, error) {
	// A short directory: unix socket paths are limited to 108 bytes, and
	// t.TempDir names grow with the test name.
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		return nil, err
	}
	suffix := randomSuffix(8)
	c := &Containerd{
		Dir:          dir,
		Socket:       filepath.Join(dir, "c.sock"),
		Root:         filepath.Join(dir, "root"),
		State:        filepath.Join(dir, "state"),
		LogPath:      filepath.Join(dir, "containerd.log"),
		Namespace:    "shoal-test-" + suffix,
		RuncRoot:     filepath.Join(dir, "runc"),
		CgroupParent: "/shoal-test-" + suffix,
		exited:       make(chan struct{}),
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
`, c.Root, c.State, c.Socket, c.Socket+".ttrpc")
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logFile, err := os.Create(c.LogPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(ContainerdBinary, "--config", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a ^C on the test does not hit it first and
	// the cleanup still runs in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.cmd, c.PID = cmd, cmd.Process.Pid
	go func() {
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := c.waitReady(30 * time.Second); err != nil {
		log := Tail(c.LogPath, 30)
		c.Stop()
		return nil, fmt.Errorf("%w\ncontainerd log tail:\n%s", err, log)
	}
	return c, nil
}

// waitReady waits until the daemon accepts connections and answers a
// version request, or exits, or the deadline passes.
func (c *Containerd) waitReady(timeout time.Duration) error {
	var last error
	ok := waitUntil(timeout, func() bool {
		select {
		case <-c.exited:
			last = fmt.Errorf("containerd exited at start: %v", c.exitErr)
			return true
		default:
		}
		conn, err := net.Dial("unix", c.Socket)
		if err != nil {
			last = err
			return false
		}
		conn.Close()
		out, err := exec.Command(CtrBinary, "--address", c.Socket, "version").CombinedOutput()
		if err != nil {
			last = fmt.Errorf("ctr version: %v: %s", err, bytes.TrimSpace(out))
			return false
		}
		last = nil
		return true
	})
	if !ok {
		return fmt.Errorf("containerd not ready after %v: %v", timeout, last)
	}
	return last
}

// Ctr runs the ctr CLI against this daemon in its namespace and returns the
// combined output.
func (c *Containerd) Ctr(args ...string) (string, error) {
	full := append([]string{"--address", c.Socket, "--namespace", c.Namespace}, args...)
	out, err := exec.Command(CtrBinary, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Exited is closed when the daemon process has exited.
func (c *Containerd) Exited() <-chan struct{} { return c.exited }

// Stop kills the containers and shims the daemon left, stops the daemon
// (SIGTERM, then SIGKILL after 10 s), unmounts what is mounted below Dir,
// removes the cgroups below CgroupParent and removes Dir. Safe to call more
// than once.
func (c *Containerd) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Containerd) stop() error {
	var errs []error
	killShims(c.Socket)
	if c.cmd != nil {
		select {
		case <-c.exited:
		default:
			_ = syscall.Kill(c.PID, syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(c.PID, syscall.SIGKILL)
				<-c.exited
			}
		}
	}
	// The daemon may have started a shim between the first sweep and its exit.
	killShims(c.Socket)
	if err := UnmountBelow(c.Dir); err != nil {
		errs = append(errs, err)
	}
	removeCgroups(c.CgroupParent)
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Restart stops the daemon process (SIGTERM, as a package upgrade would) and
// starts it again on the same directories and socket, leaving shims and
// containers running. It waits until the daemon answers again.
func (c *Containerd) Restart() error {
	select {
	case <-c.exited:
	default:
		_ = syscall.Kill(c.PID, syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(c.PID, syscall.SIGKILL)
			<-c.exited
		}
	}
	logFile, err := os.OpenFile(c.LogPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(ContainerdBinary, "--config", filepath.Join(c.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	c.cmd, c.PID, c.exited = cmd, cmd.Process.Pid, exited
	go func() {
		c.exitErr = cmd.Wait()
		close(exited)
	}()
	return c.waitReady(30 * time.Second)
}

// KillShims is killShims for a daemon this process did not start (the
// leftover of a crashed run whose socket path is known).
func KillShims(socket string) { killShims(socket) }

// killShims SIGKILLs every process below a containerd shim started for the
// daemon at socket (the containers), then the shims, and waits (bounded)
// until they are gone.
func killShims(socket string) {
	procs := readProcs()
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	var shims, below []int
	for pid, p := range procs {
		if !strings.Contains(p.cmdline[0], "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(p.cmdline); i++ {
			if p.cmdline[i] == "-address" && p.cmdline[i+1] == socket {
				shims = append(shims, pid)
				break
			}
		}
	}
	var walk func(int)
	walk = func(pid int) {
		for _, ch := range children[pid] {
			below = append(below, ch)
			walk(ch)
		}
	}
	for _, s := range shims {
		walk(s)
	}
	for _, pid := range below {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range shims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	all := append(below, shims...)
	waitUntil(5*time.Second, func() bool {
		for _, pid := range all {
			// A zombie of a dead parent is reaped by init; count it as gone.
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !isZombie(st) {
				return false
			}
		}
		return true
	})
}

type procInfo struct {
	ppid    int
	cmdline []string
}

func readProcs() map[int]procInfo {
	out := map[int]procInfo{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: fields start after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		out[pid] = procInfo{ppid: ppid, cmdline: args}
	}
	return out
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// UnmountBelow lazily unmounts every mount point at or below dir, deepest
// first (pod network namespaces and volumes an agent left under its state
// dir, a containerd's snapshots).
func UnmountBelow(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMount(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes the (empty) cgroup directories named parent in every
// mounted hierarchy, children first. Best effort.
func removeCgroups(parent string) {
	if parent == "" || parent == "/" {
		return
	}
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		top := filepath.Join(h, parent)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(dirs[i])
		}
	}
}

// Tail is the last lines of the file at path (a log), or the error reading it.
func Tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// CtrPull pulls ref (from a plain-HTTP registry) into the daemon's namespace
// with the ctr CLI.
func (c *Containerd) CtrPull(ref string) error {
	_, err := c.Ctr("images", "pull", "--plain-http", ref)
	return err
}

// CtrRun runs `ctr run --rm` of image as container id with this daemon's runc
// root and cgroup parent, waits for it to exit and returns its output. It is
// the raw baseline the runtime's start latency is compared with.
func (c *Containerd) CtrRun(image, id string, args ...string) (string, error) {
	full := []string{"run", "--rm", "--runc-root", c.RuncRoot, "--cgroup", c.CgroupParent + "/" + id, image, id}
	if len(args) > 0 {
		full = append(full, append([]string{"/app"}, args...)...)
	}
	return c.Ctr(full...)
}
