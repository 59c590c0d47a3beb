package testenv

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestProgramRunsOnHost(t *testing.T) {
	bin, err := CompileProgram(TestProgram)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "print-env", "echo", "hello", "exit", "3")
	cmd.Env = []string{"GREETING=hi there"}
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit: got %v, want code 3", err)
	}
	for _, want := range []string{"ARGS print-env echo hello exit 3\n", "ENV GREETING=hi there\n", "hello\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	again, err := CompileProgram(TestProgram)
	if err != nil || again != bin {
		t.Fatalf("second compile: %q, %v; want cached %q", again, err, bin)
	}
}

func TestRegistryServesBuiltImage(t *testing.T) {
	reg := StartRegistry(t)
	ref := TestImage(t, reg)
	if !strings.HasPrefix(ref, "127.0.0.1:") {
		t.Fatalf("ref %q not on loopback", ref)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/app" {
		t.Errorf("entrypoint %v", got)
	}
	if cf.OS != "linux" {
		t.Errorf("os %q", cf.OS)
	}
}

// TestContainerdRunsImage starts a daemon, pulls the test image with ctr and
// runs it: the whole environment in one go.
func TestContainerdRunsImage(t *testing.T) {
	c := StartContainerd(t)
	reg := StartRegistry(t)
	ref := TestImage(t, reg)
	if err := c.CtrPull(ref); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := c.CtrRun(ref, "ctr-run-1", "echo", "inside")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ctr run --rm: %v", time.Since(start))
	if !strings.Contains(out, "inside") {
		t.Errorf("output %q", out)
	}
	ns := NewNetNS(t)
	if _, err := ns.Exec("ip", "link", "show", "lo"); err != nil {
		t.Fatal(err)
	}
}
