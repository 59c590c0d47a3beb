package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Network sets up pods' networks on one node. Its methods are safe for
// concurrent use; calls for the same pod are serialised.
type Network struct {
	cfg   Config
	cni   *libcni.CNIConfig
	lo    *libcni.NetworkConfigList
	pod   *libcni.NetworkConfigList
	netns string // StateDir/netns

	hostNS netns.NsHandle  // open handle on cfg.HostNetNS; -1 when ""
	nl     *netlink.Handle // netlink sockets in the host namespace

	mu     sync.Mutex
	closed bool
	busy   map[string]*podLock
}

type podLock struct {
	mu   sync.Mutex
	refs int
}

// New checks cfg and prepares the state directory. It changes nothing in
// the host namespace; EnsureHost does.
func New(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.StateDir, "cache")
	}
	lo, err := loConfList()
	if err != nil {
		return nil, err
	}
	pod, err := podConfList(cfg, filepath.Join(cfg.StateDir, "ipam"))
	if err != nil {
		return nil, err
	}
	n := &Network{
		cfg: cfg,
		// An explicit Exec: libcni fills a nil one in lazily, which races
		// when pods are set up concurrently.
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cfg.CacheDir, &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		lo:     lo,
		pod:    pod,
		netns:  filepath.Join(cfg.StateDir, "netns"),
		hostNS: -1,
		busy:   map[string]*podLock{},
	}
	if err := makeSharedMountDir(n.netns); err != nil {
		return nil, err
	}
	if cfg.HostNetNS == "" {
		n.nl, err = netlink.NewHandle()
	} else {
		if n.hostNS, err = netns.GetFromPath(cfg.HostNetNS); err != nil {
			return nil, fmt.Errorf("HostNetNS: %w", err)
		}
		n.nl, err = netlink.NewHandleAt(n.hostNS)
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("netlink in host namespace: %w", err)
	}
	return n, nil
}

// Close releases the host namespace handles. Pods keep their networks.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.nl != nil {
		n.nl.Close()
	}
	if n.hostNS >= 0 {
		return n.hostNS.Close()
	}
	return nil
}

// lockPod serialises calls for one pod; the returned function unlocks.
func (n *Network) lockPod(key string) (func(), error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	l := n.busy[key]
	if l == nil {
		l = &podLock{}
		n.busy[key] = l
	}
	l.refs++
	n.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		n.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(n.busy, key)
		}
		n.mu.Unlock()
	}, nil
}

// Setup gives pod a network namespace with loopback and eth0 on the node's
// bridge. A pod already set up gets its existing network back. When a step
// fails, what was done is undone, so a retry starts clean.
func (n *Network) Setup(ctx context.Context, pod PodRef) (PodNetwork, error) {
	key, err := pod.key()
	if err != nil {
		return PodNetwork{}, err
	}
	unlock, err := n.lockPod(key)
	if err != nil {
		return PodNetwork{}, err
	}
	defer unlock()

	path := filepath.Join(n.netns, key)
	if isNetNS(path) {
		if pn, ok := n.existing(pod, key, path); ok {
			return pn, nil
		}
	} else {
		// Absent, or the empty file a crash before the mount left behind.
		if err := removeNetNS(path); err != nil {
			return PodNetwork{}, err
		}
		if err := createNetNS(path); err != nil {
			return PodNetwork{}, fmt.Errorf("setup %s: %w", pod, err)
		}
	}

	pn, err := n.add(ctx, pod, key, path)
	if err != nil {
		if derr := n.teardown(context.WithoutCancel(ctx), pod, key); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return PodNetwork{}, fmt.Errorf("setup %s: %w", pod, err)
	}
	return pn, nil
}

// add brings the pod's loopback up and runs CNI ADD for the pod network in
// the host namespace. Loopback is one netlink call here rather than the
// CNI loopback plugin: a process less to start for every pod.
func (n *Network) add(ctx context.Context, pod PodRef, key, path string) (PodNetwork, error) {
	if err := loopbackUp(path); err != nil {
		return PodNetwork{}, err
	}
	var res *types100.Result
	err := inNetNS(n.cfg.HostNetNS, func() error {
		r, err := n.cni.AddNetworkList(ctx, n.pod, runtimeConf(pod, key, path, "eth0"))
		if err != nil {
			return fmt.Errorf("CNI ADD %s: %w", podNetName, err)
		}
		res, err = types100.GetResult(r)
		return err
	})
	if err != nil {
		return PodNetwork{}, err
	}
	ip, gw, err := ipv4Of(res)
	if err != nil {
		return PodNetwork{}, err
	}
	return PodNetwork{NetNSPath: path, IP: ip, Gateway: gw}, nil
}

// existing reads back the network of a pod whose namespace exists: eth0's
// address in the namespace, checked against libcni's cached result when
// there is one. ok is false when the namespace has no configured eth0.
func (n *Network) existing(pod PodRef, key, path string) (PodNetwork, bool) {
	ip, gw, err := readEth0(path)
	if err != nil || ip == nil {
		return PodNetwork{}, false
	}
	if r, err := n.cni.GetNetworkListCachedResult(n.pod, runtimeConf(pod, key, path, "eth0")); err == nil && r != nil {
		if res, err := types100.GetResult(r); err == nil {
			if cip, cgw, err := ipv4Of(res); err == nil && cip.Equal(ip) && cgw != nil {
				gw = cgw
			}
		}
	}
	return PodNetwork{NetNSPath: path, IP: ip, Gateway: gw}, true
}

// loopbackUp sets lo up in the namespace at path (the kernel gives it
// 127.0.0.1 and ::1).
func loopbackUp(path string) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("loopback: open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("loopback: netlink in %s: %w", path, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("loopback: set lo up in %s: %w", path, err)
	}
	return nil
}

// readEth0 returns eth0's IPv4 address and default gateway in the
// namespace at path; ip is nil when there is no such interface or address.
func readEth0(path string) (ip, gw net.IP, err error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, nil, err
	}
	defer h.Close()
	link, err := h.LinkByName("eth0")
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return nil, nil, err
	}
	routes, err := h.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			gw = r.Gw.To4()
		}
	}
	return addrs[0].IP.To4(), gw, nil
}

// Teardown runs CNI DEL (freeing the pod's IP) and removes its network
// namespace. A pod that is not set up is torn down already.
func (n *Network) Teardown(ctx context.Context, pod PodRef) error {
	key, err := pod.key()
	if err != nil {
		return err
	}
	unlock, err := n.lockPod(key)
	if err != nil {
		return err
	}
	defer unlock()
	if err := n.teardown(ctx, pod, key); err != nil {
		return fmt.Errorf("teardown %s: %w", pod, err)
	}
	return nil
}

func (n *Network) teardown(ctx context.Context, pod PodRef, key string) error {
	path := filepath.Join(n.netns, key)
	nsPath := ""
	if isNetNS(path) {
		nsPath = path
	}
	// DEL without a namespace still releases the IP; the plugins skip the
	// interface work.
	err := inNetNS(n.cfg.HostNetNS, func() error {
		if err := n.cni.DelNetworkList(ctx, n.pod, runtimeConf(pod, key, nsPath, "eth0")); err != nil {
			return fmt.Errorf("CNI DEL %s: %w", podNetName, err)
		}
		// Only pods set up before loopback was brought up natively have
		// an entry of the loopback plugin in libcni's cache to clear.
		loConf := runtimeConf(pod, key, nsPath, "lo")
		if cached, _, err := n.cni.GetNetworkListCachedConfig(n.lo, loConf); err == nil && cached == nil {
			return nil
		}
		if err := n.cni.DelNetworkList(ctx, n.lo, loConf); err != nil {
			return fmt.Errorf("CNI DEL %s: %w", loNetName, err)
		}
		return nil
	})
	if err != nil {
		return err // keep the namespace so a retry can finish the DEL
	}
	return removeNetNS(path)
}

// List returns the pods that have a network namespace here, sorted; after
// an agent restart it names what to adopt or tear down.
func (n *Network) List() ([]PodRef, error) {
	ents, err := os.ReadDir(n.netns)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var pods []PodRef
	for _, e := range ents {
		if p, ok := podFromKey(e.Name()); ok {
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.UID < b.UID
	})
	return pods, nil
}
