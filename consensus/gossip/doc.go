// Package gossip is the membership layer every Shoal agent runs: a thin
// wrapper over hashicorp/memberlist (SWIM with the Lifeguard extensions).
//
// It owns:
//
//   - Meta, what each agent advertises to the others in memberlist's node
//     metadata (API and Raft addresses, zone, role, cluster ID, version),
//     with a versioned encoding that fits memberlist's 512-byte limit and
//     ignores fields added by newer agents.
//   - the member table: this agent's view of every member it has heard of,
//     including dead and departed ones together with the time they entered
//     that state, which is what the voter manager needs to decide that a
//     voter has been dead longer than its grace period.
//   - Join with exponential back-off, and the two ways a join must fail
//     loudly rather than partition silently: a node name already used by an
//     alive member at another address, and a gossip key that differs from
//     the cluster's.
//   - the keyring (keyring.go): up to MaxKeys keys, the primary encrypting
//     and all decrypting, replaced at run time by SetKeys for a key
//     rotation; Meta.Keyring advertises KeyringState (short hashes, never
//     a key) so the leader can see which members hold which keys.
//   - Events: joins, metadata updates and departures on a buffered channel.
//     memberlist's callbacks never block: when the channel is full the event
//     is dropped and counted, and the member table is updated regardless.
//
// It must not know about pods, Raft or the object store. It imports only the
// standard library and memberlist; the voter manager and the agent read its
// member table and events and decide what they mean.
//
// Timing: DefaultConfig is tuned for a LAN of 3 to 20 hosts so that a host
// that stops answering is declared dead within a few seconds (the
// arithmetic is next to DefaultConfig). TestConfig is the same machinery with
// timings fit for tests in one process over loopback.
//
// What memberlist v0.5.4 does not expose, and this package therefore does not
// report: the Suspect state (memberlist has no callback for it, and its
// public Node.State is never filled in). A member is Alive until memberlist
// declares it dead or it leaves.
package gossip
