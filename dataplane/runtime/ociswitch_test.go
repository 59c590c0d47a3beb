package runtime

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/typeurl/v2"
)

// requireCrun skips the test unless crun can run containers here.
func requireCrun(t *testing.T) {
	t.Helper()
	if _, err := lookPath(OCIRuntimeCrun); err != nil {
		t.Skipf("skipping: crun is not installed: %v", err)
	}
	if why := crunUnusable(); why != "" {
		t.Skipf("skipping: %s (run the package in a mount namespace without /sys/fs/cgroup/unified, see README)", why)
	}
}

// A container keeps the OCI runtime it was created with: an agent
// restarted with the other runtime still execs into, stops and removes
// the containers of the first, and the shim of each runs its own binary.
func TestOCIRuntimeSwitchKeepsContainers(t *testing.T) {
	requireCrun(t)
	c := ctx(t)
	r1 := newRuntimeWith(t, OCIRuntimeRunc)
	if r1.OCIRuntime() != OCIRuntimeRunc {
		t.Fatalf("runtime %q, want runc", r1.OCIRuntime())
	}
	byRunc := spec(t, r1, "by-runc", "sleep")
	if err := r1.Create(c, byRunc); err != nil {
		t.Fatal(err)
	}
	if err := r1.Start(c, "by-runc"); err != nil {
		t.Fatal(err)
	}
	r1.Close() // the agent restarts with crun

	r2 := newRuntimeWith(t, OCIRuntimeCrun)
	if r2.OCIRuntime() != OCIRuntimeCrun {
		t.Fatalf("runtime %q, want crun", r2.OCIRuntime())
	}
	waitState(t, r2, "by-runc", StateRunning)
	byCrun := spec(t, r2, "by-crun", "sleep")
	if err := r2.Create(c, byCrun); err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(c, "by-crun"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"by-runc": "", "by-crun": OCIRuntimeCrun} {
		if got := recordedBinary(t, r2, id); got != want {
			t.Errorf("%s: the container record names binary %q, want %q", id, got, want)
		}
	}
	// Each runtime keeps its own state file in the shared root: runc's
	// state.json, crun's status. The file says which binary created the
	// container.
	for id, file := range map[string]string{"by-runc": "state.json", "by-crun": "status"} {
		p := filepath.Join(r2.cfg.RuncRoot, r2.cfg.Namespace, id, file)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	r2.Close() // and back to runc

	r3 := newRuntimeWith(t, OCIRuntimeRunc)
	for _, id := range []string{"by-runc", "by-crun"} {
		var out bytes.Buffer
		code, err := r3.Exec(c, id, []string{"/app", "echo", "in-" + id}, &out, nil)
		if err != nil || code != 0 || out.String() != "in-"+id+"\n" {
			t.Errorf("exec in %s: code %d, err %v, output %q", id, code, err, out.String())
		}
		if err := r3.Stop(c, id, 5*time.Second); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
		// A Go program as PID 1 exits with 2 on SIGTERM (PLATFORM.md).
		if st := waitState(t, r3, id, StateExited); st.ExitCode != 2 {
			t.Errorf("%s: exit code %d, want 2", id, st.ExitCode)
		}
		if err := r3.Remove(c, id); err != nil {
			t.Fatalf("remove %s: %v", id, err)
		}
		if _, err := os.Stat(filepath.Join(r3.cfg.RuncRoot, r3.cfg.Namespace, id)); !os.IsNotExist(err) {
			t.Errorf("%s: runtime state left after Remove: %v", id, err)
		}
	}
}

// recordedBinary is the OCI runtime binary containerd's record of container
// id gives its shim ("" = the shim's default, runc).
func recordedBinary(t *testing.T, r *Runtime, id string) string {
	t.Helper()
	ctr, err := r.client.LoadContainer(r.ns(ctx(t)), id)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ctr.Info(r.ns(ctx(t)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Runtime.Options == nil {
		return ""
	}
	v, err := typeurl.UnmarshalAny(info.Runtime.Options)
	if err != nil {
		t.Fatal(err)
	}
	opts, ok := v.(*options.Options)
	if !ok {
		t.Fatalf("%s: runtime options are %T", id, v)
	}
	return opts.BinaryName
}

// TestContainerTTY: a container with TTY runs on a terminal (its "\n"
// leaves as "\r\n", the terminal's output processing), and what an attach
// session types reaches that terminal (its line discipline echoes it) while
// the session resizes it.
func TestContainerTTY(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	s := spec(t, r, "tty", "echo", "on-a-tty", "sleep")
	s.TTY, s.Stdin = true, true
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "tty"); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, "tty", StateRunning)
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(s.LogPath)
		return bytes.Contains(data, []byte("on-a-tty\r"))
	})
	var out syncBuffer
	resize := make(chan TermSize, 1)
	resize <- TermSize{Width: 100, Height: 40}
	actx, cancel := context.WithCancel(c)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- r.Attach(actx, "tty", AttachIO{Stdin: strings.NewReader("typed\n"), Stdout: &out, Resize: resize})
	}()
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(out.String(), "typed\r\n") })
	cancel()
	<-done
	if err := r.Stop(c, "tty", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, "tty", StateExited)
}
