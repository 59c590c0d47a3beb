package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// A pod's logs and exec, which the agent running the pod serves.

// LogOptions select which log of a pod's container to read.
type LogOptions struct {
	Container string // may be empty for a one-container pod
	Follow    bool   // keep streaming until the attempt ends or ctx does
	Previous  bool   // the previous (terminated) attempt
	// TailLines, if set, starts that many lines before the end.
	TailLines *int64
	// LimitBytes, if set, stops after that many bytes.
	LimitBytes *int64
	// Since, if positive, leaves out log files last written longer ago
	// (whole files: the logs keep no per-line time); whole seconds.
	Since time.Duration
}

// Logs copies a container's log to w. Any agent answers: the request is
// routed to the agent that runs the pod.
func (c *Client) Logs(ctx context.Context, ns, pod string, opts LogOptions, w io.Writer) error {
	q := url.Values{}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Previous {
		q.Set("previous", "true")
	}
	if opts.TailLines != nil {
		q.Set("tailLines", strconv.FormatInt(*opts.TailLines, 10))
	}
	if opts.LimitBytes != nil {
		q.Set("limitBytes", strconv.FormatInt(*opts.LimitBytes, 10))
	}
	if opts.Since > 0 {
		q.Set("sinceSeconds", strconv.FormatInt(int64((opts.Since+time.Second-1)/time.Second), 10))
	}
	path := "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod) + "/log"
	resp, err := c.stream(ctx, http.MethodGet, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	ExitCode  int    `json:"exitCode"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Exec runs cmd in a container of a pod and returns its output once it has
// exited (not interactive).
func (c *Client) Exec(ctx context.Context, ns, pod, container string, cmd []string) (ExecResult, error) {
	var res ExecResult
	if len(cmd) == 0 {
		return res, errors.New("exec: no command")
	}
	q := url.Values{"command": cmd}
	if container != "" {
		q.Set("container", container)
	}
	path := "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(pod) + "/exec"
	resp, err := c.stream(ctx, http.MethodPost, path, q)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&res); err != nil {
		return res, fmt.Errorf("exec: decoding the answer: %w", err)
	}
	drain(resp.Body)
	return res, nil
}

// stream sends a request without the client's request timeout (the caller's
// ctx bounds it) and returns the response of a 2xx answer.
func (c *Client) stream(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	resp, err := c.send(ctx, method, path, q, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}
