package agent

import (
	"fmt"

	"github.com/shoal-dev/shoal/consensus"
)

// Recover rebuilds the control plane from this agent's data after the
// permanent loss of quorum (say 2 of 3 voters gone for good): with the agent
// stopped, it rewrites the Raft configuration in cfg.DataDir so that this
// agent (cfg.NodeName at cfg.RaftAddr, advertised as --advertise would) is
// the only voter. Started again with the same data dir, the agent elects
// itself, serves everything it had, and its voter manager promotes other
// agents back to the target. See consensus.Recover for the caveats.
//
// The cluster id moves to the next epoch ("LINEAGE.2", then ".3", ...): an
// old voter that comes back with its data still advertises the old epoch,
// so gossip refuses it and it stops rather than run Raft of the old
// configuration (two of them together would still be a quorum of it).
// Non-voters of the old epoch hold no Raft data and adopt the new one.
func Recover(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	a := &Agent{cfg: cfg}
	rc := a.raftConfig()
	rc.BindAddr = cfg.RaftAddr
	rc.AdvertiseAddr = a.advertised(cfg.RaftAddr, "")
	old, err := readClusterID(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if err := consensus.Recover(rc); err != nil {
		return fmt.Errorf("recover: %w (raft-addr must be where this agent's Raft listens, with a specific IP or --advertise)", err)
	}
	next := nextEpoch(old)
	if err := writeClusterID(cfg.DataDir, next); err != nil {
		return fmt.Errorf("recover: the Raft configuration was rewritten, but %w; write %q to DATA_DIR/%s by hand before starting the agent", err, next, clusterIDFile)
	}
	return nil
}

// raftConfig is this agent's Raft configuration as far as it does not
// depend on how the node is reached: the settings (Config.Raft or the
// defaults), its ID, data dir and log store; startRaft and Recover
// share it.
func (a *Agent) raftConfig() consensus.Config {
	rc := consensus.DefaultConfig()
	if a.cfg.Raft != nil {
		rc = *a.cfg.Raft
	}
	rc.ID = a.cfg.NodeName
	rc.DataDir = a.raftDir()
	if a.cfg.RaftLogStore != "" {
		rc.LogStore = a.cfg.RaftLogStore
	}
	return rc
}
