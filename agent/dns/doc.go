// Package dns answers DNS queries for the cluster's services from an
// in-memory index that its caller keeps up to date.
//
// Every agent runs one Server. The caller feeds it Services and Endpoints
// (Upsert, Delete, Replace) from whatever follows the control plane, hands
// it sockets to serve on (Serve, possibly made inside a pod network
// namespace), and writes pods' resolv.conf with ResolvConf. The package
// never talks to the control plane itself: an answer for a name in the
// cluster domain comes from the index alone, so no query waits on Raft or
// the network. Only names outside the cluster domain leave the process,
// forwarded to the upstream resolvers, with a bounded time to answer
// (SERVFAIL when none answers in time).
//
// # Names
//
// With the cluster domain D (cluster.local by default), a Service S in
// namespace N owns:
//
//	S.N.svc.D                A/AAAA  the ClusterIPs; for a headless Service
//	                                 (clusterIP None) its ready endpoint
//	                                 addresses, and the not-ready ones too
//	                                 with publishNotReadyAddresses
//	H.S.N.svc.D              A/AAAA  an endpoint address that carries the
//	                                 hostname H (StatefulSet pods)
//	E.S.N.svc.D              A/AAAA  headless only: every endpoint address,
//	                                 E its hostname or its IP with dashes
//	                                 (10-244-1-7)
//	_P._tcp.S.N.svc.D        SRV     a named port P (protocol tcp, udp or
//	                                 sctp): one record with target S.N.svc.D
//	                                 for a ClusterIP Service, one per
//	                                 endpoint address with target
//	                                 E.S.N.svc.D for a headless one; the
//	                                 targets' addresses ride in the
//	                                 additional section
//	<reversed IP>.in-addr.arpa / ip6.arpa
//	                         PTR     a ClusterIP → S.N.svc.D, and an
//	                                 endpoint address with a hostname →
//	                                 H.S.N.svc.D
//
// A name under D that no Service owns gets NXDOMAIN with the zone's SOA in
// the authority section; a name that exists (or has names below it, such
// as N.svc.D) asked for a type it lacks gets NOERROR with no answer
// (NODATA) and the SOA. Names compare case-insensitively; the question goes
// back as the client spelled it.
//
// # Limits
//
// A query is one message of at most MaxQuerySize (4096) bytes; over UDP a
// query with no EDNS0 OPT record may be at most 512 bytes. Anything larger
// is dropped (a TCP connection that announces a larger message is closed).
// A message whose header parses but whose body does not gets FORMERR; one
// too short for a header, or that is itself a response, is dropped. UDP
// answers fit 512 bytes, or the client's EDNS0 size capped at 1232; a
// larger answer is truncated and carries TC, so the client asks again over
// TCP, where answers go up to 65535 bytes. Stats counts every outcome.
//
// # How it answers fast
//
// The index keeps, for every name, the wire-format response for each type
// the name has, built when the Service or Endpoints changed, without its
// ID and question. A query that is a plain one-question lookup is answered
// by copying the request's ID and question and then that response, with
// the request's RD and CD flags (and an OPT record appended when the query
// had one), without parsing it into a message or allocating. Everything else goes through github.com/miekg/dns. On
// 64-bit Linux a UDP socket is read and written in batches (recvmmsg and
// sendmmsg through the runtime's poller), so that under load a query costs
// a fraction of a system call; one reader per socket is the most
// efficient, and Listen binds several sockets with SO_REUSEPORT to use
// more cores.
//
// # Memory
//
// 10,000 ClusterIP Services with 10 endpoints each take about 9 MiB of
// heap (40,000 names); 10,000 headless ones, whose endpoints all get
// names, about 29 MiB (110,000 names), besides the Service and Endpoints
// objects, which the index shares with its caller. A name keeps its packed
// responses and which Services own it, not their records: those are
// computed again from the Services' objects when the name changes. A change costs what
// its Service costs, whatever the size of the cluster (TestIndexHeap).
package dns
