package lb

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/shoal-dev/shoal/integration/testenv"
)

// A test topology, all in namespaces the test made, with no link to the
// machine's own namespace and so no way out:
//
//	client 192.168.50.2 ── veth ── 192.168.50.1 node 10.244.0.1 (br0) ── veth ── backend i 10.244.0.1i
//
// The node holds the table, forwards, and routes the service CIDR
// 10.96.0.0/16 via its bridge (as package network does), so that a VIP
// without endpoints reaches the reject rules instead of "no route". The
// client routes the service CIDR via the node; backends default via it.
type topology struct {
	node, client *testenv.NetNS
	backends     []*backend
}

const (
	nodeAddr   = "192.168.50.1" // the node's address towards the client
	clientAddr = "192.168.50.2"
	bridgeAddr = "10.244.0.1"
)

// backend answers each TCP connection with "<id> <client address>\n" and
// then echoes lines; each UDP datagram with "<id> <client address>".
type backend struct {
	id string
	ns *testenv.NetNS
	ip string
}

func newTopology(t *testing.T, backends int) *topology {
	t.Helper()
	tp := &topology{node: newNS(t), client: newNS(t)}
	run(t, tp.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run(t, tp.node, "ip", "link", "add", "br0", "type", "bridge")
	run(t, tp.node, "ip", "addr", "add", bridgeAddr+"/24", "dev", "br0")
	run(t, tp.node, "ip", "link", "set", "br0", "up")
	run(t, tp.node, "ip", "route", "add", "10.96.0.0/16", "dev", "br0")

	run(t, tp.node, "ip", "link", "add", "to-client", "type", "veth", "peer", "name", "eth0", "netns", tp.client.Name)
	run(t, tp.node, "ip", "addr", "add", nodeAddr+"/24", "dev", "to-client")
	run(t, tp.node, "ip", "link", "set", "to-client", "up")
	run(t, tp.client, "ip", "addr", "add", clientAddr+"/24", "dev", "eth0")
	run(t, tp.client, "ip", "link", "set", "eth0", "up")
	run(t, tp.client, "ip", "route", "add", "10.96.0.0/16", "via", nodeAddr)

	for i := 1; i <= backends; i++ {
		b := &backend{id: fmt.Sprintf("b%d", i), ns: newNS(t), ip: fmt.Sprintf("10.244.0.1%d", i)}
		port := fmt.Sprintf("to-b%d", i)
		run(t, tp.node, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", b.ns.Name)
		run(t, tp.node, "ip", "link", "set", port, "master", "br0", "up")
		// As the CNI bridge plugin's hairpinMode: with br_netfilter a pod's
		// connection DNATed to itself is bridged back out of its own port.
		run(t, tp.node, "bridge", "link", "set", "dev", port, "hairpin", "on")
		run(t, b.ns, "ip", "addr", "add", b.ip+"/24", "dev", "eth0")
		run(t, b.ns, "ip", "link", "set", "eth0", "up")
		run(t, b.ns, "ip", "route", "add", "default", "via", bridgeAddr)
		b.serve(t)
		tp.backends = append(tp.backends, b)
	}
	return tp
}

// inNS runs fn on an OS thread inside the namespace at path. The thread is
// never given back to the runtime (the goroutine exits locked), so no other
// goroutine ever runs in a namespace it did not ask for. Sockets fn opens
// stay in that namespace.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// serve starts the backend's TCP (8080) and UDP (8053) servers; cleanup
// stops them.
func (b *backend) serve(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	if err := inNS(b.ns.Path, func() (err error) {
		if ln, err = net.Listen("tcp4", ":8080"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", ":8053")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		pc.Close()
		wg.Wait()
	})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprintf(c, "%s %s\n", b.id, c.RemoteAddr().(*net.TCPAddr).IP)
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(fmt.Sprintf("%s %s", b.id, from.(*net.UDPAddr).IP)), from)
		}
	}()
}

// answer is what a backend said: its id and the client address it saw.
type answer struct {
	id, from string
}

// dialTCP connects from the current namespace and reads the greeting; the
// connection is returned open.
func dialTCP(addr string) (answer, net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return answer{}, nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return answer{}, nil, fmt.Errorf("read greeting from %s: %w", addr, err)
	}
	id, from, _ := strings.Cut(strings.TrimSpace(line), " ")
	return answer{id, from}, c, nil
}

// ask makes n connections to addr from the namespace at path, one after
// the other, and returns the answers; it stops at the first error or when
// the time is up.
func ask(path, addr string, n int, budget time.Duration) ([]answer, error) {
	var out []answer
	err := inNS(path, func() error {
		deadline := time.Now().Add(budget)
		for i := 0; i < n; i++ {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d connections to %s in %v", i, n, addr, budget)
			}
			a, c, err := dialTCP(addr)
			if err != nil {
				return err
			}
			c.Close()
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// askUDP sends one datagram to addr from the namespace at path and returns
// the answer, or the error reading it (ECONNREFUSED for ICMP port
// unreachable).
func askUDP(path, addr string) (answer, error) {
	var a answer
	err := inNS(path, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("hi")); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		a.id, a.from, _ = strings.Cut(string(buf[:n]), " ")
		return nil
	})
	return a, err
}

// refusedWithin dials addr from path and checks the connection is refused
// within limit; it returns how long that took.
func refusedWithin(t *testing.T, path, addr string, limit time.Duration) time.Duration {
	t.Helper()
	var took time.Duration
	err := inNS(path, func() error {
		start := time.Now()
		_, c, err := dialTCP(addr)
		took = time.Since(start)
		if c != nil {
			c.Close()
		}
		return err
	})
	if !isRefused(err) {
		t.Fatalf("dial %s: %v after %v, want connection refused", addr, err, took)
	}
	if took > limit {
		t.Fatalf("dial %s refused after %v, want under %v", addr, took, limit)
	}
	return took
}

var errConnRefused = syscall.ECONNREFUSED

func isRefused(err error) bool {
	return err != nil && errors.Is(err, errConnRefused)
}

func counts(answers []answer) map[string]int {
	m := map[string]int{}
	for _, a := range answers {
		m[a.id]++
	}
	return m
}
