// Package consensus replicates Shoal's object store with Raft: one Node per
// voter, the finite state machine that applies committed entries to the
// store, and the codec of the commands carried in the log.
//
// It owns:
//
//   - Node: one Raft voter (hashicorp/raft with a raft-boltdb or raft-wal
//     log and stable store, Config.LogStore, and file snapshots). Propose applies a list of store.Op in
//     order; one batcher goroutine packs the proposals that are waiting into
//     one log entry, and each caller gets the results of its own ops.
//     ReadBarrier gives a linearizable read point on the leader; LeaderCh
//     fans leadership changes out to any number of consumers; Bootstrap,
//     AddVoter, RemoveServer and LeadershipTransfer are the hooks that
//     membership changes go through.
//   - the FSM: decodes a command (one type byte plus payload) and calls
//     store.Apply; snapshots and restores the store together with the last
//     applied index. It counts the bytes it applies, so the log is bounded
//     in bytes as well as entries (Config.SnapshotBytes, TrailingBytes;
//     logbytes.go): an entry may carry a thousand writes.
//   - the codec: the byte layout of commands in the log, objects written
//     and read by one JSON library. It is versioned; an unknown command
//     type with IgnoreUnknownTypeFlag set is skipped quietly, any other
//     entry the FSM cannot apply is skipped, logged as an error and counted
//     (Status.SkippedEntries), never a panic: every voter would stop at the
//     same entry, and again at each restart.
//   - the transport: raft's NetworkTransport over our own stream layer,
//     plain TCP, or TLS when Config.TLS is set.
//   - HasState and Recover, offline tools for a data directory: whether it
//     holds Raft state, and making one surviving voter the only voter after
//     a permanent loss of quorum.
//
// It must not know about pods or scheduling: the store holds typed objects,
// and what they mean is decided in placement and agent. It imports only the
// store and api of Shoal's packages.
//
// Next to it: consensus/store (the store, usable without Raft),
// consensus/gossip (memberlist) and consensus/voters (which agents vote).
// The loops that drive them, and the forwarding of writes to the leader,
// live in the agent.
package consensus
