package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Config says where the node's pod network lives and what it looks like.
type Config struct {
	// HostNetNS is the path of the network namespace the node's networking
	// lives in ("" = the calling process's own namespace, production).
	HostNetNS string
	// PluginDirs are searched for CNI plugin binaries.
	PluginDirs []string
	// CacheDir is libcni's result cache ("" = StateDir/cache).
	CacheDir string
	// StateDir holds the pods' netns bind mounts (StateDir/netns/<pod>) and
	// host-local's IPAM data (StateDir/ipam).
	StateDir string
	// BridgeName is the node's pod bridge.
	BridgeName string
	// PodCIDR is this node's pod subnet, e.g. 10.244.3.0/24.
	PodCIDR string
	// ClusterCIDR covers all pods, e.g. 10.244.0.0/16; traffic from it to
	// addresses outside it is masqueraded.
	ClusterCIDR string
	// ServiceCIDR is routed via the bridge so the host can reach virtual IPs.
	ServiceCIDR string
	// MTU of the bridge and the pods' eth0 (0 = the plugin's default).
	MTU int
}

// DefaultConfig returns the production defaults; PodCIDR must still be set.
func DefaultConfig() Config {
	return Config{
		PluginDirs:  []string{"/usr/lib/cni"},
		StateDir:    "/var/lib/shoal/network",
		BridgeName:  "shoal0",
		ClusterCIDR: "10.244.0.0/16",
		ServiceCIDR: "10.96.0.0/16",
		MTU:         1500,
	}
}

// Validate checks the configuration; every error names the field.
func (c Config) Validate() error {
	var errs []error
	if len(c.PluginDirs) == 0 {
		errs = append(errs, errors.New("PluginDirs: empty"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("StateDir: empty"))
	}
	if c.BridgeName == "" || len(c.BridgeName) > 15 || strings.ContainsAny(c.BridgeName, "/ ") {
		errs = append(errs, fmt.Errorf("BridgeName: %q is not a valid interface name", c.BridgeName))
	}
	if c.MTU < 0 || (c.MTU > 0 && c.MTU < 576) || c.MTU > 65535 {
		errs = append(errs, fmt.Errorf("MTU: %d out of range", c.MTU))
	}
	pod, perr := parseCIDR("PodCIDR", c.PodCIDR)
	cluster, cerr := parseCIDR("ClusterCIDR", c.ClusterCIDR)
	svc, serr := parseCIDR("ServiceCIDR", c.ServiceCIDR)
	errs = append(errs, perr, cerr, serr)
	if perr == nil && pod.Bits() > 30 {
		errs = append(errs, fmt.Errorf("PodCIDR: %s leaves no room for pods", pod))
	}
	if perr == nil && cerr == nil && !(cluster.Bits() <= pod.Bits() && cluster.Contains(pod.Addr())) {
		errs = append(errs, fmt.Errorf("PodCIDR: %s is not inside ClusterCIDR %s", pod, cluster))
	}
	if cerr == nil && serr == nil && cluster.Overlaps(svc) {
		errs = append(errs, fmt.Errorf("ServiceCIDR: %s overlaps ClusterCIDR %s", svc, cluster))
	}
	return errors.Join(errs...)
}

// parseCIDR accepts only a masked IPv4 prefix ("10.244.3.0/24", not
// "10.244.3.7/24").
func parseCIDR(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s: %w", field, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s: %s is not IPv4", field, s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s: %s has host bits set (want %s)", field, s, p.Masked())
	}
	return p, nil
}

// PodRef names a pod. Namespace and Name are DNS labels/subdomains, UID is
// the pod's UID (letters, digits and '-').
type PodRef struct{ Namespace, Name, UID string }

func (p PodRef) String() string { return p.Namespace + "/" + p.Name + " (" + p.UID + ")" }

// key is the pod's name on this node: the netns file name and the CNI
// container ID. '_' cannot occur in Namespace or Name, so the key decodes.
func (p PodRef) key() (string, error) {
	ok := func(s string, extra string) bool {
		if s == "" {
			return false
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
				return false
			}
		}
		return true
	}
	switch {
	case !ok(p.Namespace, "-."):
		return "", fmt.Errorf("%w: namespace %q", ErrBadPodRef, p.Namespace)
	case !ok(p.Name, "-."):
		return "", fmt.Errorf("%w: name %q", ErrBadPodRef, p.Name)
	case !ok(strings.ToLower(p.UID), "-"):
		return "", fmt.Errorf("%w: uid %q", ErrBadPodRef, p.UID)
	}
	k := p.Namespace + "_" + p.Name + "_" + p.UID
	if len(k) > 250 {
		return "", fmt.Errorf("%w: %s is too long", ErrBadPodRef, p)
	}
	return k, nil
}

// podFromKey reverses PodRef.key.
func podFromKey(k string) (PodRef, bool) {
	parts := strings.SplitN(k, "_", 3)
	if len(parts) != 3 {
		return PodRef{}, false
	}
	p := PodRef{Namespace: parts[0], Name: parts[1], UID: parts[2]}
	if kk, err := p.key(); err != nil || kk != k {
		return PodRef{}, false
	}
	return p, true
}

// PodNetwork is what a set-up pod has.
type PodNetwork struct {
	NetNSPath string // bind mount of the pod's network namespace
	IP        net.IP // eth0's address
	Gateway   net.IP // the bridge's address, the pod's default route
}

// Route says that CIDR (another node's pod CIDR) is reached via Via (that
// node's address, on a link of the host namespace).
type Route struct {
	CIDR netip.Prefix
	Via  netip.Addr
}

func (r Route) String() string { return r.CIDR.String() + " via " + r.Via.String() }

// Errors.
var (
	// ErrBadPodRef: a PodRef that cannot name a netns file or CNI container.
	ErrBadPodRef = errors.New("network: invalid pod reference")
	// ErrBadRoute: a Route SyncRoutes refuses (not IPv4, host bits set,
	// duplicate CIDR, overlapping this node's PodCIDR).
	ErrBadRoute = errors.New("network: invalid route")
	// ErrClosed: the Network was closed.
	ErrClosed = errors.New("network: closed")
)
