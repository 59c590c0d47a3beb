package consensus

import (
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/consensus/store"
)

// HasState reports whether dataDir (a Config.DataDir) holds Raft state: the
// node was bootstrapped or received entries from a cluster. It opens
// whichever kind of log the directory holds and creates nothing: a
// directory without a log has no state.
func HasState(dataDir string) (bool, error) {
	kind, err := detectLogStore(dataDir)
	if err != nil || kind == "" {
		return false, err
	}
	d, err := openDisk(dataDir, kind, 1, hclog.NewNullLogger())
	if err != nil {
		return false, err
	}
	defer d.close()
	return raft.HasExistingState(d.logs, d.stable, d.snaps)
}

// Recover rewrites the Raft configuration stored in cfg.DataDir so that
// this node (cfg.ID at cfg.AdvertiseAddr, else cfg.BindAddr) is the only
// voter. It is the way out of a permanent loss of quorum: run it, with the
// agent stopped, on one surviving voter; started again, that node elects
// itself and serves all the data it had, and new voters can be added.
//
// It uses raft.RecoverCluster, which commits every entry in the local log,
// including any that the lost quorum never committed: pick the survivor
// with the highest last index. The other old voters must not come back with
// their data: wipe their data dirs first.
func Recover(cfg Config) error {
	if cfg.ID == "" {
		return errors.New("consensus: recover: ID is required")
	}
	if cfg.DataDir == "" {
		return errors.New("consensus: recover: DataDir is required")
	}
	addr := cfg.AdvertiseAddr
	if addr == "" {
		addr = cfg.BindAddr
	}
	if err := checkAdvertise(addr); err != nil {
		return fmt.Errorf("consensus: recover: raft address %q: %w", addr, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	}
	has, err := HasState(cfg.DataDir)
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("consensus: recover: %s holds no raft state", cfg.DataDir)
	}
	d, err := openDisk(cfg.DataDir, logStoreKind(cfg.LogStore), max(cfg.SnapshotRetain, 1), logger)
	if err != nil {
		return err
	}
	defer d.close()
	rc := cfg.raftConfig(logger)
	_, trans := raft.NewInmemTransport(raft.ServerAddress(addr))
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(addr),
	}}}
	// The FSM replays the log into a throw-away store to write the
	// snapshot RecoverCluster takes; NewNode later restores from it.
	f := newFSM(store.New(store.DefaultConfig()), logger.Named("fsm"))
	if err := raft.RecoverCluster(rc, f, d.logs, d.stable, d.snaps, trans, conf); err != nil {
		return fmt.Errorf("consensus: recover: %w", err)
	}
	return nil
}
