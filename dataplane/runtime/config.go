package runtime

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// Errors. Callers test them with errors.Is; the wrapping message names the
// image reference or container and the cause.
var (
	// ErrImagePull: the image could not be pulled (not found, registry
	// unreachable, unauthorised...). The node loop reports it as the
	// ErrImagePull reason and backs off.
	ErrImagePull = errors.New("ErrImagePull")
	// ErrImageNeverPull: the pull policy is Never and the image is not
	// present on the node.
	ErrImageNeverPull = errors.New("ErrImageNeverPull")
	// ErrImageNotPresent: Create was called before EnsureImage.
	ErrImageNotPresent = errors.New("image not present")
	// ErrInvalidSpec: the container spec cannot be run as given (no network
	// namespace, bad ID, bad mount...). Not temporary.
	ErrInvalidSpec = errors.New("invalid container spec")
	// ErrNotFound: the container does not exist (Start, Exec).
	ErrNotFound = errors.New("container not found")
	// ErrNotRunning: Exec on a container whose task is not running.
	ErrNotRunning = errors.New("container not running")
	// ErrExited: Start on a container whose task has already run and
	// exited. A restart is a new container (a new attempt, a new ID).
	ErrExited = errors.New("container already exited")
	// ErrStart: containerd could not create or start the task (bad
	// executable, runc failure). What the attempt left has been removed
	// except the container record, which the caller removes.
	ErrStart = errors.New("container start failed")
)

// Pull policies, spelled as in Kubernetes.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// Config says which containerd to use and how.
type Config struct {
	// Socket is the absolute path of containerd's gRPC socket (a relative
	// one fails at the first call with "invalid (non-empty) authority").
	Socket string
	// Namespace is the containerd namespace holding every Shoal container.
	Namespace string
	// RuncRoot is the OCI runtime's (runc's or crun's) state root for our
	// containers ("" = the shim's default, /run/containerd/runc). Set it,
	// with CgroupParent, when two containerd daemons share a machine (the
	// multi-host test harness): PLATFORM.md.
	RuncRoot string
	// CgroupParent is the cgroup under which each container gets
	// <CgroupParent>/<id>; "" = containerd's default /<namespace>/<id>.
	CgroupParent string
	// LogDir is where ContainerLogPath puts container logs.
	LogDir string
	// InsecureRegistries are host:port registries served over plain HTTP.
	// Loopback registries always are.
	InsecureRegistries []string
	// Mirrors maps a registry host (docker.io, quay.io, host:port) to mirror
	// hosts tried in order before it. A mirror may be written
	// "http://host:port" to force plain HTTP.
	Mirrors map[string][]string
	// Snapshotter is containerd's snapshotter (overlayfs).
	Snapshotter string
	// OCIRuntime is the OCI runtime binary containerd's runc v2 shim runs
	// for the containers this runtime creates: OCIRuntimeRunc,
	// OCIRuntimeCrun, or OCIRuntimeAuto for crun when it is in PATH and
	// can run here, else runc. "" is runc: the runtime the test suite
	// runs (crun cannot run on the development machine's cgroups). A
	// container keeps the runtime it was created with (the shim reads it
	// from the container's record), so changing it affects new containers
	// only.
	OCIRuntime string
}

// OCI runtimes Config.OCIRuntime accepts.
const (
	OCIRuntimeAuto = "auto"
	OCIRuntimeRunc = "runc"
	OCIRuntimeCrun = "crun"
)

// DefaultConfig is the configuration of an agent on a node with the
// distribution's containerd.
func DefaultConfig() Config {
	return Config{
		Socket:      "/run/containerd/containerd.sock",
		Namespace:   "shoal",
		LogDir:      "/var/log/shoal/pods",
		Snapshotter: "overlayfs",
	}
}

// Validate reports the first problem in c.
func (c Config) Validate() error {
	switch {
	case c.Socket == "":
		return errors.New("runtime config: containerd socket is empty")
	case !filepath.IsAbs(c.Socket):
		return fmt.Errorf("runtime config: containerd socket %q must be an absolute path", c.Socket)
	case len(c.Socket) > 107:
		return fmt.Errorf("runtime config: containerd socket path %q is longer than a unix socket path may be (107 bytes)", c.Socket)
	case c.Namespace == "":
		return errors.New("runtime config: containerd namespace is empty")
	case c.Snapshotter == "":
		return errors.New("runtime config: snapshotter is empty")
	case c.RuncRoot != "" && !filepath.IsAbs(c.RuncRoot):
		return fmt.Errorf("runtime config: runc root %q must be absolute", c.RuncRoot)
	case c.CgroupParent != "" && !strings.HasPrefix(c.CgroupParent, "/"):
		return fmt.Errorf("runtime config: cgroup parent %q must start with /", c.CgroupParent)
	case c.OCIRuntime != "" && c.OCIRuntime != OCIRuntimeAuto && c.OCIRuntime != OCIRuntimeRunc && c.OCIRuntime != OCIRuntimeCrun:
		return fmt.Errorf("runtime config: OCI runtime %q is not runc, crun, auto or empty (runc)", c.OCIRuntime)
	}
	if err := validIdentifier(c.Namespace); err != nil {
		return fmt.Errorf("runtime config: namespace: %w", err)
	}
	for _, h := range c.InsecureRegistries {
		if _, _, err := net.SplitHostPort(h); err != nil && strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("runtime config: insecure registry %q is not host[:port]", h)
		}
	}
	for host, ms := range c.Mirrors {
		if host == "" || len(ms) == 0 {
			return fmt.Errorf("runtime config: mirror entry %q → %v is incomplete", host, ms)
		}
	}
	return nil
}

// validIdentifier applies containerd's identifier rule (namespaces,
// container IDs): 1–76 characters of [A-Za-z0-9_.-], starting with a letter
// or digit.
func validIdentifier(s string) error {
	if s == "" || len(s) > 76 {
		return fmt.Errorf("identifier %q must be 1 to 76 characters", s)
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return fmt.Errorf("identifier %q: character %q at %d not allowed", s, r, i)
		}
	}
	return nil
}
