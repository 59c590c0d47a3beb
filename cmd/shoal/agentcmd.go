package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

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

// agentFlags are the flags of `shoal agent`.
type agentFlags struct {
	def                                                          agent.Config
	dev, bootstrap, pprof, pods, cleanup, services, manualVoters *bool
	dataDir, nodeName, httpAddr, raftAddr, bind                  *string
	advertise, nodeIP, zone, gossipKey, logLevel, token          *string
	ctrdSocket, ctrdNS, runcRoot, cgroupParent, strategy         *string
	ociRuntime                                                   *string
	podNetNS, clusterDomain, memoryLimit, raftLogStore           *string
	expect, voters                                               *int
	nodeLossGrace, nodeUnknownGrace                              *time.Duration
	join, joinAPI, dnsUpstreams                                  listFlag
	labels                                                       labelFlag
	insecureRegs, mirrors                                        multiFlag
	insecure                                                     *bool
	voterSettle                                                  *time.Duration
	hostPathAllow                                                listFlag
}

// register declares the flags on fs.
func (f *agentFlags) register(fs *flag.FlagSet) {
	def := agent.DefaultConfig()
	f.def = def
	f.dev = fs.Bool("dev", false, "single-node development cluster on loopback (bootstraps itself)")
	f.dataDir = fs.String("data-dir", "", "directory for the Raft log, stable store, snapshots and cluster id (default "+def.DataDir+")")
	f.nodeName = fs.String("node-name", "", "this host's name in the cluster, unique (default: the hostname)")
	f.httpAddr = fs.String("http-addr", "", "API listen address (default "+def.HTTPAddr+", -dev: 127.0.0.1:7070)")
	f.raftAddr = fs.String("raft-addr", "", "Raft listen address, used while this agent is a voter (default "+def.RaftAddr+", -dev: 127.0.0.1:7071)")
	f.raftLogStore = fs.String("raft-log-store", "", "Raft log on disk: bolt (raft-boltdb, the default) or wal (hashicorp/raft-wal, one fsync per append); a data dir keeps the kind it was made with")
	f.bind = fs.String("bind", "", "gossip listen address HOST:PORT, UDP and TCP (default "+def.GossipAddr+", -dev: 127.0.0.1:7946)")
	f.advertise = fs.String("advertise", "", "IP the other agents use to reach this one (gossip, API, Raft) when binding 0.0.0.0")
	f.nodeIP = fs.String("node-ip", "", "IP this host's Node reports and other nodes route its pods via (default: the advertised API IP)")
	fs.Var(&f.join, "join", "gossip address HOST:PORT of an agent to join; repeatable or comma-separated; retried with back-off")
	f.token = fs.String("token", "", "join token (from `shoal token show` on a member, or `shoal token generate` with --bootstrap-expect); needed on the first start only")
	fs.Var(&f.joinAPI, "join-api", "API address HOST:PORT of a member to ask for this agent's certificate; repeatable or comma-separated (default: each --join host with this agent's --http-addr port)")
	f.zone = fs.String("zone", "", "failure zone of this host; voters are spread across zones")
	f.gossipKey = fs.String("gossip-key", "", "base64 of 16, 24 or 32 bytes: encrypt gossip (every agent needs the same key)")
	f.expect = fs.Int("bootstrap-expect", -1, "form the cluster once this many agents in no cluster see each other (default "+strconv.Itoa(def.BootstrapExpect)+", -dev: 1; 0: never, wait to be added by hand)")
	f.voters = fs.Int("voters", def.Voters, "target number of Raft voters, odd (capped by the number of alive agents)")
	f.manualVoters = fs.Bool("manual-voters", false, "the leader never adds or removes voters by itself; use shoal raft add-voter|remove")
	f.voterSettle = fs.Duration("voter-settle", def.VoterSettle, "after a change of leader, wait until gossip has settled and then this long before promoting or removing a voter (new voters are only staged meanwhile)")
	f.labels = labelFlag{}
	fs.Var(f.labels, "label", "label k=v for this host's Node object; repeatable")
	f.bootstrap = fs.Bool("bootstrap", false, "form a new one-voter cluster at once if this agent has no Raft state")
	f.logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	f.pprof = fs.Bool("pprof", false, "serve Go's profiler under /debug/pprof/ on the API address (admin token required)")
	f.insecure = fs.Bool("insecure", false, "turn security off: plain http, no authentication, no gossip encryption; refused unless --http-addr, --raft-addr, --bind (and --advertise) are loopback")
	f.memoryLimit = fs.String("memory-limit", "", "soft limit of the agent's Go memory (e.g. 120MiB; as GOMEMLIMIT, which it overrides): the collector runs more often near it. Default (unless GOMEMLIMIT or GOGC is set): a limit that follows the live heap, leaving it max(64MiB, a quarter) of headroom; off: no limit")
	f.pods = fs.Bool("pods", true, "run the pods bound to this node (needs root and containerd); false: control plane only")
	f.ctrdSocket = fs.String("containerd-socket", "/run/containerd/containerd.sock", "containerd's socket")
	f.ctrdNS = fs.String("containerd-namespace", "shoal", "containerd namespace of Shoal's containers")
	f.runcRoot = fs.String("runc-root", "", "state directory of the OCI runtime, runc or crun (to keep two agents on one machine apart)")
	f.cgroupParent = fs.String("cgroup-parent", "", "cgroup under which pods' cgroups are made")
	f.ociRuntime = fs.String("oci-runtime", "runc", "OCI runtime containerd runs new containers with: runc (the one the test suite runs), crun (starts a container for less CPU; refused where the host's cgroups keep it out), or auto (crun when installed and usable here, else runc)")
	fs.Var(&f.insecureRegs, "insecure-registry", "HOST:PORT of a registry reached over plain HTTP; repeatable")
	fs.Var(&f.mirrors, "registry-mirror", "REGISTRY=MIRROR: try MIRROR first for images of REGISTRY; repeatable")
	f.nodeLossGrace = fs.Duration("node-loss-grace", controllers.DefaultClusterConfig().NodeLossGrace, "leader: how long a node stays dead in gossip (failed probes, indirect probes and suspicion) before its ReplicaSet and DaemonSet pods are replaced elsewhere; its pods leave Service endpoints at once")
	f.nodeUnknownGrace = fs.Duration("node-unknown-grace", controllers.DefaultClusterConfig().NodeUnknownGrace, "leader: the same for a node NotReady on weaker evidence (it left gossip, as a restarting agent does, or gossip does not know it)")
	f.strategy = fs.String("scheduler-strategy", "LeastAllocated", "how the leader places pods: LeastAllocated (spread load) or BinPack (fill nodes)")
	f.podNetNS = fs.String("pod-netns", "", "network namespace (path) for pod networking; default the agent's own (demos use a namespace they made)")
	f.services = fs.Bool("services", true, "with --pods: program Service load balancing (nftables table ip "+agent.LBTable+") and answer cluster DNS for this node's pods")
	f.clusterDomain = fs.String("cluster-domain", "cluster.local", "DNS domain of Services (<svc>.<ns>.svc.DOMAIN)")
	fs.Var(&f.dnsUpstreams, "dns-upstream", "resolver IP[:PORT] for names outside the cluster domain; repeatable (default: /etc/resolv.conf's)")
	fs.Var(&f.hostPathAllow, "host-path-allow", "host directory pods may mount as hostPath volumes (below it); repeatable or comma-separated (default: none, every hostPath is refused; never /, /etc, /proc, /sys, /dev, /run/containerd, /var/lib/shoal, the data dir or the containerd socket)")
	f.cleanup = fs.Bool("cleanup", false, "remove the Service rules this agent installed in the pod network namespace (--pod-netns), then exit")
}

// config turns the flags into the agent's configuration.
func (f *agentFlags) config(errOut io.Writer) (agent.Config, error) {
	cfg := f.def
	if *f.dev {
		cfg = agent.DevConfig()
		cfg.GossipAddr = "127.0.0.1:7946"
	}
	setIf(&cfg.DataDir, *f.dataDir)
	setIf(&cfg.NodeName, strings.ToLower(*f.nodeName))
	setIf(&cfg.HTTPAddr, *f.httpAddr)
	setIf(&cfg.RaftAddr, *f.raftAddr)
	setIf(&cfg.RaftLogStore, *f.raftLogStore)
	setIf(&cfg.GossipAddr, *f.bind)
	cfg.Advertise, cfg.NodeIP, cfg.Join, cfg.Zone = *f.advertise, *f.nodeIP, f.join, *f.zone
	if *f.gossipKey != "" {
		key, err := gossip.ParseGossipKey(*f.gossipKey)
		if err != nil {
			return cfg, err
		}
		cfg.GossipKey = key
	}
	if *f.expect >= 0 {
		cfg.BootstrapExpect = *f.expect
	}
	cfg.Voters = *f.voters
	cfg.ManualVoters = *f.manualVoters
	cfg.VoterSettle = *f.voterSettle
	if len(f.labels) > 0 {
		cfg.Labels = f.labels
	}
	cfg.Bootstrap = cfg.Bootstrap || *f.bootstrap
	cfg.Pprof = *f.pprof
	cfg.Insecure = *f.insecure
	cfg.Token, cfg.JoinAPI = strings.TrimSpace(*f.token), f.joinAPI
	cfg.HostPathAllow = f.hostPathAllow
	cfg.Version = version
	host, err := f.hostConfig()
	if err != nil {
		return cfg, err
	}
	cfg.Host = host
	cfg.ClusterNet = controllers.DefaultClusterConfig()
	cfg.ClusterNet.Scheduler.Strategy = *f.strategy
	if err := cfg.ClusterNet.Scheduler.Validate(); err != nil {
		return cfg, fmt.Errorf("scheduler-strategy: %v", err)
	}
	if *f.nodeLossGrace <= 0 {
		return cfg, fmt.Errorf("node-loss-grace: %v must be positive", *f.nodeLossGrace)
	}
	if *f.nodeUnknownGrace <= 0 {
		return cfg, fmt.Errorf("node-unknown-grace: %v must be positive", *f.nodeUnknownGrace)
	}
	cfg.ClusterNet.NodeLossGrace, cfg.ClusterNet.NodeUnknownGrace = *f.nodeLossGrace, *f.nodeUnknownGrace
	var level slog.Level
	if err := level.UnmarshalText([]byte(*f.logLevel)); err != nil {
		return cfg, fmt.Errorf("log-level: %v", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

// hostConfig is the part of the configuration about running pods.
func (f *agentFlags) hostConfig() (agent.HostConfig, error) {
	hc := agent.HostConfig{
		Enabled: *f.pods, ContainerdSocket: *f.ctrdSocket, ContainerdNamespace: *f.ctrdNS,
		RuncRoot: *f.runcRoot, CgroupParent: *f.cgroupParent, InsecureRegistries: f.insecureRegs, HostNetNS: *f.podNetNS,
		Services: *f.services, ClusterDomain: strings.TrimSuffix(*f.clusterDomain, "."), DNSUpstreams: f.dnsUpstreams,
	}
	if hc.ClusterDomain == "" {
		return hc, fmt.Errorf("cluster-domain: must not be empty")
	}
	switch *f.ociRuntime {
	case "runc", "crun", "auto":
		hc.OCIRuntime = *f.ociRuntime
	default:
		return hc, fmt.Errorf("oci-runtime: %q is not runc, crun or auto", *f.ociRuntime)
	}
	for _, m := range f.mirrors {
		reg, mirror, ok := strings.Cut(m, "=")
		if !ok || reg == "" || mirror == "" {
			return hc, fmt.Errorf("registry-mirror: %q is not REGISTRY=MIRROR", m)
		}
		if hc.Mirrors == nil {
			hc.Mirrors = map[string][]string{}
		}
		hc.Mirrors[reg] = append(hc.Mirrors[reg], mirror)
	}
	return hc, nil
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// runAgent is `shoal agent`: it runs until ctx ends (SIGTERM, Ctrl-C), or,
// with --cleanup, removes what the agent installed and exits.
func runAgent(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("agent", "agent [-dev] [--join ADDR,...] [--bootstrap-expect N] [--data-dir DIR] [--node-name NAME] [flags]", errOut)
	var f agentFlags
	f.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if *f.cleanup {
		if err := agent.Cleanup(*f.podNetNS); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		fmt.Fprintf(out, "removed the nftables table ip %s\n", agent.LBTable)
		return nil
	}
	cfg, err := f.config(errOut)
	if err != nil {
		return err
	}
	limit, err := parseMemoryLimit(*f.memoryLimit)
	if err != nil {
		return err
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	} else if autoMemoryLimit(*f.memoryLimit) {
		go tuneMemory(ctx)
	}
	cfg.Out = out
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
