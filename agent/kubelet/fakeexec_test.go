package kubelet

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// ExecStream runs a fake command: "cat" copies stdin to stdout, "size"
// prints each terminal size received until stdin ends, "exit N" exits
// with N; anything else prints "ran CMD in CONTAINER" and exits 3.
func (f *fakeRuntime) ExecStream(ctx context.Context, id string, e runtime.ExecIO) (int, error) {
	f.mu.Lock()
	c := f.containers[id]
	f.record("exec " + strings.Join(e.Cmd, " "))
	f.mu.Unlock()
	if c == nil || c.State != runtime.StateRunning {
		return 0, runtime.ErrNotRunning
	}
	out := e.Stdout
	if out == nil {
		out = io.Discard
	}
	switch e.Cmd[0] {
	case "cat":
		if e.Stdin != nil {
			if _, err := io.Copy(out, e.Stdin); err != nil {
				return -1, err
			}
		}
		return 0, nil
	case "size":
		stdinDone := make(chan struct{})
		go func() {
			if e.Stdin != nil {
				io.Copy(io.Discard, e.Stdin)
			}
			close(stdinDone)
		}()
		for {
			select {
			case sz, ok := <-e.Resize:
				if !ok {
					return 0, nil
				}
				fmt.Fprintf(out, "size %dx%d\n", sz.Width, sz.Height)
			case <-stdinDone:
				return 0, nil
			case <-ctx.Done():
				return -1, ctx.Err()
			}
		}
	case "exit":
		n, _ := strconv.Atoi(e.Cmd[1])
		return n, nil
	}
	fmt.Fprintf(out, "ran %s in %s\n", strings.Join(e.Cmd, " "), c.Labels[runtime.LabelContainerName])
	return 3, nil
}
