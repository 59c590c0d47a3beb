package runtime

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// fakeHost replaces the PATH lookup and the cgroup layout probe for one
// test: installed lists the binaries in PATH, hybrid the controllers in a
// hybrid layout's cgroup v2 hierarchy ("" = crun can run).
func fakeHost(t *testing.T, hybrid string, installed ...string) {
	t.Helper()
	oldLook, oldHybrid := lookPath, cgroupHybridControllers
	t.Cleanup(func() { lookPath, cgroupHybridControllers = oldLook, oldHybrid })
	lookPath = func(name string) (string, error) {
		for _, b := range installed {
			if b == name {
				return "/usr/bin/" + name, nil
			}
		}
		return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	cgroupHybridControllers = func() string { return hybrid }
}

func TestOCIRuntimeChoice(t *testing.T) {
	for _, tc := range []struct {
		name, configured, hybrid string
		installed                []string
		want, wantErr            string
	}{
		{name: "auto prefers crun", configured: "auto", installed: []string{"runc", "crun"}, want: "crun"},
		{name: "auto without crun", configured: "auto", installed: []string{"runc"}, want: "runc"},
		{name: "auto, crun alone", configured: "auto", installed: []string{"crun"}, want: "crun"},
		{name: "auto on a hybrid host", configured: "auto", hybrid: "hugetlb", installed: []string{"runc", "crun"}, want: "runc"},
		{name: "auto with neither", configured: "auto", wantErr: "neither crun nor runc"},
		{name: "auto, hybrid, crun alone", configured: "auto", hybrid: "hugetlb", installed: []string{"crun"}, wantErr: "neither crun nor runc"},
		{name: "default is runc", installed: []string{"runc", "crun"}, want: "runc"},
		{name: "default, runc missing", installed: []string{"crun"}, wantErr: `OCI runtime "runc": not in PATH`},
		{name: "runc", configured: "runc", installed: []string{"runc", "crun"}, want: "runc"},
		{name: "runc missing", configured: "runc", installed: []string{"crun"}, wantErr: `OCI runtime "runc": not in PATH`},
		{name: "crun", configured: "crun", installed: []string{"runc", "crun"}, want: "crun"},
		{name: "crun missing", configured: "crun", installed: []string{"runc"}, wantErr: `OCI runtime "crun": not in PATH (install the crun package`},
		{name: "crun on a hybrid host", configured: "crun", hybrid: "hugetlb", installed: []string{"runc", "crun"}, wantErr: "cgroup.controllers: hugetlb), which crun refuses; use runc"},
		{name: "unknown", configured: "youki", installed: []string{"runc", "crun"}, wantErr: `OCI runtime "youki" is not runc, crun, auto or empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeHost(t, tc.hybrid, tc.installed...)
			cfg := DefaultConfig()
			cfg.OCIRuntime = tc.configured
			got, err := cfg.resolveOCIRuntime()
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %q, %v; want an error with %q", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// New refuses a configured runtime that is missing, before any call to
// containerd, with the field named.
func TestNewRefusesMissingOCIRuntime(t *testing.T) {
	fakeHost(t, "", "runc")
	cfg := DefaultConfig()
	cfg.OCIRuntime = OCIRuntimeCrun
	r, err := New(t.Context(), cfg)
	if err == nil {
		r.Close()
		t.Fatal("New accepted a missing crun")
	}
	var ee *exec.Error
	if !strings.Contains(err.Error(), "OCI runtime") || !errors.As(err, &ee) {
		t.Fatalf("error %v does not name the field or the lookup", err)
	}
	cfg.OCIRuntime = "crun "
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "OCI runtime") {
		t.Fatalf("Validate of %q: %v", cfg.OCIRuntime, err)
	}
}
