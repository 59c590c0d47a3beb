package integration

// The fault scenarios of issue 12 on the multi-host harness (package
// hosts). Each scenario is its own test function; they share clusters to
// save the minute a cluster takes to form on a loaded machine: one of
// three hosts for scenarios 1-8 (the files scenario_1 and scenario_2 run
// in the order that leaves it usable: the host killed for good comes
// last), one of five hosts for 1b and 9 (scenario_3). A scenario starts
// with a health check of the shared cluster (one cluster of the running
// hosts, a leader, writes accepted through every agent) and starts a new
// cluster if the previous scenario left it unusable; it ends with the
// root-namespace check, so that a change is pinned on the scenario that
// made it. TestMain closes the clusters and prints the figures.
//
// A scenario that measures prints `FIGURE <name> <value> <target>`;
// with SHOAL_FIGURES_OUT set (make integ does) the lines are also
// appended to that file, which make integ prints as a table at the end.
//
// To look into a figure: SHOAL_SCENARIO_AGENT_ARGS adds agent flags
// ("--log-level debug" logs each pod step's and status write's time;
// "--pprof" serves profiles), SHOAL_SCENARIO_PPROF=DIR has the apply
// figure save a 20 s CPU profile of each agent there (with --pprof), and
// SHOAL_SCENARIO_BIN runs a shoal binary built elsewhere (another
// revision, for a comparison in the same conditions).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	for n, sc := range shared.clusters {
		if err := sc.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "closing the shared %d-host cluster: %v\n", n, err)
			code = 1
		}
		delete(shared.clusters, n)
	}
	if shared.binDir != "" {
		os.RemoveAll(shared.binDir)
	}
	shared.mu.Unlock()
	printFigures()
	os.Exit(code)
}

// scCluster is a shared cluster as the scenarios use it.
type scCluster struct {
	*hosts.Cluster
	image      string // testenv.TestProgram, pulled from the registry
	rootBefore string // the root namespace before the cluster was made
}

// shared holds the shared clusters by host count, and the shoal binary.
var shared struct {
	mu       sync.Mutex
	clusters map[int]*scCluster
	binDir   string
	bin      string
}

// requireHostTools skips the test unless it runs as root on a machine with
// what the harness needs.
func requireHostTools(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	for _, p := range []string{"/usr/lib/cni/bridge", testenv.ContainerdBinary} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipped: %s not installed (Debian: containernetworking-plugins, containerd)", p)
		}
	}
	for _, b := range []string{"ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("skipped: %s not installed (iproute2, util-linux, nftables)", b)
		}
	}
}

// sharedCluster returns the shared cluster of n hosts, healthy, making it
// (after closing a shared cluster of another size: two at once would
// overload the machine) or remaking it if the last scenario left it
// unusable. At the end of the test, the root namespace must be as it was
// before the cluster was made.
func sharedCluster(t *testing.T, n int) *scCluster {
	t.Helper()
	requireHostTools(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.clusters == nil {
		shared.clusters = map[int]*scCluster{}
	}
	if shared.bin == "" && os.Getenv("SHOAL_SCENARIO_BIN") != "" {
		// A shoal binary built elsewhere (another revision, to compare).
		shared.bin = os.Getenv("SHOAL_SCENARIO_BIN")
	}
	if shared.bin == "" {
		dir, err := os.MkdirTemp("", "shoal-scenarios-")
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "shoal")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/shoal-dev/shoal/cmd/shoal").CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			t.Fatalf("go build shoal: %v\n%s", err, out)
		}
		shared.binDir, shared.bin = dir, bin
	}
	for m, sc := range shared.clusters {
		if m != n {
			if err := sc.Close(); err != nil {
				t.Errorf("closing the shared %d-host cluster: %v", m, err)
			}
			delete(shared.clusters, m)
		}
	}
	sc := shared.clusters[n]
	if sc != nil {
		if err := sc.healthy(2 * time.Minute); err != nil {
			t.Logf("the shared %d-host cluster is unusable (%v): making a new one", n, err)
			sc.logTails(t)
			if err := sc.Close(); err != nil {
				t.Errorf("closing the unusable cluster: %v", err)
			}
			delete(shared.clusters, n)
			sc = nil
		}
	}
	if sc == nil {
		sc = newScCluster(t, n)
		shared.clusters[n] = sc
	}
	t.Cleanup(func() {
		if t.Failed() {
			sc.logTails(t)
		}
		after, err := hosts.RootState()
		if err != nil {
			t.Error(err)
		} else if after != sc.rootBefore {
			t.Errorf("the root network namespace changed during %s:\nbefore:\n%s\nafter:\n%s", t.Name(), sc.rootBefore, after)
		}
	})
	return sc
}

// newScCluster makes a cluster of n hosts with the default (production)
// timings. Its name is fixed per size, so that a run killed half-way is
// cleaned up by the next (hosts.New removes namespaces of that name).
func newScCluster(t *testing.T, n int) *scCluster {
	t.Helper()
	before, err := hosts.RootState()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("shoal-sc%d", n)
	dir := filepath.Join(os.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Three zones: five hosts are h1-h5 in zones a, b, c, a, b.
	c, err := hosts.New(hosts.Config{Bin: shared.bin, Hosts: n, Zones: 3, Name: name, Dir: dir, Logf: t.Logf,
		AgentArgs: strings.Fields(os.Getenv("SHOAL_SCENARIO_AGENT_ARGS"))})
	if err != nil {
		if c != nil {
			err = fmt.Errorf("%w (close: %v)", err, c.Close())
		}
		t.Fatalf("a cluster of %d hosts: %v", n, err)
	}
	t.Logf("cluster of %d hosts formed in %v", n, time.Since(c.Start).Round(time.Millisecond))
	image, err := c.TestImage()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return &scCluster{Cluster: c, image: image, rootBefore: before}
}

// healthy waits (up to timeout) for one cluster of the running hosts,
// Ready, a leader, and a write accepted through every running agent.
func (sc *scCluster) healthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if err := sc.WaitFormed(timeout); err != nil {
		return err
	}
	for _, h := range sc.Running() {
		if err := sc.writeUntil(h, time.Until(deadline)); err != nil {
			return err
		}
	}
	return nil
}

// writeUntil writes a ConfigMap through h until a write is accepted or
// timeout passes.
func (sc *scCluster) writeUntil(h *hosts.Host, timeout time.Duration) error {
	var err error
	if hosts.WaitUntil(timeout, func() bool { err = sc.write(h, "probe-"+h.Name); return err == nil }) {
		return nil
	}
	return fmt.Errorf("no write accepted through %s in %v: %v", h.Name, timeout, err)
}

// write creates (or updates) ConfigMap name through h.
func (sc *scCluster) write(h *hosts.Host, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Data: map[string]string{"at": time.Now().Format(time.RFC3339Nano)}}
	_, _, err := sc.Client(h).Apply(ctx, cm)
	return err
}

// leader waits (up to timeout) for a leader that every running agent
// follows with want voters.
func (sc *scCluster) leader(t *testing.T, want int, timeout time.Duration) *hosts.Host {
	t.Helper()
	var l *hosts.Host
	testenv.WaitFor(t, timeout, fmt.Sprintf("a leader followed by every running agent, %d voters", want), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l = sc.StableLeader(ctx, want)
		return l != nil
	})
	return l
}

// retry calls fn until it succeeds, for 30 s at most, and fails the test
// with its last error: reads and writes that need the leader fail while
// the cluster elects one (about a second, and it happens unprovoked on a
// machine this loaded).
func retry(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	if !hosts.WaitUntil(30*time.Second, func() bool { err = fn(); return err == nil }) {
		t.Fatalf("%s: %v", what, err)
	}
}

// followedLeader waits (up to timeout) for a leader that every running
// agent follows, whatever the number of voters (after a loss, the voter
// manager shrinks the configuration to an odd number of alive agents).
func (sc *scCluster) followedLeader(t *testing.T, timeout time.Duration) *hosts.Host {
	t.Helper()
	var l *hosts.Host
	testenv.WaitFor(t, timeout, "a leader followed by every running agent", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if l, _, err = sc.Leader(ctx); err != nil {
			return false
		}
		for _, h := range sc.Running() {
			if r, err := sc.Raft(ctx, h); err != nil || r.LeaderID != l.Name {
				return false
			}
		}
		return true
	})
	return l
}

// others are the running hosts other than those given.
func (sc *scCluster) others(not ...*hosts.Host) []*hosts.Host {
	var out []*hosts.Host
	for _, h := range sc.Running() {
		skip := false
		for _, n := range not {
			skip = skip || h == n
		}
		if !skip {
			out = append(out, h)
		}
	}
	return out
}

// cli runs the CLI through h and fails the test on error. On a machine
// this loaded the leader sometimes loses its lease and the cluster elects
// another within about a second: a command the cluster refused during the
// election ("retry shortly": nothing was written) runs again, and so does
// `apply` after a write of unknown outcome (applying twice is harmless);
// five attempts at most.
func (sc *scCluster) cli(t *testing.T, h *hosts.Host, args ...string) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		out, err := sc.CLI(h, args...)
		if err == nil {
			return out
		}
		transient := strings.Contains(err.Error(), "retry shortly") ||
			(args[0] == "apply" && strings.Contains(err.Error(), "outcome is unknown"))
		if !transient || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; again", attempt, err)
		sc.followedLeader(t, time.Minute)
	}
}

// applyManifest writes text to a file and applies it through h.
func (sc *scCluster) applyManifest(t *testing.T, h *hosts.Host, text string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sc.cli(t, h, "apply", "-f", f)
}

func (sc *scCluster) logTails(t *testing.T) {
	for _, h := range sc.Hosts() {
		t.Logf("%s agent log tail:\n%s", h.Name, testenv.Tail(h.LogPath, 30))
	}
}

// figures are the FIGURE lines of this run.
var figures struct {
	mu    sync.Mutex
	lines []string
}

// figure prints `FIGURE name value target` (value and target in seconds
// with two decimals, target as "<=N.NNs", or "none" if target is 0), and
// records it for the table.
func figure(t *testing.T, name string, value, target time.Duration) {
	t.Helper()
	tgt := "none"
	if target > 0 {
		tgt = fmt.Sprintf("<=%.2fs", target.Seconds())
	}
	line := fmt.Sprintf("FIGURE %s %.2fs %s", name, value.Seconds(), tgt)
	t.Log(line)
	figures.mu.Lock()
	figures.lines = append(figures.lines, line)
	figures.mu.Unlock()
	if path := os.Getenv("SHOAL_FIGURES_OUT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("SHOAL_FIGURES_OUT: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

// printFigures prints the run's figures as a table (seen with -v, or when
// the package fails; make integ prints SHOAL_FIGURES_OUT instead).
func printFigures() {
	figures.mu.Lock()
	defer figures.mu.Unlock()
	if len(figures.lines) == 0 {
		return
	}
	fmt.Println("figures of this run:")
	for _, l := range figures.lines {
		f := strings.Fields(l)
		fmt.Printf("  %-40s %10s  target %s\n", f[1], f[2], f[3])
	}
}
