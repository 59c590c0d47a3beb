package kubelet

// Exec, attach and port-forward as kubectl speaks them (see agent/streams):
// the API server routes .../pods/{name}/exec, /attach and /portforward to
// the agent that runs the pod; these handlers answer there.

import (
	"context"
	"errors"
	"fmt"
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
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	go func() {
		select {
		case <-sess.Gone():
			cancel()
		case <-ctx.Done():
		}
	}()
	var resize chan runtime.TermSize
	if opts.TTY {
		resize = make(chan runtime.TermSize, streams.MaxResizeQueue)
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
	}
	code, err := l.cfg.Runtime.ExecStream(ctx, latest.ID, runtime.ExecIO{
		Cmd: opts.Command, Stdin: sess.Stdin(), Stdout: sess.Stdout(), Stderr: sess.Stderr(),
		TTY: opts.TTY, Resize: resize,
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
// WebSocket or SPDY (see agent/streams): the output of the container's running
// attempt from now on, until it ends or the client goes away. Containers
// run without stdin, so stdin=true is refused.
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
		path := latest.LogPath
		if path == "" {
			path = runtime.ContainerLogPath(l.cfg.LogDir, w.ref.Namespace, w.ref.Name, w.uid, container, latest.Attempt)
		}
		f, err := os.Open(path)
		if err != nil {
			writeNodeError(rw, api.NewInternalError(fmt.Errorf("log of %s: %w", container, err)))
			return
		}
		defer f.Close()
		off, err := f.Seek(0, 2)
		if err != nil {
			writeNodeError(rw, api.NewInternalError(fmt.Errorf("log of %s: %w", container, err)))
			return
		}
		sess, err := streams.UpgradeCommand(rw, r, opts)
		if err != nil {
			return
		}
		out := sess.Stdout()
		if out == nil {
			out = sess.Stderr() // the log holds both streams, as one
		}
		running := func() bool {
			_, _, a, se := l.runningAttempt(r, "attach")
			return se == nil && a.ID == latest.ID
		}
		err = followFrom(f, off, out, sess.Gone(), running)
		st := streams.ExitStatus(0)
		if err != nil {
			st = streams.ErrorStatus(fmt.Errorf("attach to %s: %w", container, err))
		}
		_ = sess.Finish(st)
	})
}

// checkAttach checks an attach request before the upgrade.
func (l *Loop) checkAttach(r *http.Request) (streams.CommandOptions, *podWorker, string, attemptObs, *api.StatusError) {
	opts, err := streams.ParseCommandOptions(r, false)
	if err != nil {
		return opts, nil, "", attemptObs{}, api.NewBadRequest("%v", err)
	}
	if opts.Stdin {
		return opts, nil, "", attemptObs{}, api.NewBadRequest("query parameter stdin: Shoal runs containers without standard input, attach streams their output only")
	}
	w, container, latest, se := l.runningAttempt(r, "attach")
	return opts, w, container, latest, se
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
