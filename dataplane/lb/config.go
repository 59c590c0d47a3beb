package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
)

// Config is what the rules need to know of the node.
type Config struct {
	// Table is the name of the nftables table (family ip) the load balancer
	// owns; nothing else is ever touched.
	Table string
	// NodeIPs are the addresses NodePorts answer on. Empty means every
	// local address of the namespace except 127.0.0.0/8 (fib daddr type
	// local).
	NodeIPs []string
	// ClusterCIDR covers every pod address (e.g. 10.244.0.0/16). Traffic to
	// a ClusterIP from outside it (the node itself, other hosts) is
	// masqueraded, so replies come back through this node. "" = never.
	ClusterCIDR string
	// MasqueradeMark is the packet mark bit that asks for masquerade in
	// postrouting (NodePort traffic with externalTrafficPolicy Cluster,
	// ClusterIP traffic from outside ClusterCIDR). It must be a single bit
	// that nothing else on the node uses.
	MasqueradeMark uint32
}

// DefaultConfig returns the production defaults: table "shoal", NodePorts on
// every local address, the pod network 10.244.0.0/16, mark bit 0x4000.
func DefaultConfig() Config {
	return Config{
		Table:          "shoal",
		ClusterCIDR:    "10.244.0.0/16",
		MasqueradeMark: 0x4000,
	}
}

var tableName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$`)

// Validate checks the configuration; every error names the field.
func (c Config) Validate() error {
	var errs []error
	if !tableName.MatchString(c.Table) {
		errs = append(errs, fmt.Errorf("Table: %q is not a valid table name", c.Table))
	}
	seen := map[netip.Addr]bool{}
	for i, s := range c.NodeIPs {
		ip, err := netip.ParseAddr(s)
		switch {
		case err != nil || !ip.Is4():
			errs = append(errs, fmt.Errorf("NodeIPs[%d]: %q is not an IPv4 address", i, s))
		case seen[ip]:
			errs = append(errs, fmt.Errorf("NodeIPs[%d]: %s listed twice", i, s))
		}
		seen[ip] = true
	}
	if c.ClusterCIDR != "" {
		p, err := netip.ParsePrefix(c.ClusterCIDR)
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			errs = append(errs, fmt.Errorf("ClusterCIDR: %q is not a masked IPv4 prefix", c.ClusterCIDR))
		}
	}
	if m := c.MasqueradeMark; m == 0 || m&(m-1) != 0 {
		errs = append(errs, fmt.Errorf("MasqueradeMark: %#x is not a single bit", m))
	}
	return errors.Join(errs...)
}
