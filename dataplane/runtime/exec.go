package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
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
	return r.ExecStream(ctx, id, ExecIO{Cmd: cmd, Stdout: stdout, Stderr: stderr})
}

// TermSize is a terminal's size in characters.
type TermSize struct {
	Width, Height uint16
}

// ExecIO is what ExecStream runs and the streams it is wired to.
type ExecIO struct {
	// Cmd is the command and its arguments; required.
	Cmd []string
	// Stdin, if set, is copied to the command's standard input; when it
	// returns EOF the command's standard input is closed.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output (nil discards). With
	// TTY, the terminal's output goes to Stdout and Stderr is unused.
	Stdout, Stderr io.Writer
	// TTY runs the command on a terminal.
	TTY bool
	// Resize, with TTY, carries the terminal's size changes; it may be nil.
	Resize <-chan TermSize
}

// ExecStream runs e.Cmd in the running container, with the container's
// environment, user and working directory, wired to e's streams. It
// returns the exit code once the command has exited and its output has
// been copied. Cancelling ctx kills the command.
func (r *Runtime) ExecStream(ctx context.Context, id string, e ExecIO) (int, error) {
	if len(e.Cmd) == 0 {
		return -1, errors.New("exec: empty command")
	}
	stdout, stderr := e.Stdout, e.Stderr
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
	pspec.Args = e.Cmd
	pspec.Terminal = e.TTY
	// stdinEOF is closed once e.Stdin has returned EOF (or an error), so
	// that the command's stdin is then closed.
	var stdin io.Reader
	stdinEOF := make(chan struct{})
	if e.Stdin != nil {
		stdin = &eofReader{r: e.Stdin, eof: stdinEOF}
	}
	opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if e.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	execID := "exec-" + randomHex(8)
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(opts...))
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
	done := make(chan struct{})
	defer close(done)
	if e.Stdin != nil {
		go func() {
			select {
			case <-stdinEOF:
				_ = proc.CloseIO(ctx, client.WithStdinCloser)
			case <-done:
			}
		}()
	}
	if e.TTY && e.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-e.Resize:
					if !ok {
						return
					}
					_ = proc.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
				case <-done:
					return
				}
			}
		}()
	}
	select {
	case st := <-exited:
		// All output is copied once the process's pipes reach EOF (Wait
		// does not wait for the copy of stdin; the caller ends its
		// reader).
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

// eofReader closes eof once r has returned an error (io.EOF included).
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// randomHex returns n random bytes in hex, for exec process IDs.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
