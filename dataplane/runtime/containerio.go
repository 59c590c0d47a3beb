package runtime

// The output of a container with a log path goes through FIFOs the agent
// reads (not to a file the shim writes): each chunk goes to the attach
// sessions open at that moment, and each line to the log file as a
// record with the time it was read (logformat.go). The container's stdin,
// when its spec asks for one, is a FIFO the agent holds open for the
// container's life, so attach sessions can write to it (the shim holds a
// writer of its own: the container's stdin ends only when the task's IO is
// closed through containerd, which StdinOnce does after the first
// session).
//
// The FIFOs live in <log path>.io/. An agent that restarts finds running
// containers' FIFOs through containerd (List) and reads them again; the
// shim holds its own ends, so what the container writes meanwhile waits
// in the pipe (64 KiB, then the container blocks on its writes).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
)

// Limits of container IO.
const (
	// AttachBuffer is how many chunks of output wait for one attach
	// session; a session further behind is dropped (the log keeps all).
	AttachBuffer = 256
	ioReadSize   = 32 << 10
)

// ErrNoAttach: the container's output does not pass through the agent
// (it was started by an older agent, into its log file directly).
var ErrNoAttach = errors.New("container output is not attachable")

// ErrNoStdin: the container has no open stdin (its spec has none, it was
// closed after the first attach with stdinOnce, or by an agent restart).
var ErrNoStdin = errors.New("container has no open stdin")

// logNow is the time records are stamped with (tests).
var logNow = time.Now

// containerIO is the agent's side of one running container's IO.
type containerIO struct {
	id        string
	dio       *cio.DirectIO
	log       *os.File
	dir       string
	stdinOnce bool
	done      chan struct{} // closed once all output is read and logged

	lmu sync.Mutex // one record at a time in log

	mu     sync.Mutex
	stdin  io.WriteCloser // nil: none, or closed
	subs   map[chan ioChunk]struct{}
	closed bool
}

type ioChunk struct {
	stream string
	data   []byte
}

func ioDir(logPath string) string { return logPath + ".io" }

// newTaskIO makes the FIFOs of a new task of container id and starts
// reading them; the task is created with the returned IO.
func (r *Runtime) newTaskIO(id, logPath string, stdin, stdinOnce, tty bool) (cio.IO, error) {
	dir := ioDir(logPath)
	_ = os.RemoveAll(dir) // a task that failed to start left it
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := cio.Config{Stdout: filepath.Join(dir, StreamStdout), Terminal: tty}
	if !tty {
		cfg.Stderr = filepath.Join(dir, StreamStderr)
	}
	if stdin {
		cfg.Stdin = filepath.Join(dir, "stdin")
	}
	c, err := r.openIO(id, logPath, cfg, stdinOnce)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c.dio, nil
}

// openIO opens the FIFOs of cfg and starts the goroutines that read them.
func (r *Runtime) openIO(id, logPath string, cfg cio.Config, stdinOnce bool) (*containerIO, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	// The FIFOs are opened for the task's whole life: not with the
	// caller's context, which ends with its request.
	dio, err := cio.NewDirectIO(context.Background(), cio.NewFIFOSet(cfg, nil))
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &containerIO{id: id, dio: dio, log: f, dir: filepath.Dir(cfg.Stdout), stdinOnce: stdinOnce,
		done: make(chan struct{}), stdin: dio.Stdin, subs: map[chan ioChunk]struct{}{}}
	r.iomu.Lock()
	if old := r.ios[id]; old != nil {
		old.shut(false)
	}
	r.ios[id] = c
	r.iomu.Unlock()
	var wg sync.WaitGroup
	for _, p := range []struct {
		stream string
		r      io.Reader
	}{{StreamStdout, dio.Stdout}, {StreamStderr, dio.Stderr}} {
		if p.r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.pump(p.stream, p.r)
		}()
	}
	go func() {
		wg.Wait()
		r.iomu.Lock()
		if r.ios[id] == c {
			delete(r.ios, id)
		}
		r.iomu.Unlock()
		c.shut(true)
	}()
	return c, nil
}

// resumeIO reads again the FIFOs of a running task whose reader was
// another agent process (List calls it for each running container).
// stdin is the container's LabelStdin.
func (r *Runtime) resumeIO(id, logPath, stdin string, p *tasktypes.Process) {
	if logPath == "" || p.Stdout == "" || filepath.Dir(p.Stdout) != ioDir(logPath) {
		return // output to a file, by an older agent; or not ours
	}
	r.iomu.Lock()
	_, ok := r.ios[id]
	if ok || r.ioClosed {
		r.iomu.Unlock()
		return
	}
	r.ios[id] = nil // reserved: one resume at a time
	r.iomu.Unlock()
	cfg := cio.Config{Stdout: p.Stdout, Stderr: p.Stderr, Terminal: p.Terminal}
	if stdin == "true" {
		// Not with StdinOnce: the first session may have closed it.
		cfg.Stdin = p.Stdin
	}
	_, err := r.openIO(id, logPath, cfg, false)
	if err != nil {
		r.iomu.Lock()
		if c, ok := r.ios[id]; ok && c == nil {
			delete(r.ios, id)
		}
		r.iomu.Unlock()
	}
}

// pump reads one output stream to its end: each chunk to the attach
// sessions, each line to the log.
func (c *containerIO) pump(stream string, r io.Reader) {
	buf := make([]byte, ioReadSize)
	var line []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.publish(stream, buf[:n])
			line = append(line, buf[:n]...)
			line = c.logLines(stream, line)
		}
		if err != nil {
			if len(line) > 0 {
				c.record(stream, true, line) // output that ended without a newline
			}
			return
		}
	}
}

// logLines writes the full lines in pending (and cuts those longer than
// MaxLogLine), and returns what is left of it.
func (c *containerIO) logLines(stream string, pending []byte) []byte {
	for {
		i := strings.IndexByte(string(pending), '\n')
		switch {
		case i >= 0 && i <= MaxLogLine:
			c.record(stream, false, pending[:i])
			pending = pending[i+1:]
		case len(pending) >= MaxLogLine:
			c.record(stream, true, pending[:MaxLogLine])
			pending = pending[MaxLogLine:]
		default:
			return append(pending[:0:0], pending...)
		}
	}
}

func (c *containerIO) record(stream string, partial bool, text []byte) {
	b := AppendLogRecord(make([]byte, 0, len(text)+48), logNow(), stream, partial, text)
	c.lmu.Lock()
	defer c.lmu.Unlock()
	_, _ = c.log.Write(b) // O_APPEND: whole records, even across rotation
}

// publish hands a copy of p to every attach session; one whose buffer is
// full is dropped (its channel closed).
func (c *containerIO) publish(stream string, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subs) == 0 {
		return
	}
	ch := ioChunk{stream: stream, data: append([]byte(nil), p...)}
	for s := range c.subs {
		select {
		case s <- ch:
		default:
			delete(c.subs, s)
			close(s)
		}
	}
}

// shut ends the IO: the output has ended (ended) or the runtime closes.
// Only an ended task's FIFO directory is removed.
func (c *containerIO) shut(ended bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for s := range c.subs {
		delete(c.subs, s)
		close(s)
	}
	c.stdin = nil
	c.mu.Unlock()
	_ = c.dio.Close()
	c.lmu.Lock()
	_ = c.log.Close()
	c.lmu.Unlock()
	if ended {
		_ = os.RemoveAll(c.dir)
	}
	close(c.done)
}

// closeIO stops reading every container's output (Close): the containers
// run on, and the next agent reads their FIFOs.
func (r *Runtime) closeIO() {
	r.iomu.Lock()
	r.ioClosed = true
	var all []*containerIO
	for _, c := range r.ios {
		if c != nil {
			all = append(all, c)
		}
	}
	r.iomu.Unlock()
	for _, c := range all {
		c.shut(false)
		<-c.done
	}
}

// AttachIO is what Attach wires to a running container.
type AttachIO struct {
	// Stdin, if set, is copied to the container's stdin (ErrNoStdin if it
	// has none); its EOF closes the container's stdin when the spec says
	// StdinOnce, and else leaves it open for the next session.
	Stdin io.Reader
	// Stdout and Stderr receive the output from now on (nil discards);
	// with a terminal everything comes as stdout.
	Stdout, Stderr io.Writer
	// Resize carries terminal sizes (containers with TTY); may be nil.
	Resize <-chan TermSize
}

// Attach wires a to container id's IO until its output ends (it exited)
// or ctx ends. ErrNoAttach for a container whose output the agent does not
// read.
func (r *Runtime) Attach(ctx context.Context, id string, a AttachIO) error {
	r.iomu.Lock()
	c := r.ios[id]
	r.iomu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNoAttach, id)
	}
	sub := make(chan ioChunk, AttachBuffer)
	c.mu.Lock()
	stdin, closed := c.stdin, c.closed
	switch {
	case closed:
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotRunning, id)
	case a.Stdin != nil && stdin == nil:
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoStdin, id)
	}
	c.subs[sub] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if _, ok := c.subs[sub]; ok {
			delete(c.subs, sub)
			close(sub)
		}
		c.mu.Unlock()
	}()
	if a.Stdin != nil {
		go func() {
			if c.feedStdin(stdin, a.Stdin) {
				// The shim keeps the stdin open until told.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = r.taskCall(ctx, id, func(ctx context.Context, t client.Task) error {
					return t.CloseIO(ctx, client.WithStdinCloser)
				})
			}
		}()
	}
	if a.Resize != nil {
		go r.resizeTask(ctx, id, a.Resize, c.done)
	}
	for {
		select {
		case ch, ok := <-sub:
			if !ok {
				if c.isClosed() {
					return nil
				}
				return errors.New("attach: the client fell behind the container's output")
			}
			w := a.Stdout
			if ch.stream == StreamStderr {
				w = a.Stderr
			}
			if w != nil {
				if _, err := w.Write(ch.data); err != nil {
					return nil // the client went away
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *containerIO) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// feedStdin copies from to the container's stdin w; with stdinOnce, the
// end of from closes the agent's writer and reports true: the task's stdin
// must be closed.
func (c *containerIO) feedStdin(w io.Writer, from io.Reader) bool {
	_, _ = io.Copy(w, from)
	if !c.stdinOnce {
		return false
	}
	c.mu.Lock()
	in := c.stdin
	c.stdin = nil
	c.mu.Unlock()
	if in != nil {
		_ = in.Close()
	}
	return true
}

// taskCall runs fn on container id's task.
func (r *Runtime) taskCall(ctx context.Context, id string, fn func(ctx context.Context, t client.Task) error) error {
	return r.call(ctx, func(ctx context.Context, c *client.Client) error {
		ctr, err := c.LoadContainer(ctx, id)
		if err != nil {
			return err
		}
		task, err := ctr.Task(ctx, nil)
		if err != nil {
			return err
		}
		return fn(ctx, task)
	})
}

// resizeTask applies each size to container id's terminal until sizes
// closes or done does.
func (r *Runtime) resizeTask(ctx context.Context, id string, sizes <-chan TermSize, done <-chan struct{}) {
	for {
		var sz TermSize
		select {
		case s, ok := <-sizes:
			if !ok {
				return
			}
			sz = s
		case <-done:
			return
		case <-ctx.Done():
			return
		}
		_ = r.taskCall(ctx, id, func(ctx context.Context, t client.Task) error {
			return t.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
		})
	}
}
