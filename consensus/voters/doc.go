// Package voters decides which agents are Shoal's Raft voters. It holds two
// pure decisions:
//
//   - Plan, the voter manager run by the leader: given the gossip view of the
//     agents, the current Raft configuration with each server's Raft health
//     (Judge) and the time, it proposes at most one membership change (stage
//     a non-voter, promote a caught-up one, or remove a server) and says
//     why. With every seat taken it also moves a vote out of a zone holding
//     two voters into a zone holding none (stage, promote, then remove). Check applies the same quorum rule to a change asked for by hand.
//   - DecideBootstrap, run by an agent that is in no cluster yet: given the
//     agents it can see, it says whether to wait, to bootstrap a new
//     one-voter cluster, or to join a cluster another agent advertises.
//     DecideBootstrapFor adds what keeps a second cluster from forming: an
//     agent whose data dir names its cluster joins only that one, and none
//     bootstraps while a --join address is unanswered.
//
// It owns only the deciding. It must not do anything: no goroutines, no I/O,
// no clock (the time comes in as Input.Now), no Raft or memberlist imports,
// nothing of pods or scheduling. The agent's loops read gossip and Raft, call
// these functions and apply the result; after applying one change they read
// the configuration again and plan again.
package voters
