package network

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route protocol numbers marking our routes (see /etc/iproute2/rt_protos;
// these are unassigned). SyncRoutes only ever lists, replaces and deletes
// routes carrying podRouteProto, so foreign routes are never touched.
const (
	podRouteProto     netlink.RouteProtocol = 83 // routes to other nodes' pod CIDRs
	serviceRouteProto netlink.RouteProtocol = 84 // the service CIDR via the bridge
)

// EnsureHost prepares the host namespace: ip_forward on, the pod bridge up
// with the gateway address (so the service route below exists before the
// first pod), ServiceCIDR routed via the bridge, and the nftables table
// "shoal-nat" (one atomic batch, sent only when the table differs).
func (n *Network) EnsureHost() error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	if err := n.enableForwarding(); err != nil {
		return fmt.Errorf("ensure host: %w", err)
	}
	if err := n.ensureBridge(); err != nil {
		return fmt.Errorf("ensure host: %w", err)
	}
	if err := n.ensureNAT(); err != nil {
		return fmt.Errorf("ensure host: %w", err)
	}
	return nil
}

func (n *Network) checkOpen() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	return nil
}

// enableForwarding sets net.ipv4.ip_forward in the host namespace. The
// sysctl file belongs to the namespace of the thread that opens it, hence
// inNetNS.
func (n *Network) enableForwarding() error {
	const f = "/proc/sys/net/ipv4/ip_forward"
	return inNetNS(n.cfg.HostNetNS, func() error {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if string(bytes.TrimSpace(b)) == "1" {
			return nil
		}
		return os.WriteFile(f, []byte("1\n"), 0o644)
	})
}

func (n *Network) gatewayNet() (netip.Addr, *net.IPNet) {
	pod := netip.MustParsePrefix(n.cfg.PodCIDR)
	gw := pod.Addr().Next()
	return gw, &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(pod.Bits(), 32)}
}

// gatewayMAC is a locally administered unicast MAC made from the gateway's
// IPv4 address (0a:58 and the address, as Kubernetes' kubenet does).
func gatewayMAC(gw netip.Addr) net.HardwareAddr {
	a := gw.As4()
	return net.HardwareAddr{0x0a, 0x58, a[0], a[1], a[2], a[3]}
}

// ensureBridge creates the bridge the bridge plugin would create (the
// plugin adopts an existing one), gives it the gateway address the plugin
// would give it, and routes ServiceCIDR through it.
func (n *Network) ensureBridge() error {
	link, err := n.nl.LinkByName(n.cfg.BridgeName)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.cfg.BridgeName, MTU: n.cfg.MTU}}
		if err := n.nl.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add bridge %s: %w", n.cfg.BridgeName, err)
		}
		link, err = n.nl.LinkByName(n.cfg.BridgeName)
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.cfg.BridgeName, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("%s is a %s, not a bridge", n.cfg.BridgeName, link.Type())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := n.nl.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", n.cfg.BridgeName, err)
		}
	}
	gw, gwNet := n.gatewayNet()
	// Pin the bridge's MAC. A bridge whose address was never set takes
	// the lowest MAC among its ports, so it changes as pods come and go;
	// each pod's neighbour entry for its gateway then names an address
	// the bridge no longer accepts, and the pod's DNS queries and Service
	// connections vanish until that entry expires (seconds). The bridge
	// plugin pins it only when it adds the gateway address itself, and
	// here the address is already ours. Setting the current address pins
	// it without changing it; a bridge without ports may have none (the
	// kernel zeroes it when the last port leaves): then one made from the
	// gateway address.
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 || bytes.Equal(mac, make(net.HardwareAddr, 6)) {
		mac = gatewayMAC(gw)
	}
	if err := n.nl.LinkSetHardwareAddr(link, mac); err != nil {
		return fmt.Errorf("pin the MAC of %s: %w", n.cfg.BridgeName, err)
	}
	addrs, err := n.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		have = have || a.IPNet.String() == gwNet.String()
	}
	if !have {
		if err := n.nl.AddrAdd(link, &netlink.Addr{IPNet: gwNet}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("address %s on %s: %w", gwNet, n.cfg.BridgeName, err)
		}
	}
	svc := netip.MustParsePrefix(n.cfg.ServiceCIDR)
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: svc.Addr().AsSlice(), Mask: net.CIDRMask(svc.Bits(), 32)},
		Src:       gw.AsSlice(),
		Scope:     netlink.SCOPE_LINK,
		Protocol:  serviceRouteProto,
		Table:     unix.RT_TABLE_MAIN,
	}
	if err := n.nl.RouteReplace(route); err != nil {
		return fmt.Errorf("route %s via %s: %w", svc, n.cfg.BridgeName, err)
	}
	return nil
}

func (n *Network) nft() (*nftables.Conn, error) {
	if n.hostNS >= 0 {
		return nftables.New(nftables.WithNetNSFd(int(n.hostNS)))
	}
	return nftables.New()
}

func (n *Network) ensureNAT() error {
	conn, err := n.nft()
	if err != nil {
		return err
	}
	want := desiredNAT(netip.MustParsePrefix(n.cfg.ClusterCIDR))
	have, err := readNAT(conn)
	if err != nil {
		return err
	}
	if have == want.text() {
		return nil
	}
	want.apply(conn)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", natTable, err)
	}
	return nil
}

// SyncRoutes makes the host namespace's routes to other nodes' pod CIDRs
// exactly routes: missing ones are added, changed ones replaced, ours that
// are no longer wanted deleted. Only routes marked with our protocol number
// are ever replaced or deleted; adding a CIDR that a foreign route already
// covers fails rather than overwriting it.
func (n *Network) SyncRoutes(routes []Route) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	pod := netip.MustParsePrefix(n.cfg.PodCIDR)
	if err := validateRoutes(routes, pod); err != nil {
		return err
	}
	filter := &netlink.Route{Protocol: podRouteProto, Table: unix.RT_TABLE_MAIN}
	nlRoutes, err := n.nl.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	// Ours are plain: metric 0, TOS 0, one gateway, so the kernel holds at
	// most one per CIDR. Anything else with our mark is a leftover to drop.
	var have []Route
	var errs []error
	for _, r := range nlRoutes {
		if r.Priority != 0 || r.Tos != 0 || r.Gw == nil || len(r.MultiPath) > 0 || r.Dst == nil {
			odd := r
			if err := n.nl.RouteDel(&odd); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("delete stray route %s: %w", r, err))
			}
			continue
		}
		have = append(have, routeFromNetlink(r))
	}
	plan := planRoutes(routes, have)
	for _, r := range plan.Delete {
		if err := n.nl.RouteDel(toNetlink(r)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r, err))
		}
	}
	for _, r := range plan.Replace {
		if err := n.nl.RouteReplace(toNetlink(r)); err != nil {
			errs = append(errs, fmt.Errorf("replace route %s: %w", r, err))
		}
	}
	for _, r := range plan.Add {
		if err := n.nl.RouteAdd(toNetlink(r)); err != nil {
			errs = append(errs, fmt.Errorf("add route %s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

func routeFromNetlink(r netlink.Route) Route {
	var out Route
	if r.Dst != nil {
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok {
			out.CIDR = netip.PrefixFrom(a, ones)
		}
	}
	if a, ok := netip.AddrFromSlice(r.Gw.To4()); ok {
		out.Via = a
	}
	return out
}

func toNetlink(r Route) *netlink.Route {
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: r.CIDR.Addr().AsSlice(), Mask: net.CIDRMask(r.CIDR.Bits(), 32)},
		Protocol: podRouteProto,
		Table:    unix.RT_TABLE_MAIN,
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	return nr
}

// validateRoutes refuses routes SyncRoutes must not install.
func validateRoutes(routes []Route, pod netip.Prefix) error {
	seen := map[netip.Prefix]bool{}
	var errs []error
	for i, r := range routes {
		switch {
		case !r.CIDR.IsValid() || !r.CIDR.Addr().Is4() || r.CIDR.Masked() != r.CIDR:
			errs = append(errs, fmt.Errorf("%w: routes[%d].CIDR %s is not a masked IPv4 prefix", ErrBadRoute, i, r.CIDR))
		case !r.Via.Is4() || r.Via.IsUnspecified():
			errs = append(errs, fmt.Errorf("%w: routes[%d].Via %s is not an IPv4 address", ErrBadRoute, i, r.Via))
		case r.CIDR.Overlaps(pod):
			errs = append(errs, fmt.Errorf("%w: routes[%d].CIDR %s overlaps this node's PodCIDR %s", ErrBadRoute, i, r.CIDR, pod))
		case seen[r.CIDR]:
			errs = append(errs, fmt.Errorf("%w: routes[%d].CIDR %s appears twice", ErrBadRoute, i, r.CIDR))
		}
		seen[r.CIDR] = true
	}
	return errors.Join(errs...)
}

// routePlan is what SyncRoutes changes.
type routePlan struct{ Add, Replace, Delete []Route }

// planRoutes compares the wanted routes with ours in the kernel; both have
// unique CIDRs. The result is sorted by CIDR.
func planRoutes(want, have []Route) routePlan {
	var p routePlan
	current := map[netip.Prefix]netip.Addr{}
	for _, r := range have {
		current[r.CIDR] = r.Via
	}
	wanted := map[netip.Prefix]bool{}
	for _, r := range want {
		wanted[r.CIDR] = true
		via, ok := current[r.CIDR]
		switch {
		case !ok:
			p.Add = append(p.Add, r)
		case via != r.Via:
			p.Replace = append(p.Replace, r)
		}
	}
	for _, r := range have {
		if !wanted[r.CIDR] {
			p.Delete = append(p.Delete, r)
		}
	}
	for _, l := range [][]Route{p.Add, p.Replace, p.Delete} {
		sort.Slice(l, func(i, j int) bool { return l[i].CIDR.String() < l[j].CIDR.String() })
	}
	return p
}
