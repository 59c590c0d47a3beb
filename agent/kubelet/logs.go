package kubelet

// Logs and exec of the pods this node runs. The API server routes
// /api/v1/namespaces/{ns}/pods/{name}/log and .../exec to the node hosting
// the pod (by its Node's daemonEndpoints.api); these handlers answer there.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/shoal-dev/shoal/agent/streams"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// ExecResult is the answer of the exec handler (non-interactive).
type ExecResult struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exitCode"`
	// Truncated: stdout or stderr exceeded MaxExecOutput and was cut.
	Truncated bool `json:"truncated,omitempty"`
}

// MaxExecOutput bounds each of an exec's stdout and stderr as returned.
const MaxExecOutput = 4 << 20

// podSubresource parses ".../namespaces/{ns}/pods/{name}/{sub}".
func podSubresource(path, sub string) (ns, name string, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	n := len(parts)
	if n < 5 || parts[n-1] != sub || parts[n-3] != "pods" || parts[n-5] != "namespaces" {
		return "", "", false
	}
	return parts[n-4], parts[n-2], parts[n-4] != "" && parts[n-2] != ""
}

func writeNodeError(w http.ResponseWriter, se *api.StatusError) {
	st := se.Status()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}

func podNotFound(name string) *api.StatusError {
	info, _ := api.LookupKind("Pod")
	return api.NewNotFound(info, name)
}

// podContainer finds the pod's worker and the attempts of the container the
// request names (or of its only container).
func (l *Loop) podContainer(r *http.Request, sub string) (*podWorker, string, []attemptObs, *api.StatusError) {
	ns, name, ok := podSubresource(r.URL.Path, sub)
	if !ok {
		return nil, "", nil, api.NewBadRequest("path %q is not .../namespaces/{ns}/pods/{name}/%s", r.URL.Path, sub)
	}
	w := l.workerByName(ns, name)
	if w == nil {
		return nil, "", nil, podNotFound(name)
	}
	w.mu.Lock()
	pod, view := w.pod, w.view
	w.mu.Unlock()
	container := r.URL.Query().Get("container")
	if container == "" {
		switch {
		case pod != nil && len(pod.Spec.Containers) == 1:
			container = pod.Spec.Containers[0].Name
		case pod != nil:
			var names []string
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			return nil, "", nil, api.NewBadRequest("a container name must be specified for pod %s, choose one of: [%s]", name, strings.Join(names, " "))
		case len(view) == 1:
			for c := range view {
				container = c
			}
		default:
			return nil, "", nil, api.NewBadRequest("a container name must be specified for pod %s", name)
		}
	}
	attempts := view[container]
	if len(attempts) == 0 {
		if pod != nil {
			if _, ok := findContainer(pod, container); ok {
				return nil, "", nil, api.NewBadRequest("container %q in pod %q is waiting to start", container, name)
			}
		}
		return nil, "", nil, api.NewBadRequest("container %s is not valid for pod %s", container, name)
	}
	return w, container, attempts, nil
}

// LogHandler serves GET .../namespaces/{ns}/pods/{name}/log with the
// query parameters of ParseLogOptions, as text. With follow it streams
// until the attempt ends or the client goes away.
func (l *Loop) LogHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeNodeError(rw, api.NewStatusError(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, nil, "%s is not allowed on pod logs", r.Method))
			return
		}
		o, err := ParseLogOptions(r.URL.Query(), l.cfg.Now())
		if err != nil {
			writeNodeError(rw, api.NewBadRequest("%v", err))
			return
		}
		w, container, attempts, se := l.podContainer(r, "log")
		if se != nil {
			writeNodeError(rw, se)
			return
		}
		latest := attempts[len(attempts)-1]
		path := latest.LogPath
		if path == "" {
			path = runtime.ContainerLogPath(l.cfg.LogDir, w.ref.Namespace, w.ref.Name, w.uid, container, latest.Attempt)
		}
		follow, started := o.Follow, latest.StartedAt
		if o.Previous {
			if len(attempts) < 2 {
				writeNodeError(rw, api.NewBadRequest("previous terminated container %q in pod %q not found", container, w.ref.Name))
				return
			}
			if path, err = runtime.PreviousLogPath(path); err != nil {
				writeNodeError(rw, api.NewBadRequest("previous terminated container %q in pod %q: %v", container, w.ref.Name, err))
				return
			}
			follow, started = false, attempts[len(attempts)-2].StartedAt
		}
		if _, err := os.Stat(path); err != nil {
			writeNodeError(rw, api.NewInternalError(fmt.Errorf("reading log of %s: %w", container, err)))
			return
		}
		files, approximate := sinceFiles(runtime.LogFiles(path), o.Since, started)
		allOlder := !o.Since.IsZero() && (started.IsZero() || started.Before(o.Since)) && !approximate
		var start logStart
		switch {
		case allOlder: // nothing logged since: only what comes (follow)
			start, err = tailStart(files, 0)
		case o.TailLines != nil:
			start, err = tailStart(files, *o.TailLines)
		}
		if err != nil {
			writeNodeError(rw, api.NewInternalError(fmt.Errorf("reading log of %s: %w", container, err)))
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if approximate && !hasRecords(files) {
			// kubectl prints Warning headers.
			rw.Header().Add("Warning", `299 - "sinceSeconds/sinceTime: this container's log was written by an older agent, without the time of each line; whole log files are left out or kept, so some older lines are included"`)
		}
		if o.Timestamps && !hasRecords(files) {
			rw.Header().Add("Warning", `299 - "timestamps: this container's log was written by an older agent, without the time of each line; its lines come unstamped"`)
		}
		fw := &flushWriter{w: rw}
		if f, ok := rw.(http.Flusher); ok && follow {
			fw.f = f
		}
		var lw io.Writer = fw
		if o.LimitBytes != nil {
			lw = &limitWriter{w: fw, n: *o.LimitBytes}
		}
		out := &recordWriter{w: lw, timestamps: o.Timestamps, since: o.Since}
		f, off, err := copyLogs(files, start, out)
		if f != nil {
			defer f.Close()
		}
		if err == nil && follow && f != nil {
			if fw.f != nil {
				fw.f.Flush() // the headers, even before any line
			}
			alive := func() bool {
				_, _, a, se := l.runningAttempt(r, "log")
				return se == nil && a.ID == latest.ID
			}
			err = followFrom(f, off, out, r.Context().Done(), alive)
		}
		if err == nil {
			err = out.Flush()
		}
		if err != nil && !errors.Is(err, errLimit) && !fw.wrote {
			writeNodeError(rw, api.NewInternalError(fmt.Errorf("reading log of %s: %w", container, err)))
		}
	})
}

type flushWriter struct {
	w     http.ResponseWriter
	f     http.Flusher
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if f.f != nil {
		f.f.Flush()
	}
	return n, err
}

// ExecHandler serves .../namespaces/{ns}/pods/{name}/exec: over a
// WebSocket or SPDY as kubectl speaks it (see serveExecStream), or as Shoal's own
// POST with the query parameters command (repeated, one per argument) and
// container, which runs the command to completion (no terminal, no stdin)
// and answers an ExecResult as JSON.
func (l *Loop) ExecHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if streams.IsCommandUpgrade(r) {
			l.serveExecStream(rw, r)
			return
		}
		if r.Method != http.MethodPost {
			writeNodeError(rw, api.NewStatusError(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, nil, "%s is not allowed on pod exec", r.Method))
			return
		}
		cmd := r.URL.Query()["command"]
		if len(cmd) == 0 {
			writeNodeError(rw, api.NewBadRequest("exec needs at least one command parameter"))
			return
		}
		_, container, attempts, se := l.podContainer(r, "exec")
		if se != nil {
			writeNodeError(rw, se)
			return
		}
		latest := attempts[len(attempts)-1]
		if latest.State != runtime.StateRunning {
			writeNodeError(rw, api.NewBadRequest("container %s is not running", container))
			return
		}
		stdout, stderr := &limitedBuffer{max: MaxExecOutput}, &limitedBuffer{max: MaxExecOutput}
		code, err := l.cfg.Runtime.Exec(r.Context(), latest.ID, cmd, stdout, stderr)
		switch {
		case errors.Is(err, runtime.ErrNotRunning), errors.Is(err, runtime.ErrNotFound):
			writeNodeError(rw, api.NewBadRequest("container %s is not running", container))
			return
		case err != nil:
			writeNodeError(rw, api.NewInternalError(fmt.Errorf("exec in %s: %w", container, err)))
			return
		}
		res := ExecResult{Stdout: string(stdout.buf), Stderr: string(stderr.buf), ExitCode: code, Truncated: stdout.truncated || stderr.truncated}
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(res)
	})
}
