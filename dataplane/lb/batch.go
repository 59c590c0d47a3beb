package lb

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// maxElementBytes bounds the elements sent in one netlink message. The
// kernel reads the element list from one attribute, whose length field has
// 16 bits: a longer list wraps around and the kernel silently adds only
// what the wrapped length covers (10,000 verdict-map elements in one
// message: 1,178 landed). Half the limit leaves room for the estimate.
const maxElementBytes = 32 << 10

// Socket buffers for a batch. A full sync of tens of thousands of services
// is one netlink message of tens of megabytes, and the kernel answers every
// part of it; the defaults (and net.core.wmem_max, 4 MiB here) are far too
// small. As root the FORCE options go past the sysctl limits; these are
// limits, not allocations.
const (
	sendBuffer    = 256 << 20
	receiveBuffer = 256 << 20
)

// raiseBuffers is a socket option for nftables.New.
func raiseBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = errors.Join(
			setBuffer(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, sendBuffer),
			setBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, receiveBuffer))
	})
	return errors.Join(err, serr)
}

func setBuffer(fd, force, plain, size int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size); err == nil {
		return nil
	}
	// Without CAP_NET_ADMIN: as much as the sysctl allows.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size); err != nil {
		return fmt.Errorf("setsockopt buffer: %w", err)
	}
	return nil
}

// batch queues one transaction on a connection; Flush sends it atomically.
type batch struct {
	conn   *nftables.Conn
	table  *nftables.Table
	nextID uint32
	err    error
}

func newBatch(conn *nftables.Conn, table string) *batch {
	return &batch{conn: conn, table: &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}}
}

func (b *batch) fail(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

// resetTable queues the replacement of the table by an empty one (adding it
// first, so that deleting cannot fail when it does not exist).
func (b *batch) resetTable() {
	b.conn.AddTable(b.table)
	b.conn.DelTable(b.table)
	b.conn.AddTable(b.table)
}

func (b *batch) addSet(s *setSpec) {
	// Our own ids: the library's counter is a global without a lock.
	b.nextID++
	b.fail(b.conn.AddSet(s.nft(b.table, b.nextID), nil))
}

func (b *batch) delSet(name string) {
	b.conn.DelSet(&nftables.Set{Table: b.table, Name: name})
}

// setRef names an existing set (or one created earlier in the batch):
// the kernel finds it by name.
func (b *batch) setRef(name string) *nftables.Set {
	return &nftables.Set{Table: b.table, Name: name}
}

// addElements adds elements in messages small enough to arrive whole.
func (b *batch) addElements(set string, els []element) {
	b.chunks(els, func(s []nftables.SetElement) error { return b.conn.SetAddElements(b.setRef(set), s) })
}

// delElements deletes elements by key.
func (b *batch) delElements(set string, els []element) {
	keys := make([]element, len(els))
	for i, e := range els {
		keys[i] = element{key: e.key, klen: e.klen}
	}
	b.chunks(keys, func(s []nftables.SetElement) error { return b.conn.SetDeleteElements(b.setRef(set), s) })
}

func (b *batch) chunks(els []element, send func([]nftables.SetElement) error) {
	var chunk []nftables.SetElement
	size := 0
	for i := range els {
		e := &els[i]
		if n := e.size(); size+n > maxElementBytes && len(chunk) > 0 {
			b.fail(send(chunk))
			chunk, size = nil, 0
		}
		if chunk == nil {
			chunk = make([]nftables.SetElement, 0, min(len(els)-i, maxElementBytes/64))
		}
		chunk = append(chunk, e.nft())
		size += e.size()
	}
	if len(chunk) > 0 {
		b.fail(send(chunk))
	}
}

func (b *batch) addChain(c *chainSpec) {
	b.conn.AddChain(c.nft(b.table))
}

func (b *batch) addRules(c *chainSpec) {
	ch := &nftables.Chain{Table: b.table, Name: c.name}
	for _, r := range c.rules {
		b.conn.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: r.exprs})
	}
}

func (b *batch) flushChain(name string) {
	b.conn.FlushChain(&nftables.Chain{Table: b.table, Name: name})
}

func (b *batch) delChain(name string) {
	b.conn.DelChain(&nftables.Chain{Table: b.table, Name: name})
}

// flush sends the batch: all of it takes effect, or none.
func (b *batch) flush() error {
	if b.err != nil {
		return fmt.Errorf("prepare batch: %w", b.err)
	}
	return b.conn.Flush()
}

// full queues the whole ruleset on a reset table: sets, then chains, then
// rules (which refer to sets and chains), then elements (which refer to
// chains).
func (b *batch) full(r *ruleset) {
	b.resetTable()
	for _, s := range r.sets {
		b.addSet(s)
	}
	for _, c := range r.chains {
		b.addChain(c)
	}
	for _, c := range r.chains {
		b.addRules(c)
	}
	for _, s := range r.sets {
		b.addElements(s.name, s.elements)
	}
}

// incremental queues the changes in an order the kernel accepts at every
// step: nothing is deleted while something still refers to it, nothing is
// referred to before it exists.
func (b *batch) incremental(p *plan, c *changes) {
	del, add := c.elementOps()
	create, remove, after := c.sizedOps()
	// The chains whose rules follow the sized sets in use.
	var refill []*chainSpec
	if len(create)+len(remove) > 0 {
		before := map[string]*chainSpec{}
		for _, ch := range []*chainSpec{p.servicesChain(c.sizedBefore), p.nodePortsChain(c.sizedBefore)} {
			before[ch.name] = ch
		}
		for _, ch := range []*chainSpec{p.servicesChain(after), p.nodePortsChain(after)} {
			if !ch.sameRules(before[ch.name]) {
				refill = append(refill, ch)
			}
		}
	}

	for _, set := range sortedSetIDs(del) {
		b.delElements(set.spec().name, del[set])
	}
	for _, ch := range refill {
		b.flushChain(ch.name)
	}
	for _, name := range c.flush {
		b.flushChain(name)
	}
	for _, name := range c.delChains {
		b.delChain(name)
	}
	for _, name := range c.delSets {
		b.delSet(name)
	}
	for _, id := range remove {
		b.delSet(id.spec().name)
	}
	for _, id := range create {
		b.addSet(id.spec())
	}
	for _, s := range c.addSets {
		b.addSet(s)
	}
	for _, ch := range c.addChains {
		b.addChain(ch)
	}
	for _, ch := range refill {
		b.addRules(ch)
	}
	for _, ch := range c.addChains {
		b.addRules(ch)
	}
	for _, ch := range c.fillChains {
		b.addRules(ch)
	}
	for _, set := range sortedSetIDs(add) {
		b.addElements(set.spec().name, add[set])
	}
}
