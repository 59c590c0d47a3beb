package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
)

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
	switch {
	case spec.Stdin && spec.StdinOnce:
		labels[LabelStdin] = "once"
	case spec.Stdin:
		labels[LabelStdin] = "true"
	}
	if spec.TTY {
		labels[LabelTTY] = "true"
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

		// The shim stores these with the container: its task runs under
		// this binary whatever a later agent is configured with.
		var runtimeOpts any
		if r.cfg.RuncRoot != "" || r.oci != OCIRuntimeRunc {
			opts := &options.Options{Root: r.cfg.RuncRoot}
			if r.oci != OCIRuntimeRunc {
				opts.BinaryName = r.oci
			}
			runtimeOpts = opts
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

// Start creates the container's task with its output read by the agent
// into the container's log file (containerio.go) and starts it. A running (or paused) task counts as
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
			stdin, tty := labels[LabelStdin], labels[LabelTTY] == "true"
			creator = func(string) (cio.IO, error) {
				return r.newTaskIO(id, p, stdin != "", stdin == "once", tty)
			}
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
		labels, _ := ctr.Labels(ctx)
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
		if p := labels[LabelLogPath]; p != "" {
			_ = os.RemoveAll(ioDir(p)) // left when the agent was away as the task ended
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
					r.resumeIO(info.ID, s.LogPath, info.Labels[LabelStdin], p)
				case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
					s.State, s.PID = StateRunning, p.Pid
					r.resumeIO(info.ID, s.LogPath, info.Labels[LabelStdin], p)
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
