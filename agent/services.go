package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/agent/dns"
	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/agent/proxy"
	"github.com/shoal-dev/shoal/dataplane/lb"
	"github.com/shoal-dev/shoal/dataplane/network"
)

// LBTable is the nftables table (family ip) that holds this node's service
// rules; `shoal agent --cleanup` removes it.
const LBTable = "shoal"

// services is this node's share of the Services: the nftables load
// balancer, the DNS server on the pod network's gateway address, and the
// proxy loop that feeds both.
type services struct {
	a       *Agent
	applier *lb.Applier
	dns     *dns.Server
	dnsIP   string
	domain  string
	proxy   *proxy.Proxy
}

// startServices builds the load balancer and the DNS server for the pods
// of this node. A part that cannot start is logged and left out; nil when
// neither could.
func (a *Agent) startServices(ctx context.Context, hc HostConfig, podCIDR, clusterCIDR string) *services {
	s := &services{a: a, domain: hc.ClusterDomain}
	if s.domain == "" {
		s.domain = "cluster.local"
	}
	lc := lb.DefaultConfig()
	lc.Table, lc.ClusterCIDR = LBTable, clusterCIDR
	applier, err := lb.NewApplier(lc, hc.HostNetNS)
	if err != nil {
		a.log.Error("services: no load balancing on this node", "err", err)
	} else {
		s.applier = applier
	}
	if err := s.startDNS(hc, podCIDR); err != nil {
		a.log.Error("services: no cluster DNS on this node", "err", err)
	}
	if s.applier == nil && s.dns == nil {
		return nil
	}
	pc := proxy.DefaultConfig()
	pc.NodeName, pc.ClusterCIDR, pc.Logger = a.cfg.NodeName, clusterCIDR, a.log.With("loop", "proxy")
	if s.applier != nil {
		pc.LB = s.applier
	}
	if s.dns != nil {
		pc.Names = s.dns
		a.metrics.SetDNS(dnsStats(s.dns))
	}
	pc.Metrics = a.metrics.Proxy
	p, err := proxy.New(pc)
	if err != nil {
		a.log.Error("services: proxy", "err", err)
		s.stop()
		return nil
	}
	s.proxy = p
	a.metrics.SetProxyServices(p.Services)
	return s
}

// startDNS serves cluster DNS on port 53 of the pod network's gateway
// address, inside the pods' host namespace.
func (s *services) startDNS(hc HostConfig, podCIDR string) error {
	pfx, err := netip.ParsePrefix(podCIDR)
	if err != nil {
		return err
	}
	gw := pfx.Masked().Addr().Next()
	dc := dns.DefaultConfig()
	dc.Domain, dc.Upstreams = s.domain, hc.DNSUpstreams
	dc.Logf = func(format string, args ...any) { s.a.log.Info("dns: " + fmt.Sprintf(format, args...)) }
	srv, err := dns.New(dc)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(gw.String(), "53")
	var pcs []net.PacketConn
	var l net.Listener
	if err := network.InNetNS(hc.HostNetNS, func() (err error) {
		pcs, l, err = dns.Listen(addr, min(runtime.GOMAXPROCS(0), 4))
		return err
	}); err != nil {
		return err
	}
	go srv.Serve(pcs[0], l)
	for _, pc := range pcs[1:] {
		go srv.Serve(pc, nil)
	}
	s.dns, s.dnsIP = srv, gw.String()
	s.a.log.Info("cluster DNS listening", "addr", addr, "domain", s.domain)
	return nil
}

// resolvConf is the resolv.conf of a pod in namespace ns.
func (s *services) resolvConf(ns string) []byte {
	return dns.ResolvConf(s.dnsIP, ns, s.domain)
}

// run follows Services and Endpoints and keeps the load balancer and the
// DNS index in step, until ctx ends.
func (s *services) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, kind := range []string{"Service", "Endpoints"} {
		f, err := follow.New(follow.Config{Endpoints: s.a.followEndpoints, Local: s.a.localFollow, Kind: kind, Logger: s.a.log,
			NewClient: s.a.followClient, NoMirror: true})
		if err != nil {
			s.a.log.Error("services: follow", "kind", kind, "err", err)
			continue
		}
		wg.Go(func() { f.Run(ctx, s.proxy.Handler(kind, nil)) })
	}
	wg.Go(func() { s.proxy.Run(ctx) })
	wg.Wait()
}

// stop shuts the DNS server down and releases the load balancer. The
// nftables table stays, so that Services keep answering while the agent
// restarts; Cleanup removes it.
func (s *services) stop() {
	s.a.metrics.SetDNS(nil)
	s.a.metrics.SetProxyServices(nil)
	if s.dns != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.dns.Shutdown(ctx)
		cancel()
	}
	if s.applier != nil {
		s.applier.Close()
	}
}

// Cleanup removes what the agent installed in the host's network
// namespace for Services (`shoal agent --cleanup`): the load balancer's
// nftables table. Other tables are never touched.
func Cleanup(hostNetNS string) error {
	return lb.Cleanup(hostNetNS, LBTable)
}
