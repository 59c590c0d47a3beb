// Package consensus runs Shoal's replicated control-plane state: a Raft node
// (hashicorp/raft with a raft-boltdb log, file snapshots and a TCP transport),
// the finite state machine that applies committed entries to the object
// store, and the codec of the commands carried in the log.
//
// It owns:
//
//   - Node: one Raft voter. Writes are proposed as batches of store.Op, one
//     Raft entry per batch; ReadBarrier gives a linearizable read point on the
//     leader; LeaderCh fans leadership changes out to any number of
//     consumers; AddVoter, RemoveServer and Bootstrap are the hooks the voter
//     manager (and later gossip) drive membership with.
//   - the FSM: decodes a command (one type byte plus payload) and calls
//     store.Apply; snapshots and restores the store together with the last
//     applied index.
//   - the codec: the byte layout of commands in the log. It is versioned; an
//     unknown command type with IgnoreUnknownTypeFlag set is skipped, any
//     other undecodable entry stops the replica (it must never diverge
//     silently).
//   - the transport: raft's NetworkTransport over our own StreamLayer, plain
//     TCP today and TLS when a *tls.Config is configured.
//
// It must not know about pods or scheduling: the store holds typed objects,
// and what they mean is decided in placement and agent. The store itself
// (consensus/store) never imports raft, so it can be used without it.
//
// Later in this package: memberlist gossip, the voter manager and leader
// forwarding of writes and reads from followers.
package consensus
