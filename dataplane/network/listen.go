package network

import "net"

// ListenInNetNS opens a UDP socket and a TCP listener on addr (host:port)
// inside the network namespace at path ("" = the process's own). The
// sockets stay in that namespace for their whole life, whichever goroutine
// uses them; the cluster DNS server answers pods on them.
func ListenInNetNS(path, addr string) (net.PacketConn, net.Listener, error) {
	var pc net.PacketConn
	var l net.Listener
	err := inNetNS(path, func() error {
		var err error
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return err
		}
		if l, err = net.Listen("tcp", addr); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return pc, l, nil
}
