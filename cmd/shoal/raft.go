package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// runRaft is the operator's manual control of the Raft configuration:
// `shoal raft add-voter ID HOST:PORT` and `shoal raft remove ID`. They go
// to the leader (another agent answers 503 naming it).
func runRaft(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("raft", "raft add-voter ID RAFT-ADDR | raft remove ID [--server ADDR]", errOut)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 3 && pos[0] == "add-voter":
		raw, err := c.AddVoter(ctx, pos[1], pos[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s added as a voter at %s (staged until its log caught up)\n", pos[1], pos[2])
		printNext(out, raw)
	case len(pos) == 2 && pos[0] == "remove":
		raw, err := c.RemoveServer(ctx, pos[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s removed from the Raft configuration\n", pos[1])
		printNext(out, raw)
	default:
		fs.Usage()
		return errUsage
	}
	return nil
}

// printNext prints what the leader says its voter manager will do next.
func printNext(out io.Writer, raw json.RawMessage) {
	var ans struct {
		Next string `json:"next"`
	}
	if json.Unmarshal(raw, &ans) == nil && ans.Next != "" {
		fmt.Fprintln(out, ans.Next)
	}
}
