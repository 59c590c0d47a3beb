package consensus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/shoal-dev/shoal/consensus/store"
)

// HasState reports whether dataDir (a Config.DataDir) holds Raft state: the
// node was bootstrapped or received entries from a cluster. It creates
// nothing: a directory without raft.db has no state.
func HasState(dataDir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dataDir, "raft.db")); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	logs, snaps, closeAll, err := openDisk(dataDir, 1, hclog.NewNullLogger())
	if err != nil {
		return false, err
	}
	defer closeAll()
	return raft.HasExistingState(logs, logs, snaps)
}

// openDisk opens the on-disk log/stable store and the snapshot store of
// dataDir with the same settings as NewNode.
func openDisk(dataDir string, retain int, logger hclog.Logger) (*raftboltdb.BoltStore, raft.SnapshotStore, func() error, error) {
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(dataDir, "raft.db"),
		// The log is still fsynced on every commit; only bolt's free-page
		// list is not written out (it is rebuilt by scanning on open).
		// That removes pages from every commit of a log that is appended
		// and truncated all day, as Consul's raft_boltdb settings do.
		BoltOptions: &bbolt.Options{
			Timeout:        time.Second,
			NoFreelistSync: true,
			FreelistType:   bbolt.FreelistMapType,
		},
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("consensus: open raft.db (is an agent still running on this data dir?): %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, retain, logger.Named("snapshot"))
	if err != nil {
		bolt.Close()
		return nil, nil, nil, fmt.Errorf("consensus: snapshot store: %w", err)
	}
	return bolt, snaps, bolt.Close, nil
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
	logs, snaps, closeAll, err := openDisk(cfg.DataDir, max(cfg.SnapshotRetain, 1), logger)
	if err != nil {
		return err
	}
	defer closeAll()
	rc := cfg.raftConfig(logger)
	_, trans := raft.NewInmemTransport(raft.ServerAddress(addr))
	defer trans.Close()
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(addr),
	}}}
	// The FSM replays the log into a throw-away store to write the
	// snapshot RecoverCluster takes; NewNode later restores from it.
	f := newFSM(store.New(store.DefaultConfig()), logger.Named("fsm"))
	if err := raft.RecoverCluster(rc, f, logs, logs, snaps, trans, conf); err != nil {
		return fmt.Errorf("consensus: recover: %w", err)
	}
	return nil
}
