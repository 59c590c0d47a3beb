package hosts

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/testenv"
)

func TestConfigValidateNamesTheField(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "shoal")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.Bin"},
		{Config{Bin: bin, Hosts: MaxHosts + 1}, "Config.Hosts"},
		{Config{Bin: bin, Name: "a b"}, "Config.Name"},
		{Config{Bin: bin, Name: strings.Repeat("x", 21)}, "Config.Name"},
		{Config{Bin: bin, Subnet: "10.0"}, "Config.Subnet"},
		{Config{Bin: bin, Hosts: 2, BootstrapExpect: 3}, "Config.BootstrapExpect"},
		{Config{Bin: bin, RegistryPort: 70000}, "Config.RegistryPort"},
		{Config{Bin: bin, Zones: 27}, "Config.Zones"},
		{Config{Bin: bin, AgentArgs: []string{"--label", "a b"}}, "Config.AgentArgs"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	cfg := Config{Bin: bin}
	if err := cfg.Validate(); err != nil || cfg.Hosts != 3 || cfg.BootstrapExpect != 3 || !strings.HasPrefix(cfg.Name, "shoal-t-") {
		t.Fatalf("defaults: %v %+v", err, cfg)
	}
}

// TestHarnessOperations runs the operations the scenarios build on: a
// cut host is unreachable from another host until healed, a restarted
// agent rejoins, a host added later joins with a join token, a killed
// host's containerd is gone, and Close leaves the root namespace as it was.
func TestHarnessOperations(t *testing.T) {
	testenv.RequireRoot(t)
	for _, b := range []string{"ip", "nsenter", "nft", testenv.ContainerdBinary} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("skipped: %s not installed", b)
		}
	}
	bin := filepath.Join(t.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shoal-dev/shoal/cmd/shoal").CombinedOutput(); err != nil {
		t.Fatalf("go build shoal: %v\n%s", err, out)
	}
	c, err := New(Config{Bin: bin, Hosts: 3, Logf: t.Logf})
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				for _, h := range c.Hosts() {
					t.Logf("%s log tail:\n%s", h.Name, testenv.Tail(h.LogPath, 30))
				}
			}
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	h1, h3 := c.Host("h1"), c.Host("h3")
	reach := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := DialIn(h1.NetNSPath)(ctx, "tcp", h3.API())
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
	if !reach() {
		t.Fatal("h1 does not reach h3's API before the cut")
	}
	if err := c.Cut(h3); err != nil {
		t.Fatal(err)
	}
	if reach() {
		t.Fatal("h1 reaches h3's API through the cut")
	}
	// A cut host still answers its own namespace's client.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.Raft(ctx, h3); err != nil {
		t.Fatalf("h3's own client during the cut: %v", err)
	}
	if err := c.Heal(h3); err != nil {
		t.Fatal(err)
	}
	if !WaitUntil(10*time.Second, reach) {
		t.Fatal("h1 does not reach h3 after Heal")
	}
	if out, err := c.CLI(h3, "members"); err != nil || !strings.Contains(out, "h1") {
		t.Fatalf("shoal members on h3: %v\n%s", err, out)
	}

	if err := c.RestartAgent(h3); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	h4, err := c.AddHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if h4.Zone != "d" || h4.IP != "10.250.0.4" {
		t.Fatalf("h4: zone %s ip %s", h4.Zone, h4.IP)
	}
	if l, _, err := c.Leader(ctx); err != nil || l == nil {
		t.Fatalf("leader: %v", err)
	}
	if err := c.KillHost(h4); err != nil {
		t.Fatal(err)
	}
	if h4.Running() {
		t.Fatal("h4's agent runs after KillHost")
	}
	if _, err := net.Dial("unix", h4.Ctrd.Socket); err == nil {
		t.Fatal("h4's containerd answers after KillHost")
	}
	if err := c.StartAgent(h4); err == nil {
		t.Fatal("a killed host started again")
	}
}

// TestProvisionNetnsMode runs provision.sh as the harness does and reads
// back the flags it wrote; a bad value is refused with its option named.
func TestProvisionNetnsMode(t *testing.T) {
	root := t.TempDir()
	script := filepath.Join(root, "provision.sh")
	if err := os.WriteFile(script, ProvisionScript, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command("bash", append([]string{script, "--mode", "netns", "--root", root, "--no-install"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("--bin", self, "--node-name", "h2", "--ip", "10.9.0.2", "--join", "10.9.0.1,10.9.0.2,10.9.0.3",
		"--bootstrap-expect", "3", "--token", "SHOAL-1-x", "--zone", "b", "--data-dir", "/var/lib/shoal-h2", "--extra", "--voters 3"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got, err := ReadAgentArgs(filepath.Join(root, "etc/default/shoal"))
	if err != nil {
		t.Fatal(err)
	}
	want := "--data-dir /var/lib/shoal-h2 --http-addr 10.9.0.2:7070 --raft-addr 10.9.0.2:7071 --bind 10.9.0.2:7946 --node-ip 10.9.0.2 " +
		"--node-name h2 --zone b --join 10.9.0.1:7946,10.9.0.3:7946 --bootstrap-expect 3 --token SHOAL-1-x --voters 3"
	if strings.Join(got, " ") != want {
		t.Fatalf("flags:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if st, err := os.Stat(filepath.Join(root, "etc/default/shoal")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("/etc/default/shoal holds the token: mode %v, %v; want 0600", st.Mode(), err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/shoal-agent.service"))
	if err != nil || !strings.Contains(string(unit), "Restart=on-failure") || !strings.Contains(string(unit), "EnvironmentFile=/etc/default/shoal") {
		t.Fatalf("unit: %v\n%s", err, unit)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/local/bin/shoal")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"--ip", "10.9.0"}, {"--ip", "10.9.0.2", "--zone", "a b"}, {"--ip", "10.9.0.2", "--data-dir", "rel"}, {"--ip", "10.9.0.2", "--bogus"}, {}} {
		out, err := run(bad...)
		name := "--ip"
		if len(bad) > 2 {
			name = bad[2]
		}
		if err == nil || !strings.Contains(out, name) {
			t.Errorf("%v: got %v %q, want an error naming %s", bad, err, out, name)
		}
	}
}
