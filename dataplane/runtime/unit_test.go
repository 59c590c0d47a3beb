package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"relative socket": func(c *Config) { c.Socket = "run/c.sock" },
		"no namespace":    func(c *Config) { c.Namespace = "" },
		"bad namespace":   func(c *Config) { c.Namespace = "-x" },
		"relative cgroup": func(c *Config) { c.CgroupParent = "shoal" },
		"relative runc":   func(c *Config) { c.RuncRoot = "runc" },
		"no snapshotter":  func(c *Config) { c.Snapshotter = "" },
		"empty mirror":    func(c *Config) { c.Mirrors = map[string][]string{"docker.io": nil} },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}

func TestContainerID(t *testing.T) {
	uid := "6f1c2a8e-0b7d-4f5e-9a3c-1d2e3f4a5b6c"
	if got := ContainerID(uid, "web", 3); got != uid+"-web-3" {
		t.Errorf("short id: %q", got)
	}
	long := ContainerID(uid, strings.Repeat("sidecar", 9), 12)
	if err := validIdentifier(long); err != nil {
		t.Errorf("long id %q: %v", long, err)
	}
	if long != ContainerID(uid, strings.Repeat("sidecar", 9), 12) {
		t.Error("ContainerID is not deterministic")
	}
	if ContainerID(uid, strings.Repeat("sidecar", 9), 12) == ContainerID(uid, strings.Repeat("sidecar", 8)+"sidecaR", 12) {
		t.Error("different long names share an id")
	}
}

func TestSpecNeedsNetNS(t *testing.T) {
	s := ContainerSpec{ID: "a", Image: "x"}
	if err := s.validate(); err == nil || !strings.Contains(err.Error(), "network namespace") {
		t.Fatalf("spec without netns: %v", err)
	}
}

func TestRegistryHostsMirrorsFirst(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mirrors = map[string][]string{"docker.io": {"http://mirror.local:5000", "mirror2.example"}}
	cfg.InsecureRegistries = []string{"10.0.0.5:5000"}
	hosts, _ := registryHosts(cfg)("docker.io")
	var got []string
	for _, h := range hosts {
		got = append(got, h.Scheme+"://"+h.Host)
	}
	want := "http://mirror.local:5000 https://mirror2.example https://registry-1.docker.io"
	if strings.Join(got, " ") != want {
		t.Errorf("docker.io hosts: %v, want %s", got, want)
	}
	hosts, _ = registryHosts(cfg)("10.0.0.5:5000")
	if hosts[0].Scheme != "http" {
		t.Errorf("insecure registry scheme %q", hosts[0].Scheme)
	}
	hosts, _ = registryHosts(cfg)("127.0.0.1:5000")
	if hosts[0].Scheme != "http" {
		t.Errorf("loopback registry scheme %q", hosts[0].Scheme)
	}
}

func TestRotateAndReadLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	write := func(s string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	write("one\n")
	if err := RotateLog(path, 100, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Fatal("rotated below the size limit")
	}
	for _, s := range []string{strings.Repeat("a", 100) + "\n", strings.Repeat("b", 100) + "\n", strings.Repeat("c", 100) + "\n"} {
		write(s)
		if err := RotateLog(path, 100, 2); err != nil {
			t.Fatal(err)
		}
	}
	write("tail\n")
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("kept more than 2 rotated files")
	}
	var buf bytes.Buffer
	if err := ReadLog(context.Background(), path, false, false, &buf); err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("b", 100) + "\n" + strings.Repeat("c", 100) + "\ntail\n"
	if buf.String() != want {
		t.Errorf("ReadLog = %q, want %q", buf.String(), want)
	}
	if err := ReadLog(context.Background(), path, true, false, &buf); err == nil {
		t.Error("previous of attempt 0 should fail")
	}

	// Follow: appended output arrives, and output after a truncation too.
	FollowPoll = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	pr := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- ReadLog(ctx, path, false, true, pr) }()
	write("more\n")
	waitFor(t, 5*time.Second, func() bool { return strings.HasSuffix(pr.String(), "tail\nmore\n") })
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool {
		fi, _ := os.Stat(path)
		return fi.Size() == 0
	})
	write("after\n")
	waitFor(t, 5*time.Second, func() bool { return strings.HasSuffix(pr.String(), "after\n") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
