package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
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
	// LogPath receives stdout and stderr, appended (see ContainerLogPath).
	LogPath  string
	Hostname string
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

// Create makes the container (record, rootfs snapshot, OCI spec) without
// starting it. An existing container with the same ID counts as success and
// is left as it is (the ID is deterministic, so it holds the same spec). The
// image must be present (EnsureImage), or Create fails with
// ErrImageNotPresent.
func (r *Runtime) Create(ctx context.Context, spec ContainerSpec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	ref, err := NormalizeRef(spec.Image)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	if spec.LogPath != "" {
		labels[LabelLogPath] = spec.LogPath
	}
	return r.call(ctx, func(ctx context.Context, c *client.Client) error {
		if _, err := c.LoadContainer(ctx, spec.ID); err == nil {
			return nil
		} else if !errdefs.IsNotFound(err) {
			return err
		}
		img, err := c.GetImage(ctx, ref)
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("%w: container %s: image %s", ErrImageNotPresent, spec.ID, ref)
		}
		if err != nil {
			return err
		}
		// A snapshot left by an earlier attempt that failed half-way would
		// make WithNewSnapshot fail; it belongs to no container.
		_ = c.SnapshotService(r.cfg.Snapshotter).Remove(ctx, spec.ID)

		var runtimeOpts any
		if r.cfg.RuncRoot != "" {
			runtimeOpts = &options.Options{Root: r.cfg.RuncRoot}
		}
		_, err = c.NewContainer(ctx, spec.ID,
			client.WithContainerLabels(labels),
			client.WithImage(img),
			client.WithSnapshotter(r.cfg.Snapshotter),
			client.WithNewSnapshot(spec.ID, img),
			client.WithRuntime("io.containerd.runc.v2", runtimeOpts),
			client.WithNewSpec(r.specOpts(spec, img)...))
		if errdefs.IsAlreadyExists(err) {
			return nil // a concurrent or retried Create won
		}
		if err != nil {
			_ = c.SnapshotService(r.cfg.Snapshotter).Remove(ctx, spec.ID)
			return fmt.Errorf("create container %s: %w", spec.ID, err)
		}
		return nil
	})
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
	opts = append(opts,
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}),
		oci.WithNoNewPrivileges,
		seccomp.WithDefaultProfile(),
	)
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

// Start creates the container's task with its output appended to the
// container's log file and starts it. A running (or paused) task counts as
// success. A task that already ran and exited is ErrExited: a restart is a
// new attempt. A failed start removes the task and shim it left (the
// container record stays for the caller to Remove) and wraps ErrStart.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.call(ctx, func(ctx context.Context, c *client.Client) error {
		ctr, err := c.LoadContainer(ctx, id)
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		task, err := ctr.Task(ctx, nil)
		switch {
		case err == nil:
			st, err := task.Status(ctx)
			if err != nil {
				return err
			}
			switch st.Status {
			case client.Running, client.Paused, client.Pausing:
				return nil
			case client.Stopped:
				return fmt.Errorf("%w: %s (exit code %d)", ErrExited, id, st.ExitStatus)
			}
			// Created but not started: an earlier Start stopped half-way.
			return r.startTask(ctx, c, ctr, task)
		case !errdefs.IsNotFound(err):
			return err
		}
		labels, err := ctr.Labels(ctx)
		if err != nil {
			return err
		}
		creator := cio.NullIO
		if p := labels[LabelLogPath]; p != "" {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("%w: %s: log directory: %v", ErrStart, id, err)
			}
			creator = cio.LogFile(p)
		}
		task, err = ctr.NewTask(ctx, creator)
		if err != nil {
			r.cleanupTask(ctx, ctr)
			if isUnavailable(err) {
				return err
			}
			return fmt.Errorf("%w: %s: create task: %v", ErrStart, id, err)
		}
		return r.startTask(ctx, c, ctr, task)
	})
}

func (r *Runtime) startTask(ctx context.Context, c *client.Client, ctr client.Container, task client.Task) error {
	if err := task.Start(ctx); err != nil {
		if isUnavailable(err) {
			return err
		}
		r.cleanupTask(ctx, ctr)
		return fmt.Errorf("%w: %s: start task: %v", ErrStart, ctr.ID(), err)
	}
	// Best effort: List falls back to no start time when this fails.
	_, _ = ctr.SetLabels(ctx, map[string]string{LabelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)})
	return nil
}

// cleanupTask deletes whatever task a failed NewTask or Start left behind
// (killing its process), so only the container record remains.
func (r *Runtime) cleanupTask(ctx context.Context, ctr client.Container) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if task, err := ctr.Task(ctx, nil); err == nil {
		_, _ = task.Delete(ctx, client.WithProcessKill)
	}
}

// Stop sends SIGTERM to the container's main process, waits up to grace for
// it to exit, then sends SIGKILL and waits for the exit (bounded by ctx). An
// absent container, a container without a task and an exited task count as
// success. The exited task stays, with its exit code, until Remove.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	return r.call(ctx, func(ctx context.Context, c *client.Client) error {
		ctr, err := c.LoadContainer(ctx, id)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		task, err := ctr.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		st, err := task.Status(ctx)
		if err != nil {
			return err
		}
		if st.Status == client.Stopped {
			return nil
		}
		// Wait before Kill so the exit cannot be missed.
		waitCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		exited, err := task.Wait(waitCtx)
		if err != nil {
			return err
		}
		signal := syscall.SIGTERM
		if st.Status == client.Created {
			signal = syscall.SIGKILL // never started: nothing to be graceful with
		}
		if err := task.Kill(ctx, signal); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop %s: %v: %w", id, signal, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop %s: SIGKILL: %w", id, err)
		}
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// Remove deletes the container's task (killing its process if it still
// runs: Stop first for a graceful end), the container record and its
// snapshot. An absent container is success; a snapshot left by a failed
// Create is removed too.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	return r.call(ctx, func(ctx context.Context, c *client.Client) error {
		ctr, err := c.LoadContainer(ctx, id)
		if errdefs.IsNotFound(err) {
			err := c.SnapshotService(r.cfg.Snapshotter).Remove(ctx, id)
			if err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("remove snapshot %s: %w", id, err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if task, err := ctr.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("remove %s: delete task: %w", id, err)
			}
		} else if !errdefs.IsNotFound(err) {
			return err
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: %w", id, err)
		}
		return nil
	})
}

// State of a container.
type State string

const (
	StateCreated State = "created" // no task, or a task not started yet
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Status is one container as List sees it.
type Status struct {
	ID         string
	Labels     map[string]string
	Image      string
	State      State
	PID        uint32 // main process, when running
	ExitCode   int    // when exited; 137 after SIGKILL or OOM kill
	CreatedAt  time.Time
	StartedAt  time.Time // zero when never started (or not recorded)
	FinishedAt time.Time // when exited
	OOMKilled  bool      // containerd reported an OOM kill in this container
	LogPath    string
}

// List returns every container of the namespace with its state, in two
// calls to containerd whatever the number of containers.
func (r *Runtime) List(ctx context.Context) ([]Status, error) {
	var out []Status
	err := r.call(ctx, func(ctx context.Context, c *client.Client) error {
		out = nil
		infos, err := c.ContainerService().List(ctx)
		if err != nil {
			return err
		}
		resp, err := c.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
		if err != nil {
			return err
		}
		procs := map[string]*tasktypes.Process{}
		for _, p := range resp.Tasks {
			procs[p.ID] = p
		}
		for _, info := range infos {
			s := Status{
				ID:        info.ID,
				Labels:    info.Labels,
				Image:     info.Image,
				State:     StateCreated,
				CreatedAt: info.CreatedAt,
				OOMKilled: info.Labels[LabelOOMKilled] == "true",
				LogPath:   info.Labels[LabelLogPath],
			}
			if t, err := time.Parse(time.RFC3339Nano, info.Labels[LabelStartedAt]); err == nil {
				s.StartedAt = t
			}
			if p := procs[info.ID]; p != nil {
				switch p.Status {
				case tasktypes.Status_CREATED:
					s.State = StateCreated
				case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
					s.State, s.PID = StateRunning, p.Pid
				case tasktypes.Status_STOPPED:
					s.State, s.ExitCode = StateExited, int(p.ExitStatus)
					if p.ExitedAt != nil {
						s.FinishedAt = p.ExitedAt.AsTime()
					}
				default:
					s.State = StateUnknown
				}
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// Exec runs cmd in the running container, with the container's environment,
// user and working directory, without a terminal or stdin, copying its
// output to stdout and stderr (nil discards). It returns the exit code once
// the command has exited and its output has been copied. Cancelling ctx
// kills the command.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	if len(cmd) == 0 {
		return -1, errors.New("exec: empty command")
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var ctr client.Container
	var task client.Task
	err := r.call(ctx, func(ctx context.Context, c *client.Client) error {
		var err error
		ctr, err = c.LoadContainer(ctx, id)
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		task, err = ctr.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", ErrNotRunning, id)
		}
		return err
	})
	if err != nil {
		return -1, err
	}
	ctx = r.ns(ctx)
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return -1, err
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	execID := "exec-" + randomHex(8)
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, stdout, stderr)))
	if err != nil {
		if errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) {
			return -1, fmt.Errorf("%w: %s: %v", ErrNotRunning, id, err)
		}
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = proc.Delete(dctx, client.WithProcessKill)
	}
	exited, err := proc.Wait(ctx)
	if err != nil {
		cleanup()
		return -1, err
	}
	if err := proc.Start(ctx); err != nil {
		cleanup()
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	select {
	case st := <-exited:
		// All output is copied once the process's pipes reach EOF.
		proc.IO().Wait()
		cleanup()
		code, _, err := st.Result()
		if err != nil {
			return -1, err
		}
		return int(code), nil
	case <-ctx.Done():
		cleanup()
		return -1, ctx.Err()
	}
}
