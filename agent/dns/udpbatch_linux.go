//go:build linux && (amd64 || arm64)

package dns

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// Reading and writing UDP in batches: one recvmmsg(2) takes up to
// udpBatchSize queries that are waiting, and one sendmmsg(2) sends their
// answers, so that under load a query costs a fraction of a system call
// instead of two. The waiting itself goes through the runtime's poller
// (syscall.RawConn), so deadlines and Close work as for any socket.

const udpBatchSize = 32

// mmsghdr is struct mmsghdr of the 64-bit Linux ABI.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

type udpBatch struct {
	rc syscall.RawConn

	rhdrs [udpBatchSize]mmsghdr
	riovs [udpBatchSize]syscall.Iovec
	names [udpBatchSize]syscall.RawSockaddrInet6 // large enough for IPv4 too
	bufs  [udpBatchSize][MaxQuerySize + 1]byte   // one more: MSG_TRUNC tells larger ones
	n     int
	rerr  syscall.Errno

	shdrs  [udpBatchSize]mmsghdr
	siovs  [udpBatchSize]syscall.Iovec
	outs   [udpBatchSize][]byte
	toSend int
	sent   int

	recvFn, sendFn func(fd uintptr) bool
}

func newUDPBatch(uc *net.UDPConn) (*udpBatch, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &udpBatch{rc: rc}
	for i := range udpBatchSize {
		b.riovs[i].Base = &b.bufs[i][0]
		b.rhdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.rhdrs[i].hdr.Iov = &b.riovs[i]
		b.rhdrs[i].hdr.Iovlen = 1
		b.outs[i] = make([]byte, 0, 512)
	}
	b.recvFn = func(fd uintptr) bool {
		for {
			r, _, e := syscall.Syscall6(sysRecvmmsg, fd, uintptr(unsafe.Pointer(&b.rhdrs[0])), udpBatchSize, syscall.MSG_DONTWAIT, 0, 0)
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until readable
			case 0:
				b.n, b.rerr = int(r), 0
			default:
				b.n, b.rerr = 0, e
			}
			return true
		}
	}
	b.sendFn = func(fd uintptr) bool {
		for b.sent < b.toSend {
			r, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&b.shdrs[b.sent])), uintptr(b.toSend-b.sent), syscall.MSG_DONTWAIT, 0, 0)
			switch e {
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			case 0:
				b.sent += int(r)
			default:
				b.sent++ // this one cannot go (say, a firewall's EPERM): skip it
			}
		}
		return true
	}
	return b, nil
}

// recv waits for queries and reads up to udpBatchSize of them.
func (b *udpBatch) recv() (int, error) {
	for i := range udpBatchSize {
		b.riovs[i].SetLen(len(b.bufs[i]))
		b.rhdrs[i].hdr.Namelen = syscall.SizeofSockaddrInet6
		b.rhdrs[i].hdr.Flags = 0
		b.rhdrs[i].len = 0
	}
	if err := b.rc.Read(b.recvFn); err != nil {
		return 0, err
	}
	if b.rerr != 0 {
		return 0, b.rerr
	}
	return b.n, nil
}

// query i of the last recv: its bytes, and whether it was cut short
// because it was larger than any query accepted.
func (b *udpBatch) query(i int) ([]byte, bool) {
	return b.bufs[i][:b.rhdrs[i].len], b.rhdrs[i].hdr.Flags&syscall.MSG_TRUNC != 0
}

// queue adds an answer to query i to the batch to send.
func (b *udpBatch) queue(i int, resp []byte) {
	m := b.toSend
	b.siovs[m].Base = &resp[0]
	b.siovs[m].SetLen(len(resp))
	h := &b.shdrs[m].hdr
	h.Name = b.rhdrs[i].hdr.Name
	h.Namelen = b.rhdrs[i].hdr.Namelen
	h.Iov = &b.siovs[m]
	h.Iovlen = 1
	b.toSend++
}

// flush sends the queued answers.
func (b *udpBatch) flush() error {
	if b.toSend == 0 {
		return nil
	}
	err := b.rc.Write(b.sendFn)
	for i := range b.toSend {
		b.siovs[i].Base = nil // do not keep answers alive
	}
	b.toSend, b.sent = 0, 0
	return err
}

// from is the sender of query i.
func (b *udpBatch) from(i int) netip.AddrPort {
	sa := &b.names[i]
	switch sa.Family {
	case syscall.AF_INET:
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case syscall.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

// serveUDPBatched is serveUDP for a *net.UDPConn on Linux.
func (s *Server) serveUDPBatched(uc *net.UDPConn) bool {
	b, err := newUDPBatch(uc)
	if err != nil {
		return false
	}
	var bo backoff
	for {
		n, err := b.recv()
		if err != nil {
			if !s.readFailed(&bo, err) {
				return true
			}
			continue
		}
		bo.reset()
		for i := range n {
			req, truncated := b.query(i)
			if truncated {
				s.stats.queries.Add(1)
				s.stats.dropped.Add(1)
				continue
			}
			resp, fw := s.handle(req, b.outs[b.toSend][:0], false)
			switch {
			case fw != nil:
				to := b.from(i) // b is reused before the answer comes
				s.spawnForward(fw, func(p []byte) { uc.WriteToUDPAddrPort(p, to) })
			case len(resp) > 0:
				if cap(resp) <= 4096 {
					b.outs[b.toSend] = resp[:0]
				}
				b.queue(i, resp)
			}
		}
		b.flush()
	}
}
