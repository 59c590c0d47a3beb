package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/shoal-dev/shoal/agent"
)

func runAgent(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("agent", "agent [-dev] [--data-dir DIR] [--node-name NAME] [--http-addr ADDR] [--raft-addr ADDR]", errOut)
	dev := fs.Bool("dev", false, "single-node development cluster on loopback (bootstraps itself)")
	def := agent.DefaultConfig()
	dataDir := fs.String("data-dir", "", "directory for the Raft log, stable store and snapshots (default "+def.DataDir+")")
	nodeName := fs.String("node-name", "", "this host's name in the cluster (default: the hostname)")
	httpAddr := fs.String("http-addr", "", "API listen address (default "+def.HTTPAddr+", -dev: 127.0.0.1:7070)")
	raftAddr := fs.String("raft-addr", "", "Raft listen address (default "+def.RaftAddr+", -dev: 127.0.0.1:7071)")
	bootstrap := fs.Bool("bootstrap", false, "form a new one-voter cluster if this agent has no Raft state")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pprofOn := fs.Bool("pprof", false, "serve Go's profiler under /debug/pprof/ on the API address")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	cfg := def
	if *dev {
		cfg = agent.DevConfig()
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *nodeName != "" {
		cfg.NodeName = strings.ToLower(*nodeName)
	}
	if *httpAddr != "" {
		cfg.HTTPAddr = *httpAddr
	}
	if *raftAddr != "" {
		cfg.RaftAddr = *raftAddr
	}
	cfg.Bootstrap = cfg.Bootstrap || *bootstrap
	cfg.Pprof = *pprofOn
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log-level: %v", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
