package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
)

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

// randomHex returns n random bytes in hex, for exec process IDs.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
