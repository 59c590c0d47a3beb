package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Label keys. The node loop sets the pod ones in ContainerSpec.Labels; the
// runtime sets its own.
const (
	LabelPodUID        = "io.shoal.pod.uid"
	LabelPodName       = "io.shoal.pod.name"
	LabelPodNamespace  = "io.shoal.pod.namespace"
	LabelContainerName = "io.shoal.container.name"
	LabelAttempt       = "io.shoal.container.attempt"

	LabelManaged   = "io.shoal.managed"    // "true" on every container this package created
	LabelLogPath   = "io.shoal.log-path"   // where Start sends the task's output
	LabelStartedAt = "io.shoal.started-at" // RFC 3339 time the task was started
	LabelOOMKilled = "io.shoal.oom-killed" // "true" once containerd reported an OOM kill
	LabelStdin     = "io.shoal.stdin"      // "true" or "once" (StdinOnce): the task gets a stdin
	LabelTTY       = "io.shoal.tty"        // "true": the task runs on a terminal
)

// Mount is a mount inside the container.
type Mount struct {
	Source      string // host path (bind); ignored for tmpfs
	Destination string // absolute path in the container
	ReadOnly    bool
	Type        string // "bind" (default) or "tmpfs"
}

// ContainerSpec is what Create needs to make one container.
type ContainerSpec struct {
	// ID is the containerd container ID and snapshot key. Use ContainerID:
	// it is deterministic in (pod UID, container name, attempt), so the
	// node loop recomputes it after a restart and a restart of the
	// container (attempt+1) is a new container next to the exited one,
	// whose exit code and logs stay readable until it is removed.
	ID string
	// Labels: the node loop sets LabelPodUID, LabelPodName,
	// LabelPodNamespace, LabelContainerName, LabelAttempt.
	Labels     map[string]string
	Image      string   // reference, as given to EnsureImage
	Command    []string // replaces the image's entrypoint (and its cmd)
	Args       []string // replaces the image's cmd
	Env        []string // KEY=VALUE, added to (and overriding) the image's
	WorkingDir string
	// CPUMilli sets cpu shares (milli*1024/1000) and a CFS quota of
	// milli/1000 CPUs per 100 ms period; 0 leaves both unset.
	CPUMilli int64
	// MemoryLimitBytes sets the memory limit (and the memory+swap limit to
	// the same value where the kernel accounts swap, so the container
	// cannot swap past it); 0 = unlimited.
	MemoryLimitBytes int64
	// NetNSPath is the pod's network namespace (e.g. /run/netns/<name>).
	// Required: pods never run in the host's network namespace.
	NetNSPath string
	Mounts    []Mount
	// LogPath receives stdout and stderr, appended, as records with their
	// time (logformat.go; see ContainerLogPath).
	LogPath  string
	Hostname string
	// Stdin opens the container's stdin for attach sessions (it needs a
	// LogPath: the IO passes through the agent); with StdinOnce the end
	// of the first session's input closes it.
	Stdin, StdinOnce bool
	// TTY runs the container's process on a terminal (stdout and stderr
	// are then one stream).
	TTY bool
}

// ContainerID returns the container ID for attempt of container in pod:
// "<podUID>-<container>-<attempt>", shortened with a hash when longer than
// containerd's 76-character limit or when the name has characters
// containerd refuses.
func ContainerID(podUID, container string, attempt int) string {
	id := fmt.Sprintf("%s-%s-%d", podUID, container, attempt)
	if validIdentifier(id) == nil {
		return id
	}
	sum := sha256.Sum256([]byte(podUID + "\x00" + container))
	short := hex.EncodeToString(sum[:6])
	keep := ""
	for _, r := range container {
		if len(keep) >= 16 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			keep += string(r)
		}
	}
	uid := podUID
	if validIdentifier(uid) != nil || len(uid) > 36 {
		uid = "x" + short
	}
	return fmt.Sprintf("%s-%s%s-%d", uid, keep, short, attempt)
}

// ContainerLogPath is the log file of one attempt of one container:
// <logDir>/<namespace>_<pod>_<uid>/<container>/<attempt>.log, the layout of
// the kubelet, so --previous is the file of attempt-1 (see ReadLog).
func ContainerLogPath(logDir, podNamespace, podName, podUID, container string, attempt int) string {
	return filepath.Join(logDir, podNamespace+"_"+podName+"_"+podUID, container, strconv.Itoa(attempt)+".log")
}

func (s ContainerSpec) validate() error {
	if err := validIdentifier(s.ID); err != nil {
		return fmt.Errorf("%w: id: %v", ErrInvalidSpec, err)
	}
	if s.Image == "" {
		return fmt.Errorf("%w: container %s: no image", ErrInvalidSpec, s.ID)
	}
	if s.NetNSPath == "" {
		return fmt.Errorf("%w: container %s: no network namespace (pods never use the host's)", ErrInvalidSpec, s.ID)
	}
	if !filepath.IsAbs(s.NetNSPath) {
		return fmt.Errorf("%w: container %s: network namespace path %q is not absolute", ErrInvalidSpec, s.ID, s.NetNSPath)
	}
	if s.LogPath != "" && !filepath.IsAbs(s.LogPath) {
		return fmt.Errorf("%w: container %s: log path %q is not absolute", ErrInvalidSpec, s.ID, s.LogPath)
	}
	if s.Stdin && s.LogPath == "" {
		return fmt.Errorf("%w: container %s: stdin needs a log path (its IO passes through the agent)", ErrInvalidSpec, s.ID)
	}
	if s.CPUMilli < 0 || s.MemoryLimitBytes < 0 {
		return fmt.Errorf("%w: container %s: negative resources", ErrInvalidSpec, s.ID)
	}
	if s.MemoryLimitBytes > 0 && s.MemoryLimitBytes < 4<<20 {
		return fmt.Errorf("%w: container %s: memory limit %d below 4 MiB", ErrInvalidSpec, s.ID, s.MemoryLimitBytes)
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("%w: container %s: mount destination %q is not absolute", ErrInvalidSpec, s.ID, m.Destination)
		}
		switch m.Type {
		case "", "bind":
			if !filepath.IsAbs(m.Source) {
				return fmt.Errorf("%w: container %s: bind source %q is not absolute", ErrInvalidSpec, s.ID, m.Source)
			}
		case "tmpfs":
		default:
			return fmt.Errorf("%w: container %s: mount type %q (bind or tmpfs)", ErrInvalidSpec, s.ID, m.Type)
		}
	}
	return nil
}

// specOpts turns the spec into OCI spec options, in order: image config
// first, then what the pod overrides.
func (r *Runtime) specOpts(spec ContainerSpec, img client.Image) []oci.SpecOpts {
	var opts []oci.SpecOpts
	switch {
	case len(spec.Command) > 0:
		opts = append(opts, oci.WithImageConfig(img),
			oci.WithProcessArgs(append(append([]string{}, spec.Command...), spec.Args...)...))
	case len(spec.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(img, spec.Args))
	default:
		opts = append(opts, oci.WithImageConfig(img))
	}
	if len(spec.Env) > 0 {
		opts = append(opts, oci.WithEnv(spec.Env))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.Hostname != "" {
		opts = append(opts, oci.WithHostname(spec.Hostname))
	}
	if spec.TTY {
		opts = append(opts, oci.WithTTY)
	}
	opts = append(opts,
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}),
		oci.WithNoNewPrivileges,
		seccomp.WithDefaultProfile(),
	)
	if r.oci == OCIRuntimeCrun {
		opts = append(opts, withOCIVersion(crunOCIVersion))
	}
	if r.cfg.CgroupParent != "" {
		opts = append(opts, oci.WithCgroup(r.cfg.CgroupParent+"/"+spec.ID))
	}
	if spec.CPUMilli > 0 {
		shares := uint64(spec.CPUMilli * 1024 / 1000)
		if shares < 2 {
			shares = 2
		}
		const period = 100000
		quota := spec.CPUMilli * period / 1000
		if quota < 1000 {
			quota = 1000
		}
		opts = append(opts, oci.WithCPUShares(shares), oci.WithCPUCFS(quota, period))
	}
	if spec.MemoryLimitBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryLimitBytes)))
		if swapAccounted() {
			opts = append(opts, oci.WithMemorySwap(spec.MemoryLimitBytes))
		}
	}
	if len(spec.Mounts) > 0 {
		var ms []specs.Mount
		for _, m := range spec.Mounts {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			if m.Type == "tmpfs" {
				ms = append(ms, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: m.Destination,
					Options: []string{"nosuid", "nodev", "mode=1777", mode}})
				continue
			}
			ms = append(ms, specs.Mount{Type: "bind", Source: m.Source, Destination: m.Destination,
				Options: []string{"rbind", "rprivate", mode}})
		}
		opts = append(opts, oci.WithMounts(ms))
	}
	return opts
}

// crunOCIVersion is the ociVersion crun gets in its config.json. crun 1.8
// (Debian 12) refuses a spec whose ociVersion is not 1.0.x ("unknown
// version specified"), and the containerd client writes the version of the
// runtime-spec module it was built with (1.3.0). The spec the runtime
// writes uses no field newer than 1.0.2, which runc 1.1 and crun 1.8 both
// speak.
const crunOCIVersion = "1.0.2"

// withOCIVersion sets the spec's ociVersion.
func withOCIVersion(v string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Version = v
		return nil
	}
}

// swapAccounted reports whether cgroup v1 accounts memory+swap here (setting
// memory.memsw.limit_in_bytes fails where it does not). On cgroup v2 runc
// translates the swap value itself.
func swapAccounted() bool {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}
