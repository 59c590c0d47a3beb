package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Choosing the OCI runtime (Config.OCIRuntime). containerd's runc v2 shim
// runs any binary with runc's command line; crun is one, written in C, and
// starts a container for less CPU than runc (a Go program that re-executes
// itself as the container's init): TestStartThirtyCPU measures both.

// lookPath finds an executable in PATH; tests replace it.
var lookPath = exec.LookPath

// cgroupHybridControllers returns the controllers bound to the cgroup v2
// hierarchy of a hybrid layout (cgroup v1 controllers under a tmpfs
// /sys/fs/cgroup, cgroup v2 at /sys/fs/cgroup/unified), "" when the layout
// is not hybrid or the v2 hierarchy holds no controller. Tests replace it.
var cgroupHybridControllers = func() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil || st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "" // no cgroups to speak of, or unified (cgroup v2 only)
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return "" // cgroup v1 only
	}
	data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// crunUnusable says why crun cannot run containers on this host, or "".
// crun (1.8 to at least 1.21) refuses a hybrid cgroup layout whose v2
// hierarchy holds a controller ("cgroups in hybrid mode not supported"),
// e.g. hugetlb on a host that mounts only the other controllers as v1.
func crunUnusable() string {
	if c := cgroupHybridControllers(); c != "" {
		return fmt.Sprintf("this host's cgroups are hybrid with controllers in the cgroup v2 hierarchy (/sys/fs/cgroup/unified/cgroup.controllers: %s), which crun refuses", c)
	}
	return ""
}

// ResolveOCIRuntime is the OCI runtime binary a runtime configured with
// Config.OCIRuntime name would use on this host, or why it cannot (the
// agent checks its flag with it at start).
func ResolveOCIRuntime(name string) (string, error) {
	return Config{OCIRuntime: name}.resolveOCIRuntime()
}

// resolveOCIRuntime returns the OCI runtime binary name to use: the one
// configured, which must be in PATH (and for crun, usable here), or for
// OCIRuntimeAuto crun when it is in PATH and usable, else runc; "" is
// runc.
// containerd's shim finds the binary in its own PATH, which on a node is
// the agent's too.
func (c Config) resolveOCIRuntime() (string, error) {
	name := c.OCIRuntime
	if name == "" {
		name = OCIRuntimeRunc
	}
	switch name {
	case OCIRuntimeAuto:
		if _, err := lookPath(OCIRuntimeCrun); err == nil && crunUnusable() == "" {
			return OCIRuntimeCrun, nil
		}
		if _, err := lookPath(OCIRuntimeRunc); err != nil {
			return "", fmt.Errorf("runtime config: OCI runtime (auto): neither crun nor runc is in PATH (install the crun or runc package)")
		}
		return OCIRuntimeRunc, nil
	case OCIRuntimeRunc, OCIRuntimeCrun:
		if _, err := lookPath(name); err != nil {
			return "", fmt.Errorf("runtime config: OCI runtime %q: not in PATH (install the %s package, or choose another runtime): %w", name, name, err)
		}
		if name == OCIRuntimeCrun {
			if why := crunUnusable(); why != "" {
				return "", fmt.Errorf("runtime config: OCI runtime %q: %s; use runc", name, why)
			}
		}
		return name, nil
	}
	return "", fmt.Errorf("runtime config: OCI runtime %q is not runc, crun, auto or empty (runc)", c.OCIRuntime)
}
