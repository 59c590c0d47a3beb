package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-dev/shoal/agent"
)

// runRecover is the way out of a permanent loss of quorum: see agent.Recover.
func runRecover(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("recover", "recover --data-dir DIR --node-name NAME --raft-addr ADDR [--advertise IP]", errOut)
	def := agent.DefaultConfig()
	dataDir := fs.String("data-dir", def.DataDir, "the surviving voter's data directory (its agent must be stopped)")
	nodeName := fs.String("node-name", def.NodeName, "the surviving voter's node name")
	raftAddr := fs.String("raft-addr", def.RaftAddr, "the Raft address the agent will listen on")
	advertise := fs.String("advertise", "", "IP the other agents use to reach this one, when --raft-addr binds 0.0.0.0")
	logStore := fs.String("raft-log-store", "", "the kind of Raft log the data dir holds: bolt (default) or wal, as the agent was started with")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	cfg := def
	cfg.DataDir = *dataDir
	cfg.NodeName = strings.ToLower(*nodeName)
	cfg.RaftAddr = *raftAddr
	cfg.Advertise = *advertise
	cfg.RaftLogStore = *logStore
	if err := agent.Recover(cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is now the only voter of its cluster. Start `shoal agent` with --data-dir %s;\n", cfg.NodeName, cfg.DataDir)
	fmt.Fprintln(out, "it will lead alone with all its data, and promote other agents as they join.")
	fmt.Fprintln(out, "The cluster id moved to its next epoch: a lost voter started again with its old data")
	fmt.Fprintln(out, "is refused and stops; wipe the lost voters' data dirs before starting them again.")
	return nil
}
