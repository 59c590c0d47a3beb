package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoal-dev/shoal/api"
)

func runLogs(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("logs", "logs POD [-c CONTAINER] [-f] [--previous] [-n NAMESPACE]", errOut)
	var cf clientFlags
	cf.register(fs)
	container := fs.String("c", "", "container (needed when the pod has several)")
	follow := fs.Bool("f", false, "keep streaming new output")
	previous := fs.Bool("previous", false, "the previous, terminated attempt of the container")
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
	c, err := cf.client()
	if err != nil {
		return err
	}
	return c.Logs(ctx, cf.ns(), pos[0], api.LogOptions{Container: *container, Follow: *follow, Previous: *previous}, out)
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
