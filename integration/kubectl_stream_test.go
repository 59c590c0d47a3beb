package integration

// Root test of the streaming subresources as the real kubectl speaks them
// (1.32 over WebSocket, and Debian's 1.20 over SPDY when installed, see
// kubectl120_test.go), against a 3-host cluster (cluster_hosts_test.go):
// logs and logs -f, with timestamps and since-time, exec with stdin, with
// a terminal (a pty) and with an exit code, attach (output, stdin, a
// terminal), and port-forward then an HTTP request through it. kubectl talks
// to h1's agent; the pods run on h2 and h3, so every stream is
// routed to the agent that runs the pod.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

const kubectlBin = "/usr/bin/kubectl"

// kubectlEnv runs the real kubectl against one agent with the cluster's
// CA and admin token.
type kubectlEnv struct {
	t    *testing.T
	bin  string
	tg   streamTarget
	args []string
	env  []string
}

// streamTarget is all the test needs of the cluster harness: where h1's
// agent is, with which credentials, how kubectl must be started to reach
// it, and how to dial what kubectl listens on (port-forward). The agents
// run inside each host's network namespace (integration/hosts), so
// kubectl runs there too (nsenter), and so does the port-forward dial.
type streamTarget struct {
	server, caFile, token string
	// wrap turns kubectl's command line into the one to run.
	wrap func(argv []string) []string
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func targetOf(th *threeHosts) streamTarget {
	h := th.hosts[0]
	return streamTarget{
		server: th.Creds.URL(h.API()), caFile: th.Creds.CAFile, token: th.Creds.Token,
		wrap: func(argv []string) []string {
			return append([]string{"nsenter", "--net=" + h.NetNSPath, "--"}, argv...)
		},
		dial: hosts.DialIn(h.NetNSPath),
	}
}

func newKubectlEnv(t *testing.T, tg streamTarget) *kubectlEnv {
	return newKubectlEnvBin(t, tg, kubectlBin)
}

// newKubectlEnvBin is newKubectlEnv with the kubectl at bin.
func newKubectlEnvBin(t *testing.T, tg streamTarget, bin string) *kubectlEnv {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s: %v", bin, err)
	}
	dir := t.TempDir()
	return &kubectlEnv{
		t:   t,
		bin: bin,
		tg:  tg,
		args: []string{"--server", tg.server, "--certificate-authority", tg.caFile,
			"--token", tg.token, "--cache-dir", filepath.Join(dir, "cache"), "--request-timeout", "0"},
		env: []string{"HOME=" + dir, "KUBECONFIG=" + filepath.Join(dir, "config"), "PATH=/usr/bin:/bin:/usr/sbin:/sbin"},
	}
}

func (k *kubectlEnv) cmd(ctx context.Context, args ...string) *exec.Cmd {
	argv := k.tg.wrap(append(append([]string{k.bin}, k.args...), args...))
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = k.env
	c.WaitDelay = 5 * time.Second
	return c
}

// run runs kubectl to its end with stdin and returns its output and error.
func (k *kubectlEnv) run(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := k.cmd(ctx, args...)
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = strings.NewReader(stdin), &out, &errb
	err := c.Run()
	return out.String(), errb.String(), err
}

// lockedBuffer collects a process's stderr while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLines starts kubectl and returns its stdout lines as they come; it
// is killed at cleanup.
func (k *kubectlEnv) startLines(args ...string) (<-chan string, *lockedBuffer) {
	ctx, cancel := context.WithCancel(context.Background())
	c := k.cmd(ctx, args...)
	errb := &lockedBuffer{}
	c.Stderr = errb
	out, err := c.StdoutPipe()
	if err != nil {
		k.t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(func() { cancel(); c.Wait() })
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines, errb
}

// waitLine reads lines until one matches re, within timeout.
func waitLine(t *testing.T, what string, lines <-chan string, errb *lockedBuffer, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: kubectl ended before a line matching %s; output %q, stderr %s", what, re, seen, errb)
			}
			seen = append(seen, l)
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: no line matching %s within %v; output %q", what, re, timeout, seen)
		}
	}
}

func TestKubectlStreamsRoot(t *testing.T) {
	th := startThreeHosts(t)
	h1 := th.hosts[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	mk := func(name, node string, c api.Container) {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}}
		p.Spec.NodeName = node
		c.Name, c.Image = name, th.image
		p.Spec.Containers = []api.Container{c}
		if _, err := h1.client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mk("web", "h2", api.Container{Args: []string{"echo", "hello-log", "serve", "--port", "8080"}})
	mk("ticker", "h3", api.Container{Args: []string{"tick", "200ms"}})
	names := []string{"web", "ticker"}
	// Per kubectl: a container reading its stdin to the end (closed after
	// the first attach), and one on a terminal.
	for _, v := range kubectlVersions {
		mk("reader-"+v.name, "h2", api.Container{Args: []string{"cat", "/dev/stdin"}, Stdin: true, StdinOnce: true})
		mk("tty-"+v.name, "h3", api.Container{Args: []string{"cat", "/dev/stdin"}, Stdin: true, TTY: true})
		names = append(names, "reader-"+v.name, "tty-"+v.name)
	}
	for _, name := range names {
		testenv.WaitFor(t, 3*time.Minute, name+" Running", func() bool {
			o, err := h1.client.Get(ctx, "Pod", "default", name)
			return err == nil && o.(*api.Pod).Status.Phase == api.PodRunning && o.(*api.Pod).Status.PodIP != ""
		})
	}
	for _, v := range kubectlVersions {
		t.Run(v.name, func(t *testing.T) {
			kubectlStreamCases(t, newKubectlEnvBin(t, targetOf(th), v.bin), v)
		})
	}
}

// kubectlVersion is one kubectl the stream tests run: modern ones (≥ 1.30)
// speak WebSocket first, older ones SPDY only.
type kubectlVersion struct {
	name, bin string
	modern    bool
}

var kubectlVersions = []kubectlVersion{{"v132", kubectlBin, true}, {"v120", kubectl120Bin, false}}

// kubectlStreamCases runs the stream subtests with one kubectl.
func kubectlStreamCases(t *testing.T, k *kubectlEnv, v kubectlVersion) {
	testenv.WaitFor(t, 60*time.Second, "web listening", func() bool {
		out, _, err := k.run("", "logs", "web")
		return err == nil && strings.Contains(out, "listening on :8080")
	})

	t.Run("logs", func(t *testing.T) {
		out, errs, err := k.run("", "logs", "web", "--tail", "1")
		if err != nil || out != "listening on :8080\n" {
			t.Fatalf("logs --tail 1: %q %v %s", out, err, errs)
		}
		out, errs, err = k.run("", "logs", "web", "--limit-bytes", "5")
		if err != nil || out != "hello" {
			t.Fatalf("logs --limit-bytes 5: %q %v %s", out, err, errs)
		}
		lines, errb := k.startLines("logs", "-f", "ticker")
		first := waitLine(t, "logs -f", lines, errb, regexp.MustCompile(`^tick (\d+)$`), 60*time.Second)
		// Lines logged after kubectl started keep coming.
		next := regexp.MustCompile(`^tick (\d+)$`)
		for range 3 {
			waitLine(t, "logs -f", lines, errb, next, 60*time.Second)
		}
		t.Logf("logs -f followed from %s", first[0])
	})

	if !v.modern {
		t.Run("basics", func(t *testing.T) { kubectl120Basics(t, k) })
	}

	t.Run("logs-timestamps", func(t *testing.T) {
		out, errs, err := k.run("", "logs", "web", "--timestamps", "--tail", "1")
		if err != nil || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z listening on :8080\n$`).MatchString(out) {
			t.Fatalf("logs --timestamps --tail 1: %q %v %s", out, err, errs)
		}
		// --since-time: only ticks logged after it, each stamped at or
		// after it.
		since := time.Now().UTC().Add(time.Second).Truncate(time.Second)
		testenv.WaitFor(t, 60*time.Second, "a tick after since", func() bool {
			out, _, err := k.run("", "logs", "ticker", "--timestamps", "--since-time", since.Format(time.RFC3339))
			return err == nil && strings.Contains(out, " tick ")
		})
		out, errs, err = k.run("", "logs", "ticker", "--timestamps", "--since-time", since.Format(time.RFC3339))
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			ts, _, _ := strings.Cut(l, " ")
			at, perr := time.Parse(time.RFC3339Nano, ts)
			if perr != nil || at.Before(since) {
				t.Fatalf("logs --since-time %v: line %q (%v); all %q %v %s", since, l, perr, out, err, errs)
			}
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, errs, err := k.run("", "exec", "web", "--", "/app", "echo", "from-exec", "echo-err", "to-stderr")
		if err != nil || out != "from-exec\n" || !strings.Contains(errs, "to-stderr") {
			t.Fatalf("exec: %q %q %v", out, errs, err)
		}
		_, errs, err = k.run("", "exec", "web", "--", "/app", "exit", "3")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("exec exit 3: %v %s", err, errs)
		}
		// -v=4: client-go logs the negotiated subprotocol.
		out, errs, err = k.run("piped stdin\nsecond line\n", "-v=4", "exec", "-i", "web", "--", "/app", "cat", "/dev/stdin")
		if err != nil || out != "piped stdin\nsecond line\n" {
			t.Fatalf("exec -i: %q %q %v", out, errs, err)
		}
		if v.modern && !strings.Contains(errs, "v5.channel.k8s.io") {
			t.Errorf("exec did not say it used v5.channel.k8s.io:\n%s", errs)
		}
	})

	t.Run("exec-tty", func(t *testing.T) {
		out, err := ttyExec(t, k, "tty-line\n\x04", "exec", "-it", "web", "--", "/app", "cat", "/dev/stdin")
		// The remote terminal echoes the line, then cat prints it: twice.
		if err != nil || strings.Count(out, "tty-line") < 2 {
			t.Fatalf("exec -it: %q %v", out, err)
		}
	})

	t.Run("attach", func(t *testing.T) {
		lines, errb := k.startLines("attach", "ticker")
		waitLine(t, "attach", lines, errb, regexp.MustCompile(`^tick \d+$`), 60*time.Second)
	})

	t.Run("attach-stdin", func(t *testing.T) {
		// stdinOnce: kubectl's end of input closes the container's stdin,
		// cat prints what it read, the session ends with the container.
		out, errs, err := k.run("typed into attach\n", "attach", "-i", "reader-"+v.name)
		if err != nil || !strings.Contains(out, "typed into attach\n") {
			t.Fatalf("attach -i: %q %q %v", out, errs, err)
		}
	})

	t.Run("attach-tty", func(t *testing.T) {
		out, err := ttyExec(t, k, "tty-attach\n\x04", "attach", "-it", "tty-"+v.name)
		// The container's terminal echoes the line, then cat prints it.
		if err != nil || strings.Count(out, "tty-attach") < 2 {
			t.Fatalf("attach -it: %q %v", out, err)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		// -v=4: client-go logs the WebSocket upgrade of its SPDY tunnel.
		lines, errb := k.startLines("-v=4", "port-forward", "pod/web", ":8080")
		m := waitLine(t, "port-forward", lines, errb, regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) -> 8080$`), 60*time.Second)
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: k.tg.dial}}
		for i := range 3 {
			resp, err := hc.Get("http://127.0.0.1:" + m[1] + "/healthz")
			if err != nil {
				t.Fatalf("request %d through port-forward: %v; stderr %s", i, err, errb)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok\n" {
				t.Fatalf("request %d through port-forward: %d %q", i, resp.StatusCode, b)
			}
		}
		if v.modern && !strings.Contains(errb.String(), "WebSocket") {
			t.Errorf("port-forward did not say it tunnelled through a WebSocket:\n%s", errb)
		}
	})
}

// ttyExec runs kubectl on a new pseudo-terminal (its controlling
// terminal, 33 rows by 101 columns), types input, and returns what the
// terminal showed once kubectl exits.
func ttyExec(t *testing.T, k *kubectlEnv, input string, args ...string) (string, error) {
	t.Helper()
	master, slave, err := openPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := k.cmd(ctx, args...)
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	defer slave.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&out, master) // ends with EIO once kubectl has exited
		close(read)
	}()
	// kubectl puts the terminal in raw mode before it connects; typed
	// before that, the ^D would end kubectl's own stdin. Type once echo
	// is off on the terminal.
	testenv.WaitFor(t, 60*time.Second, "kubectl sets the terminal raw", func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&unix.ECHO == 0
	})
	if _, err := io.WriteString(master, input); err != nil {
		t.Fatal(err)
	}
	err = c.Wait()
	slave.Close()
	select {
	case <-read:
	case <-time.After(30 * time.Second):
	}
	return out.String(), err
}

// openPTY opens a pseudo-terminal pair (Linux /dev/ptmx).
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}
