package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/agent/controllers"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// labelFlag collects --label k=v, repeatable.
type labelFlag map[string]string

func (l labelFlag) String() string { return "" }

func (l labelFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	l[k] = val
	return nil
}

func runAgent(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("agent", "agent [-dev] [--join ADDR,...] [--bootstrap-expect N] [--data-dir DIR] [--node-name NAME] [flags]", errOut)
	dev := fs.Bool("dev", false, "single-node development cluster on loopback (bootstraps itself)")
	def := agent.DefaultConfig()
	dataDir := fs.String("data-dir", "", "directory for the Raft log, stable store, snapshots and cluster id (default "+def.DataDir+")")
	nodeName := fs.String("node-name", "", "this host's name in the cluster, unique (default: the hostname)")
	httpAddr := fs.String("http-addr", "", "API listen address (default "+def.HTTPAddr+", -dev: 127.0.0.1:7070)")
	raftAddr := fs.String("raft-addr", "", "Raft listen address, used while this agent is a voter (default "+def.RaftAddr+", -dev: 127.0.0.1:7071)")
	bind := fs.String("bind", "", "gossip listen address HOST:PORT, UDP and TCP (default "+def.GossipAddr+", -dev: 127.0.0.1:7946)")
	advertise := fs.String("advertise", "", "IP the other agents use to reach this one (gossip, API, Raft) when binding 0.0.0.0")
	nodeIP := fs.String("node-ip", "", "IP this host's Node reports and other nodes route its pods via (default: the advertised API IP)")
	var join listFlag
	fs.Var(&join, "join", "gossip address HOST:PORT of an agent to join; repeatable or comma-separated; retried with back-off")
	zone := fs.String("zone", "", "failure zone of this host; voters are spread across zones")
	gossipKey := fs.String("gossip-key", "", "base64 of 16, 24 or 32 bytes: encrypt gossip (every agent needs the same key)")
	expect := fs.Int("bootstrap-expect", -1, "form the cluster once this many agents in no cluster see each other (default "+strconv.Itoa(def.BootstrapExpect)+", -dev: 1; 0: never, wait to be added by hand)")
	votersN := fs.Int("voters", def.Voters, "target number of Raft voters, odd (capped by the number of alive agents)")
	labels := labelFlag{}
	fs.Var(labels, "label", "label k=v for this host's Node object; repeatable")
	bootstrap := fs.Bool("bootstrap", false, "form a new one-voter cluster at once if this agent has no Raft state")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pprofOn := fs.Bool("pprof", false, "serve Go's profiler under /debug/pprof/ on the API address")
	runPods := fs.Bool("pods", true, "run the pods bound to this node (needs root and containerd); false: control plane only")
	ctrdSocket := fs.String("containerd-socket", "/run/containerd/containerd.sock", "containerd's socket")
	ctrdNS := fs.String("containerd-namespace", "shoal", "containerd namespace of Shoal's containers")
	runcRoot := fs.String("runc-root", "", "runc state directory (to keep two agents on one machine apart)")
	cgroupParent := fs.String("cgroup-parent", "", "cgroup under which pods' cgroups are made")
	var insecure multiFlag
	fs.Var(&insecure, "insecure-registry", "HOST:PORT of a registry reached over plain HTTP; repeatable")
	var mirrors multiFlag
	fs.Var(&mirrors, "registry-mirror", "REGISTRY=MIRROR: try MIRROR first for images of REGISTRY; repeatable")
	strategy := fs.String("scheduler-strategy", "LeastAllocated", "how the leader places pods: LeastAllocated (spread load) or BinPack (fill nodes)")
	podNetNS := fs.String("pod-netns", "", "network namespace (path) for pod networking; default the agent's own (demos use a namespace they made)")
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
		cfg.GossipAddr = "127.0.0.1:7946"
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
	if *bind != "" {
		cfg.GossipAddr = *bind
	}
	cfg.Advertise = *advertise
	cfg.NodeIP = *nodeIP
	cfg.Join = join
	cfg.Zone = *zone
	if *gossipKey != "" {
		key, err := gossip.ParseGossipKey(*gossipKey)
		if err != nil {
			return err
		}
		cfg.GossipKey = key
	}
	if *expect >= 0 {
		cfg.BootstrapExpect = *expect
	}
	cfg.Voters = *votersN
	if len(labels) > 0 {
		cfg.Labels = labels
	}
	cfg.Bootstrap = cfg.Bootstrap || *bootstrap
	cfg.Pprof = *pprofOn
	cfg.Version = version
	cfg.Host = agent.HostConfig{
		Enabled: *runPods, ContainerdSocket: *ctrdSocket, ContainerdNamespace: *ctrdNS,
		RuncRoot: *runcRoot, CgroupParent: *cgroupParent, InsecureRegistries: insecure, HostNetNS: *podNetNS,
	}
	cfg.ClusterNet = controllers.DefaultClusterConfig()
	cfg.ClusterNet.Scheduler.Strategy = *strategy
	if err := cfg.ClusterNet.Scheduler.Validate(); err != nil {
		return fmt.Errorf("scheduler-strategy: %v", err)
	}
	for _, m := range mirrors {
		reg, mirror, ok := strings.Cut(m, "=")
		if !ok || reg == "" || mirror == "" {
			return fmt.Errorf("registry-mirror: %q is not REGISTRY=MIRROR", m)
		}
		if cfg.Host.Mirrors == nil {
			cfg.Host.Mirrors = map[string][]string{}
		}
		cfg.Host.Mirrors[reg] = append(cfg.Host.Mirrors[reg], mirror)
	}
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
