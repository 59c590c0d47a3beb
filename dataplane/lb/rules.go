package lb

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Each function here returns one rule: the expressions nft itself would
// generate for the text (checked with `nft --debug=netlink`), so that nft
// lists the rule exactly as the text says.
//
// Registers: 1 is the first 16-byte register; 9, 10, 11 are the 4-byte
// registers after the first 4 bytes of it, where the fields of a
// concatenation go; 2 is the second 16-byte register.

func native32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func loadSaddr(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

func loadDaddr(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

func loadL4proto(reg uint32) expr.Any { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg} }

func loadDport(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

func lookup(set string) expr.Any { return &expr.Lookup{SourceRegister: 1, SetName: set} }

func vmapLookup(set string) expr.Any {
	return &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: set}
}

func verdict(kind expr.VerdictKind, chain string) expr.Any {
	return &expr.Verdict{Kind: kind, Chain: chain}
}

func ruleJump(chain string) rule {
	return rule{"jump " + chain, []expr.Any{verdict(expr.VerdictJump, chain)}}
}

func ruleGoto(chain string) rule {
	return rule{"goto " + chain, []expr.Any{verdict(expr.VerdictGoto, chain)}}
}

// ruleHairpin: a connection DNATed back to the pod it came from.
func ruleHairpin() rule {
	return rule{"ip saddr . ip daddr @" + setHairpin + " masquerade", []expr.Any{
		loadSaddr(1), loadDaddr(9), lookup(setHairpin), &expr.Masq{},
	}}
}

func ruleMarkUnsetReturn(mark uint32) rule {
	return rule{fmt.Sprintf("meta mark & 0x%08x == 0x00000000 return", mark), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(mark), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(0)},
		verdict(expr.VerdictReturn, ""),
	}}
}

func ruleMarkClear(mark uint32) rule {
	return rule{fmt.Sprintf("meta mark set meta mark ^ 0x%08x", mark), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(0xffffffff), Xor: native32(mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}}
}

func ruleMarkSet(mark uint32) rule {
	return rule{fmt.Sprintf("meta mark set meta mark | 0x%08x", mark), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(^mark), Xor: native32(mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}}
}

func ruleMasqueradeFullyRandom() rule {
	return rule{"masquerade fully-random", []expr.Any{&expr.Masq{FullyRandom: true}}}
}

// matchPrefix compares the address at offset (12 source, 16 destination)
// with p the way nft does: a prefix of whole bytes compares just those
// bytes, any other masks the whole address.
func matchPrefix(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	addr := p.Addr().As4()
	if p.Bits()%8 == 0 {
		n := uint32(p.Bits() / 8)
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
			&expr.Cmp{Op: op, Register: 1, Data: addr[:n]},
		}
	}
	mask := net.CIDRMask(p.Bits(), 32)
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: addr[:]},
	}
}

func prefixText(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.String()
}

// ruleMasqueradeFromOutside marks traffic to a ClusterIP that does not come
// from a pod, so its replies return through this node.
func ruleMasqueradeFromOutside(cluster netip.Prefix) rule {
	ex := matchPrefix(12, cluster, expr.CmpOpNeq)
	ex = append(ex, loadDaddr(1), lookup(setClusterIPs), verdict(expr.VerdictJump, chainMarkMasq))
	return rule{fmt.Sprintf("ip saddr != %s ip daddr @%s jump %s", prefixText(cluster), setClusterIPs, chainMarkMasq), ex}
}

// ruleVIP: (daddr . l4proto . dport) looked up in set; vmap when then is
// "", else the rule's verdict is then (e.g. "goto reject-connection").
func ruleVIP(set string, then string) rule {
	ex := []expr.Any{loadDaddr(1), loadL4proto(9), loadDport(10)}
	text := "ip daddr . meta l4proto . th dport "
	if then == "" {
		return rule{text + "vmap @" + set, append(ex, vmapLookup(set))}
	}
	ex = append(ex, lookup(set), verdict(expr.VerdictGoto, then))
	return rule{text + "@" + set + " goto " + then, ex}
}

// nodeMatch matches packets to the node's addresses: those in set
// nodeport-ips, or (none configured) any local address but 127.0.0.0/8.
func nodeMatch(nodeIPSet bool) ([]expr.Any, string) {
	if nodeIPSet {
		return []expr.Any{loadDaddr(1), lookup(setNodePortIPs)}, "ip daddr @" + setNodePortIPs
	}
	ex := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(unix.RTN_LOCAL)},
	}
	ex = append(ex, matchPrefix(16, netip.MustParsePrefix("127.0.0.0/8"), expr.CmpOpNeq)...)
	return ex, "fib daddr type local ip daddr != 127.0.0.0/8"
}

// ruleNodePort is ruleVIP for (l4proto . dport) on the node's addresses.
func ruleNodePort(nodeIPSet bool, set string, then string) rule {
	ex, text := nodeMatch(nodeIPSet)
	ex = append(ex, loadL4proto(1), loadDport(9), lookup(set), verdict(expr.VerdictGoto, then))
	return rule{text + " meta l4proto . th dport @" + set + " goto " + then, ex}
}

// ruleNodeJump sends traffic to the node's addresses to chain.
func ruleNodeJump(nodeIPSet bool, chain string) rule {
	ex, text := nodeMatch(nodeIPSet)
	return rule{text + " jump " + chain, append(ex, verdict(expr.VerdictJump, chain))}
}

func ruleNodePortVmap(set string) rule {
	return rule{"meta l4proto . th dport vmap @" + set, []expr.Any{loadL4proto(1), loadDport(9), vmapLookup(set)}}
}

func ruleNodePortMark(set, chain string) rule {
	return rule{"meta l4proto . th dport @" + set + " jump " + chain, []expr.Any{
		loadL4proto(1), loadDport(9), lookup(set), verdict(expr.VerdictJump, chain),
	}}
}

func ruleNewJump(chain string) rule {
	return rule{"ct state new jump " + chain, []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(expr.CtStateBitNEW), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: native32(0)},
		verdict(expr.VerdictJump, chain),
	}}
}

func ruleRejectTCPReset() rule {
	return rule{"reject with tcp reset", []expr.Any{
		loadL4proto(1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	}}
}

func ruleRejectPortUnreachable() rule {
	return rule{"reject", []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}}}
}

// ruleDNATSized DNATs the ports in a sized set (those with n endpoints)
// to one of their endpoints: numgen picks a number below n, and the
// endpoint is found in a map keyed by the packet's destination and that
// number: (daddr . l4proto . dport . i) in cluster-endpoints, or
// (l4proto . dport . i) in nodeport-endpoints for NodePorts.
func ruleDNATSized(set string, n uint32, nodePort bool) rule {
	var ex []expr.Any
	var key, endpoints string
	if nodePort {
		key, endpoints = "meta l4proto . th dport", setNodePortEndpoints
		ex = append(ex, loadL4proto(1), loadDport(9), lookup(set),
			loadL4proto(1), loadDport(9), &expr.Numgen{Register: 10, Modulus: n, Type: unix.NFT_NG_RANDOM})
	} else {
		key, endpoints = "ip daddr . meta l4proto . th dport", setClusterEndpoints
		ex = append(ex, loadDaddr(1), loadL4proto(9), loadDport(10), lookup(set),
			loadDaddr(1), loadL4proto(9), loadDport(10), &expr.Numgen{Register: 11, Modulus: n, Type: unix.NFT_NG_RANDOM})
	}
	ex = append(ex,
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: endpoints},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9},
	)
	return rule{fmt.Sprintf("%s @%s dnat ip to %s . numgen random mod %d map @%s", key, set, key, n, endpoints), ex}
}

// Session affinity: one dynamic set of client addresses per endpoint.

func ruleAffinityHit(set, chain string) rule {
	return rule{fmt.Sprintf("ip saddr @%s goto %s", set, chain), []expr.Any{
		loadSaddr(1), lookup(set), verdict(expr.VerdictGoto, chain),
	}}
}

// rulePick sends 1 in n of the connections that reach it to chain: the
// i-th of n endpoints gets a 1/(n-i) share of what the earlier ones left,
// which is 1/n of the whole.
func rulePick(n int, chain string) rule {
	return rule{fmt.Sprintf("numgen random mod %d 0 goto %s", n, chain), []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(0)},
		verdict(expr.VerdictGoto, chain),
	}}
}

func ruleAffinityRemember(set string) rule {
	return rule{fmt.Sprintf("update @%s { ip saddr }", set), []expr.Any{
		loadSaddr(1),
		&expr.Dynset{SrcRegKey: 1, SetName: set, Operation: unix.NFT_DYNSET_OP_UPDATE},
	}}
}

func ruleDNATTo(proto protocol, e endpoint) rule {
	addr := e.addr.As4()
	return rule{fmt.Sprintf("meta l4proto %s dnat to %s", proto.name, e), []expr.Any{
		loadL4proto(1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto.number}},
		&expr.Immediate{Register: 1, Data: addr[:]},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, e.port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}}
}
