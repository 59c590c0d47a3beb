//go:build !(linux && (amd64 || arm64))

package dns

import "net"

// serveUDPBatched is only on 64-bit Linux; elsewhere serveUDP reads one
// datagram at a time.
func (s *Server) serveUDPBatched(uc *net.UDPConn) bool { return false }
