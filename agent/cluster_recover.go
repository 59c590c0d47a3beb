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
func Recover(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	a := &Agent{cfg: cfg}
	rc := consensus.DefaultConfig()
	if cfg.Raft != nil {
		rc = *cfg.Raft
	}
	rc.ID = cfg.NodeName
	rc.DataDir = a.raftDir()
	rc.BindAddr = cfg.RaftAddr
	rc.AdvertiseAddr = a.advertised(cfg.RaftAddr, "")
	if err := consensus.Recover(rc); err != nil {
		return fmt.Errorf("recover: %w (raft-addr must be where this agent's Raft listens, with a specific IP or --advertise)", err)
	}
	return nil
}
