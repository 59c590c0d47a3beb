package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/agent/controllers"
	"github.com/shoal-dev/shoal/agent/internal/clock"
	"github.com/shoal-dev/shoal/api"

	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/pki"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// Config is the configuration of one agent. Start from DefaultConfig or
// DevConfig; New calls Validate. Errors name the command-line flag.
type Config struct {
	// NodeName names this host in the cluster; it is also its Raft server
	// ID and its gossip name, so it must be unique (--node-name).
	NodeName string
	// DataDir holds the Raft log, stable store and snapshots (raft/) and
	// the cluster id (cluster-id) (--data-dir).
	DataDir string
	// HTTPAddr is where the API is served (--http-addr).
	HTTPAddr string
	// RaftAddr is where Raft listens while this agent is a voter
	// (--raft-addr). Port 0 picks a free port once, at New, and keeps it.
	RaftAddr string
	// GossipAddr is where gossip listens, UDP and TCP (--bind).
	GossipAddr string
	// Advertise is the IP the others use to reach this agent's gossip,
	// API and Raft when those bind to 0.0.0.0 (--advertise). Empty: the
	// bind address if it is specific, else the address gossip picks.
	Advertise string
	// NodeIP is the address this host's Node reports as InternalIP and
	// status.hostIP, and that other nodes route this node's pod CIDR via
	// (--node-ip). Empty: the API's advertised IP. Set it when pods are
	// reached over another network than the agents' own (tests that run
	// several hosts' pod networks in namespaces of one machine).
	NodeIP string
	// Join lists gossip addresses (host:port) of agents to join (--join).
	Join []string
	// Zone is this host's failure zone; voters are spread across zones
	// (--zone).
	Zone string
	// GossipKey encrypts gossip: 16, 24 or 32 bytes (--gossip-key, base64).
	GossipKey []byte
	// Labels go on this agent's Node object (--label k=v).
	Labels map[string]string

	// BootstrapExpect: wait until this many agents in no cluster are alive
	// in gossip; the lowest-named of them forms the cluster
	// (--bootstrap-expect). 0 means never bootstrap automatically: Raft
	// starts at once, empty, and waits to be added by hand
	// (`shoal raft add-voter`).
	BootstrapExpect int
	// Voters is the target number of Raft voters: odd, at least 1
	// (--voters). Capped by the number of alive agents.
	Voters int
	// ManualVoters turns the voter manager off (--manual-voters): the
	// leader never adds or removes a voter by itself; an operator does,
	// with `shoal raft add-voter` and `shoal raft remove`.
	ManualVoters bool
	// Bootstrap makes this agent form a one-voter cluster at once if it has
	// no Raft state (--bootstrap); the voter manager then grows it.
	Bootstrap bool
	// Dev runs a single-node cluster: bootstrap at once, loopback.
	Dev bool

	// DeadGrace is how long a voter may be dead in gossip before the
	// leader replaces it. Stabilize is how long an agent must have been
	// alive before it is promoted. Interval is how often the bootstrap
	// decision, the voter manager and the readiness loop run without a
	// gossip event. LeaveTimeout bounds the hand-over on a graceful stop.
	// Zero means the default.
	DeadGrace    time.Duration
	Stabilize    time.Duration
	Interval     time.Duration
	LeaveTimeout time.Duration
	// VoterSettle is how long a new leader's voter manager waits, after
	// gossip has settled, before it promotes or removes anyone
	// (--voter-settle); it only stages non-voters meanwhile. After a full
	// restart the new leader may not see every agent yet. Zero means the
	// default.
	VoterSettle time.Duration

	// Raft overrides the consensus settings; nil means consensus.DefaultConfig.
	Raft *consensus.Config
	// RaftLogStore, when set, overrides Raft's LogStore (--raft-log-store):
	// consensus.LogStoreBolt or consensus.LogStoreWAL. A data dir keeps the
	// kind it was made with.
	RaftLogStore string
	// Gossip overrides the gossip timings; nil means gossip.DefaultConfig.
	// Its identity, addresses, Join, key and Logger are set from the fields
	// above.
	Gossip *gossip.Config
	// Version is advertised in gossip and served at /version.
	Version string
	// ClusterNet holds the address ranges and scheduling settings the
	// leader's controllers use; zero means controllers.DefaultClusterConfig.
	ClusterNet controllers.ClusterConfig
	// Host says whether and how this agent runs the pods bound to it.
	Host HostConfig
	// Pprof serves Go's profiler under /debug/pprof/ on the API address
	// (to admin tokens only, unless Insecure).
	Pprof bool
	// Insecure turns security off (--insecure): plain http, no
	// authentication, no gossip encryption unless GossipKey is given.
	// Validate refuses it unless every bind (and Advertise) is loopback.
	Insecure bool
	// Token is a join token (--token): pinned ("SHOAL-1-<fingerprint>-
	// <secret>", from `shoal token show`) or a bootstrap token ("SHOAL-1-
	// <secret>", from `shoal token generate`, with --bootstrap-expect).
	// Needed once: after the first start the identity is on disk.
	Token string
	// JoinAPI lists API addresses (host:port) to ask for a certificate
	// (--join-api); empty means each Join host with HTTPAddr's port.
	JoinAPI []string
	// CertTTL is the life of the node certificates this agent issues
	// while it leads; 0 means the identity package's default.
	CertTTL time.Duration
	// JoinTimeout bounds how long a first start with Token waits for its
	// certificate; 0 means DefaultJoinTimeout.
	JoinTimeout time.Duration
	// TLS, when set, is the source of every TLS configuration instead of
	// the identity in DataDir/tls (tests set it). Ignored when Insecure.
	TLS TLSSource
	// HostPathAllow lists the host directories pods may mount as hostPath
	// volumes (--host-path-allow): the API refuses others, and this
	// agent's node loop does not mount them. Empty: none. An entry that
	// is, lies below or contains a reserved path (api.ReservedHostPaths,
	// DataDir, the containerd socket) is a configuration error.
	HostPathAllow []string
	// Logger receives the agent's logs.
	Logger *slog.Logger
	// Out, if set, receives what an operator must see once: at a
	// bootstrap, the admin token's file (-dev: the token), the join
	// tokens and the CA fingerprint (`shoal agent` passes stdout).
	Out io.Writer
	// Clock gives the time to the loops that decide on it (voter manager,
	// node readiness, the API's timestamps); nil means the wall clock.
	Clock clock.Clock
}

// Defaults of the cluster settings.
const (
	DefaultBootstrapExpect = 3
	DefaultVoters          = 3
	DefaultDeadGrace       = 10 * time.Second
	DefaultStabilize       = 3 * time.Second
	DefaultInterval        = time.Second
	DefaultLeaveTimeout    = 15 * time.Second
	DefaultVoterSettle     = 10 * time.Second
	DefaultGossipPort      = 7946
)

// DefaultConfig returns the settings of a production agent on this host.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:        strings.ToLower(host),
		DataDir:         "/var/lib/shoal",
		HTTPAddr:        "0.0.0.0:7070",
		RaftAddr:        "0.0.0.0:7071",
		GossipAddr:      "0.0.0.0:" + strconv.Itoa(DefaultGossipPort),
		BootstrapExpect: DefaultBootstrapExpect,
		Voters:          DefaultVoters,
		DeadGrace:       DefaultDeadGrace,
		Stabilize:       DefaultStabilize,
		Interval:        DefaultInterval,
		LeaveTimeout:    DefaultLeaveTimeout,
		VoterSettle:     DefaultVoterSettle,
	}
}

// DevConfig is a single-node agent on loopback, for trying Shoal out. It
// bootstraps at once (Dev), so BootstrapExpect is left at 0. Gossip binds a
// free loopback port; `shoal agent -dev` binds 127.0.0.1:7946.
func DevConfig() Config {
	c := DefaultConfig()
	c.Dev = true
	c.Bootstrap = true
	c.BootstrapExpect = 0
	c.HTTPAddr = "127.0.0.1:7070"
	c.RaftAddr = "127.0.0.1:7071"
	c.GossipAddr = "127.0.0.1:0"
	if c.NodeName == "" {
		c.NodeName = "dev"
	}
	return c
}

// Validate reports the first configuration error, naming the flag.
func (c Config) Validate() error {
	if c.NodeName == "" {
		return errors.New("node-name: must not be empty")
	}
	if len(c.NodeName) > 63 || !nodeNameRE.MatchString(c.NodeName) {
		return fmt.Errorf("node-name: %q must be a DNS-1123 label (lower case letters, digits, '-', at most 63 characters)", c.NodeName)
	}
	if c.DataDir == "" {
		return errors.New("data-dir: must not be empty")
	}
	if s := c.RaftLogStore; s != "" && s != consensus.LogStoreBolt && s != consensus.LogStoreWAL {
		return fmt.Errorf("raft-log-store: %q is neither %q nor %q", s, consensus.LogStoreBolt, consensus.LogStoreWAL)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("http-addr: %v", err)
	}
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("raft-addr: %v", err)
	}
	host, port, err := net.SplitHostPort(c.GossipAddr)
	if err != nil {
		return fmt.Errorf("bind: %v", err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("bind: %q is not an IP address", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bind: port %q: want 0-65535", port)
	}
	if c.Advertise != "" {
		ip := net.ParseIP(c.Advertise)
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("advertise: %q must be a specific IP address", c.Advertise)
		}
	}
	if c.NodeIP != "" {
		ip := net.ParseIP(c.NodeIP)
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("node-ip: %q must be a specific IP address", c.NodeIP)
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join: %q: want host:port: %v", j, err)
		}
	}
	for _, j := range c.JoinAPI {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join-api: %q: want host:port: %v", j, err)
		}
	}
	if c.Insecure && c.Token != "" {
		return errors.New("token: an insecure agent has no identity to join with: drop --token or --insecure")
	}
	if c.CertTTL != 0 && (c.CertTTL < pki.MinCertTTL || c.CertTTL > pki.MaxCertTTL) {
		return fmt.Errorf("CertTTL: %v: want %v to %v", c.CertTTL, pki.MinCertTTL, pki.MaxCertTTL)
	}
	if c.JoinTimeout < 0 {
		return fmt.Errorf("JoinTimeout: %v must not be negative", c.JoinTimeout)
	}
	if c.GossipKey != nil {
		switch len(c.GossipKey) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("gossip-key: %d bytes; want 16, 24 or 32", len(c.GossipKey))
		}
	}
	if c.Insecure {
		if err := c.checkLoopback(); err != nil {
			return err
		}
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("bootstrap-expect: %d must not be negative", c.BootstrapExpect)
	}
	if c.Voters < 1 || c.Voters%2 == 0 {
		return fmt.Errorf("voters: %d must be odd and at least 1 (an even count adds a voter without surviving one more failure)", c.Voters)
	}
	if err := api.CheckHostPathAllow(c.HostPathAllow, c.hostPathReserved()...); err != nil {
		return err
	}
	if c.Host.Enabled && c.Host.Fake == nil { // a hollow node runs no container
		if _, err := runtime.ResolveOCIRuntime(c.Host.OCIRuntime); err != nil {
			return fmt.Errorf("oci-runtime: %w", err)
		}
	}
	for k, v := range c.Labels {
		if k == "" {
			return fmt.Errorf("label: empty key (value %q)", v)
		}
	}
	for name, d := range map[string]time.Duration{"DeadGrace": c.DeadGrace, "Stabilize": c.Stabilize,
		"Interval": c.Interval, "LeaveTimeout": c.LeaveTimeout, "voter-settle": c.VoterSettle,
		"node-loss-grace": c.ClusterNet.NodeLossGrace, "node-unknown-grace": c.ClusterNet.NodeUnknownGrace} {
		if d < 0 {
			return fmt.Errorf("%s: %v must not be negative", name, d)
		}
	}
	return nil
}

// checkLoopback refuses insecure mode on an agent that others could reach:
// the API, Raft and gossip must bind loopback addresses, and Advertise, if
// set, must be one too.
func (c Config) checkLoopback() error {
	for _, b := range []struct{ flag, addr string }{{"http-addr", c.HTTPAddr}, {"raft-addr", c.RaftAddr}, {"bind", c.GossipAddr}} {
		host, _, _ := net.SplitHostPort(b.addr)
		if !isLoopback(host) {
			return fmt.Errorf("insecure: %s %q is not a loopback address; security may be off only for an agent bound to loopback (127.0.0.1): bind %s to loopback or drop --insecure", b.flag, b.addr, b.flag)
		}
	}
	if c.Advertise != "" && !isLoopback(c.Advertise) {
		return fmt.Errorf("insecure: advertise %q is not a loopback address; security may be off only for an agent bound to loopback", c.Advertise)
	}
	return nil
}

// isLoopback reports whether host (an IP or "localhost") is a loopback
// address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// withDefaults fills zero durations.
func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.DeadGrace == 0 {
		c.DeadGrace = DefaultDeadGrace
	}
	if c.Stabilize == 0 {
		c.Stabilize = DefaultStabilize
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = DefaultLeaveTimeout
	}
	if c.VoterSettle == 0 {
		c.VoterSettle = DefaultVoterSettle
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c
}

// hostPathReserved are the paths of this agent no hostPath may touch,
// beyond api.ReservedHostPaths: its data directory and containerd socket.
func (c Config) hostPathReserved() []string {
	out := []string{c.DataDir, c.Host.ContainerdSocket}
	for i, p := range out {
		if abs, err := filepath.Abs(p); err == nil && p != "" {
			out[i] = abs
		}
	}
	return out
}

func (c Config) clusterNet() controllers.ClusterConfig {
	if c.ClusterNet.ClusterCIDR == "" {
		return controllers.DefaultClusterConfig()
	}
	return c.ClusterNet
}
