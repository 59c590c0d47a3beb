package dns

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// soReusePort is SO_REUSEPORT on Linux (the frozen syscall package lacks
// it; golang.org/x/sys/unix.SO_REUSEPORT has the same value).
const soReusePort = 0xf

// Listen binds addr ("127.0.0.1:53", "[fd00::a]:53"; port 0 picks one)
// for Serve: udpSockets UDP sockets sharing the port through SO_REUSEPORT,
// so that the kernel spreads clients over them and they are read in
// parallel, and one TCP listener on the same port. Call it in the network
// namespace the sockets belong to (the sockets stay there wherever they
// are served from), then Serve(pcs[0], l) and Serve(pc, nil) for the rest.
func Listen(addr string, udpSockets int) ([]net.PacketConn, net.Listener, error) {
	pcs, l, err := listenOnce(addr, udpSockets)
	// With port 0 the UDP socket's port may already be taken over TCP by
	// someone else: pick another.
	if _, port, perr := net.SplitHostPort(addr); perr == nil && port == "0" {
		for try := 0; try < 20 && errors.Is(err, syscall.EADDRINUSE); try++ {
			pcs, l, err = listenOnce(addr, udpSockets)
		}
	}
	return pcs, l, err
}

// listenOnce is one attempt of Listen.
func listenOnce(addr string, udpSockets int) (pcs []net.PacketConn, l net.Listener, err error) {
	if udpSockets < 1 {
		return nil, nil, errors.New("dns: Listen needs at least one UDP socket")
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	defer func() {
		if err != nil {
			for _, pc := range pcs {
				pc.Close()
			}
			if l != nil {
				l.Close()
			}
			pcs, l = nil, nil
		}
	}()
	ctx := context.Background()
	first, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, nil, err
	}
	pcs = append(pcs, first)
	// The port the first socket got (addr may have said 0).
	bound := first.LocalAddr().String()
	for len(pcs) < udpSockets {
		pc, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			return pcs, nil, err
		}
		pcs = append(pcs, pc)
	}
	// TCP needs no SO_REUSEPORT; without it, a second server on the port
	// fails here rather than sharing it.
	l, err = net.Listen("tcp", bound)
	return pcs, l, err
}
