package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoal-dev/shoal/api"
)

func runLogs(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("logs", "logs POD [-c CONTAINER] [-f] [--previous] [--tail N] [--limit-bytes N] [--since DURATION] [-n NAMESPACE]", errOut)
	var cf clientFlags
	cf.register(fs)
	container := fs.String("c", "", "container (needed when the pod has several)")
	follow := fs.Bool("f", false, "keep streaming new output")
	previous := fs.Bool("previous", false, "the previous, terminated attempt of the container")
	tail := fs.Int64("tail", -1, "only the last N lines (-1: all)")
	limit := fs.Int64("limit-bytes", 0, "stop after N bytes (0: no limit)")
	since := fs.Duration("since", 0, "leave out log files last written longer ago than this (whole files: the logs keep no per-line time)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	pos = expandRef(pos)
	if len(pos) == 2 && (pos[0] == "pod" || pos[0] == "pods" || pos[0] == "po") {
		pos = pos[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	opts := api.LogOptions{Container: *container, Follow: *follow, Previous: *previous, Since: *since}
	switch {
	case *tail < -1:
		return fmt.Errorf("--tail: %d must be -1 (all) or more", *tail)
	case *tail >= 0:
		opts.TailLines = tail
	}
	switch {
	case *limit < 0:
		return fmt.Errorf("--limit-bytes: %d must not be negative", *limit)
	case *limit > 0:
		opts.LimitBytes = limit
	}
	if *since < 0 {
		return fmt.Errorf("--since: %v must not be negative", *since)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.Logs(ctx, cf.ns(), pos[0], opts, out)
}

func runExec(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("exec", "exec POD [-c CONTAINER] [-n NAMESPACE] -- COMMAND [ARGS...]", errOut)
	var cf clientFlags
	cf.register(fs)
	container := fs.String("c", "", "container (needed when the pod has several)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		fs.Usage()
		return errUsage
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	res, err := c.Exec(ctx, cf.ns(), pos[0], *container, pos[1:])
	if err != nil {
		return err
	}
	io.WriteString(out, res.Stdout)
	io.WriteString(errOut, res.Stderr)
	if res.Truncated {
		fmt.Fprintln(errOut, "shoal exec: output truncated")
	}
	if res.ExitCode != 0 {
		return exitCode(res.ExitCode)
	}
	return nil
}

// exitCode makes shoal exit with the remote command's status, silently.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
