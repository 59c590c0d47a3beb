package dns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/api"
)

// testConfig is DefaultConfig without the host's resolv.conf and with
// timeouts short enough for tests but generous for a loaded machine.
func testConfig() Config {
	c := DefaultConfig()
	c.ResolvConfPath = ""
	c.ForwardTimeout = 2 * time.Second
	c.UDPReaders = 2
	return c
}

// startServer serves s on 127.0.0.1, UDP and TCP on the same random port,
// and shuts it down at the end of the test.
func startServer(t testing.TB, s *Server) string {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	var err error
	for range 20 {
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(pc, l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return pc.LocalAddr().String()
}

func newServer(t testing.TB, mutate func(*Config)) (*Server, string) {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, startServer(t, s)
}

// ask sends one query and returns the answer; it fails the test when none
// comes within 10 s.
func ask(t testing.TB, addr, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	r, err := exchange(addr, network, name, qtype, nil)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	return r
}

func exchange(addr, network, name string, qtype uint16, edit func(*mdns.Msg)) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	if edit != nil {
		edit(m)
	}
	c := &mdns.Client{Net: network, Timeout: 10 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// answerStrings renders a section as "name type data" lines, lower case,
// TTLs included, sorted as they came.
func rrStrings(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == mdns.TypeOPT {
			continue
		}
		f := strings.Fields(strings.ToLower(rr.String()))
		// name ttl class type data...
		out = append(out, strings.Join(append([]string{f[0], f[1], f[3]}, f[4:]...), " "))
	}
	return out
}

type port struct {
	name, proto string
	port        int32
}

func service(ns, name, clusterIP string, ports ...port) *api.Service {
	s := &api.Service{}
	s.Kind = "Service"
	s.Namespace, s.Name = ns, name
	s.Spec.ClusterIP = clusterIP
	if clusterIP != "" && clusterIP != api.ClusterIPNone {
		s.Spec.ClusterIPs = []string{clusterIP}
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, api.ServicePort{Name: p.name, Protocol: p.proto, Port: p.port})
	}
	return s
}

type epAddr struct {
	ip, hostname string
	notReady     bool
}

func endpoints(ns, name string, addrs []epAddr, ports ...port) *api.Endpoints {
	e := &api.Endpoints{}
	e.Kind = "Endpoints"
	e.Namespace, e.Name = ns, name
	var ss api.EndpointSubset
	for _, a := range addrs {
		ea := api.EndpointAddress{IP: a.ip, Hostname: a.hostname}
		if a.notReady {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, ea)
		} else {
			ss.Addresses = append(ss.Addresses, ea)
		}
	}
	for _, p := range ports {
		ss.Ports = append(ss.Ports, api.EndpointPort{Name: p.name, Protocol: p.proto, Port: p.port})
	}
	e.Subsets = []api.EndpointSubset{ss}
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ip4(i int) string { return fmt.Sprintf("10.%d.%d.%d", 96+i>>16&0xff, i>>8&0xff, i&0xff) }
