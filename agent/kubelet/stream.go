package kubelet

// Exec, attach and port-forward as kubectl speaks them (see agent/streams):
// the API server routes .../pods/{name}/exec, /attach and /portforward to
// the agent that runs the pod; these handlers answer there.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/agent/streams"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// checkExec checks an exec request as serveExecStream does before the
// upgrade.
func (l *Loop) checkExec(r *http.Request) (streams.CommandOptions, string, attemptObs, *api.StatusError) {
	opts, err := streams.ParseCommandOptions(r, true)
	if err != nil {
		return opts, "", attemptObs{}, api.NewBadRequest("%v", err)
	}
	_, container, latest, se := l.runningAttempt(r, "exec")
	return opts, container, latest, se
}

// runningAttempt checks the request's options and finds the running
// attempt of the container it names.
func (l *Loop) runningAttempt(r *http.Request, sub string) (*podWorker, string, attemptObs, *api.StatusError) {
	w, container, attempts, se := l.podContainer(r, sub)
	if se != nil {
		return nil, "", attemptObs{}, se
	}
	latest := attempts[len(attempts)-1]
	if latest.State != runtime.StateRunning {
		return nil, "", attemptObs{}, api.NewBadRequest("container %s is not running", container)
	}
	return w, container, latest, nil
}

// serveExecStream runs an exec over a WebSocket or SPDY: the command's streams on
// the channels the client asked for, its exit code in the Status that ends
// the session.
func (l *Loop) serveExecStream(rw http.ResponseWriter, r *http.Request) {
	opts, container, latest, se := l.checkExec(r)
	if se != nil {
		writeNodeError(rw, se)
		return
	}
	sess, err := streams.UpgradeCommand(rw, r, opts)
	if err != nil {
		return // answered
	}
	// The command ends with the client: a kubectl that goes away kills it.
	ctx, cancel := sessionContext(r, sess)
	defer cancel()
	code, err := l.cfg.Runtime.ExecStream(ctx, latest.ID, runtime.ExecIO{
		Cmd: opts.Command, Stdin: sess.Stdin(), Stdout: sess.Stdout(), Stderr: sess.Stderr(),
		TTY: opts.TTY, Resize: termSizes(ctx, sess, opts.TTY),
	})
	var st api.Status
	switch {
	case errors.Is(err, runtime.ErrNotRunning), errors.Is(err, runtime.ErrNotFound):
		st = streams.ErrorStatus(api.NewBadRequest("container %s is not running", container))
	case err != nil:
		st = streams.ErrorStatus(fmt.Errorf("exec in %s: %w", container, err))
	default:
		st = streams.ExitStatus(code)
	}
	_ = sess.Finish(st)
}

// AttachHandler serves .../namespaces/{ns}/pods/{name}/attach over a
// WebSocket or SPDY (see agent/streams): the output of the container's
// running attempt from now on, until it ends or the client goes away; with
// stdin=true, the session's input to the container's stdin (its spec must
// have stdin: true), and with tty=true the terminal's sizes (tty: true).
func (l *Loop) AttachHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !streams.IsCommandUpgrade(r) {
			writeNodeError(rw, api.NewBadRequest("attach needs an upgrade: WebSocket (subprotocol %s or %s) or SPDY/3.1 (%s)",
				streams.ProtocolV5, streams.ProtocolV4, strings.Join(streams.SPDYCommandProtocols, ", ")))
			return
		}
		opts, w, container, latest, se := l.checkAttach(r)
		if se != nil {
			writeNodeError(rw, se)
			return
		}
		// Where the log ends now, before the upgrade, for a container
		// whose output does not pass through the agent.
		f, off, ferr := l.openLogEnd(w, container, latest)
		if f != nil {
			defer f.Close()
		}
		sess, err := streams.UpgradeCommand(rw, r, opts)
		if err != nil {
			return
		}
		ctx, cancel := sessionContext(r, sess)
		defer cancel()
		err = runtime.ErrNoAttach
		if at, ok := l.cfg.Runtime.(Attacher); ok {
			err = at.Attach(ctx, latest.ID, runtime.AttachIO{
				Stdin: sess.Stdin(), Stdout: sess.Stdout(), Stderr: sess.Stderr(), Resize: termSizes(ctx, sess, opts.TTY),
			})
		}
		if errors.Is(err, runtime.ErrNoAttach) && !opts.Stdin {
			// Started by an older agent: its output goes to its log file.
			err = ferr
			if f != nil {
				err = l.followAttempt(ctx, r, f, off, latest, sess)
			}
		}
		st := streams.ExitStatus(0)
		if err != nil && ctx.Err() == nil {
			st = streams.ErrorStatus(fmt.Errorf("attach to %s: %w", container, err))
		}
		_ = sess.Finish(st)
	})
}

// sessionContext is a context that ends when the client of sess goes
// away (the request's own may end with the upgrade).
func sessionContext(r *http.Request, sess streams.Session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	go func() {
		select {
		case <-sess.Gone():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// termSizes passes the session's terminal sizes to the runtime (nil
// without a terminal).
func termSizes(ctx context.Context, sess streams.Session, tty bool) chan runtime.TermSize {
	if !tty {
		return nil
	}
	resize := make(chan runtime.TermSize, streams.MaxResizeQueue)
	go func() {
		defer close(resize)
		for sz := range sess.Resize() {
			select {
			case resize <- runtime.TermSize{Width: sz.Width, Height: sz.Height}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return resize
}

// openLogEnd opens the attempt's log file and finds its end.
func (l *Loop) openLogEnd(w *podWorker, container string, latest attemptObs) (*os.File, int64, error) {
	path := latest.LogPath
	if path == "" {
		path = runtime.ContainerLogPath(l.cfg.LogDir, w.ref.Namespace, w.ref.Name, w.uid, container, latest.Attempt)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, off, nil
}

// followAttempt sends what the attempt appends to its log file f after
// off, until it ends or the client goes away: attach to a container whose
// output does not pass through the agent.
func (l *Loop) followAttempt(ctx context.Context, r *http.Request, f *os.File, off int64, latest attemptObs, sess streams.Session) error {
	out := sess.Stdout()
	if out == nil {
		out = sess.Stderr() // the log holds both streams, as one
	}
	running := func() bool {
		_, _, a, se := l.runningAttempt(r, "attach")
		return se == nil && a.ID == latest.ID
	}
	return followFrom(f, off, out, ctx.Done(), running)
}

// checkAttach checks an attach request before the upgrade: stdin and tty
// only where the container's spec has them.
func (l *Loop) checkAttach(r *http.Request) (streams.CommandOptions, *podWorker, string, attemptObs, *api.StatusError) {
	opts, err := streams.ParseCommandOptions(r, false)
	if err != nil {
		return opts, nil, "", attemptObs{}, api.NewBadRequest("%v", err)
	}
	w, container, latest, se := l.runningAttempt(r, "attach")
	if se != nil {
		return opts, nil, "", attemptObs{}, se
	}
	w.mu.Lock()
	pod := w.pod
	w.mu.Unlock()
	var c api.Container
	if pod != nil {
		c, _ = findContainer(pod, container)
	}
	switch {
	case opts.Stdin && !c.Stdin:
		return opts, nil, "", attemptObs{}, api.NewBadRequest("query parameter stdin: container %s has spec.containers[].stdin false, its standard input is closed", container)
	case opts.TTY && !c.TTY:
		return opts, nil, "", attemptObs{}, api.NewBadRequest("query parameter tty: container %s has spec.containers[].tty false, it has no terminal", container)
	}
	return opts, w, container, latest, nil
}

// followFrom copies what is appended to f from off to out, every
// runtime.FollowPoll, until gone is closed or alive reports false (then
// after a last copy). A truncated file (log rotation) is read from its
// start again.
func followFrom(f *os.File, off int64, out interface{ Write([]byte) (int, error) }, gone <-chan struct{}, alive func() bool) error {
	t := time.NewTicker(runtime.FollowPoll)
	defer t.Stop()
	buf := make([]byte, 32<<10)
	for {
		last := !alive()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() < off {
			off = 0
		}
		for off < fi.Size() {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), fi.Size()-off)], off)
			if n > 0 {
				if _, werr := out.Write(buf[:n]); werr != nil {
					return nil // the client went away
				}
				off += int64(n)
			}
			if err != nil {
				break
			}
		}
		if last {
			return nil
		}
		select {
		case <-gone:
			return nil
		case <-t.C:
		}
	}
}

// PortForwardHandler serves .../namespaces/{ns}/pods/{name}/portforward
// (see agent/streams): each forwarded connection dials the pod's IP, from
// the network namespace pods live in (Config.ProbeDial).
func (l *Loop) PortForwardHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !streams.IsPortForwardUpgrade(r) {
			writeNodeError(rw, api.NewBadRequest("port-forward needs an upgrade: WebSocket with subprotocol %s, or SPDY/3.1 with protocol %s",
				streams.TunnelProtocol, streams.PortForwardProtocol))
			return
		}
		ns, name, ok := podSubresource(r.URL.Path, "portforward")
		if !ok {
			writeNodeError(rw, api.NewBadRequest("path %q is not .../namespaces/{ns}/pods/{name}/portforward", r.URL.Path))
			return
		}
		w := l.workerByName(ns, name)
		if w == nil {
			writeNodeError(rw, podNotFound(name))
			return
		}
		if podIP(w) == "" {
			writeNodeError(rw, api.NewBadRequest("pod %s has no network yet", name))
			return
		}
		dial := l.cfg.ProbeDial
		if dial == nil {
			var d net.Dialer
			dial = d.DialContext
		}
		streams.ServePortForward(r.Context(), rw, r, func(ctx context.Context, port uint16) (net.Conn, error) {
			ip := podIP(w) // the pod's address now: it may have been restarted
			if ip == "" {
				return nil, fmt.Errorf("pod %s has no network", name)
			}
			return dial(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
		})
	})
}

func podIP(w *podWorker) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.podIP
}
