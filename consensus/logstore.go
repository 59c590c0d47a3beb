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
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// The log stores a Config.LogStore can name.
const (
	// LogStoreBolt keeps the log and the stable store in one bbolt file,
	// DataDir/raft.db (raft-boltdb v2). Every append commits a bolt
	// transaction: two fsyncs (the pages, then the meta page).
	LogStoreBolt = "bolt"
	// LogStoreWAL keeps the log in append-only segment files under
	// DataDir/wal (hashicorp/raft-wal): one fsync per appended batch. The
	// stable store (current term, vote) is raft-wal's own, a small bbolt
	// file in the same directory, written only when the term or vote
	// changes.
	LogStoreWAL = "wal"
)

// Where each kind lives in DataDir. The kind of a data dir is told by which
// of them exists, so a dir is never opened with the other kind (which would
// start a second, empty log beside the first).
const (
	boltFile = "raft.db"
	walDir   = "wal"
	walLock  = "LOCK" // in walDir, flocked while the WAL is open
)

// LogStoreMismatchError: DataDir holds a log of another kind than the one
// asked for.
type LogStoreMismatchError struct {
	DataDir string
	Want    string // the configured kind
	Have    string // the kind found in DataDir
}

func (e *LogStoreMismatchError) Error() string {
	return fmt.Sprintf("consensus: config: LogStore: %q, but %s holds a %q Raft log; start with LogStore %q (agent flag --raft-log-store=%s), the kind the data dir was made with (a data dir keeps its kind: there is no migration)",
		e.Want, e.DataDir, e.Have, e.Have, e.Have)
}

// logStoreKind normalises a Config.LogStore value ("" means bolt).
func logStoreKind(s string) string {
	if s == "" {
		return LogStoreBolt
	}
	return s
}

// detectLogStore reports which kind of log dataDir holds, "" if none.
func detectLogStore(dataDir string) (string, error) {
	exists := func(p string) (bool, error) {
		_, err := os.Stat(filepath.Join(dataDir, p))
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	b, err := exists(boltFile)
	if err != nil {
		return "", fmt.Errorf("consensus: %w", err)
	}
	w, err := exists(filepath.Join(walDir, metadb.FileName))
	if err != nil {
		return "", fmt.Errorf("consensus: %w", err)
	}
	switch {
	case b && w:
		return "", fmt.Errorf("consensus: %s holds both a %q log (%s) and a %q log (%s/); remove the one not in use", dataDir, LogStoreBolt, boltFile, LogStoreWAL, walDir)
	case b:
		return LogStoreBolt, nil
	case w:
		return LogStoreWAL, nil
	}
	return "", nil
}

// disk is a data dir's open stores.
type disk struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	close  func() error
}

// openDisk opens the log, stable and snapshot stores of dataDir with the
// same settings as NewNode. kind is a normalised Config.LogStore
// (logStoreKind). A dir holding the other kind is refused with a
// *LogStoreMismatchError.
func openDisk(dataDir, kind string, retain int, logger hclog.Logger) (*disk, error) {
	have, err := detectLogStore(dataDir)
	if err != nil {
		return nil, err
	}
	if have != "" && have != kind {
		return nil, &LogStoreMismatchError{DataDir: dataDir, Want: kind, Have: have}
	}
	var d *disk
	switch kind {
	case LogStoreBolt:
		d, err = openBolt(dataDir)
	case LogStoreWAL:
		d, err = openWAL(dataDir, logger)
	default:
		return nil, fmt.Errorf("consensus: config: LogStore: %q is neither %q nor %q", kind, LogStoreBolt, LogStoreWAL)
	}
	if err != nil {
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dataDir, retain, logger.Named("snapshot"))
	if err != nil {
		_ = d.close()
		return nil, fmt.Errorf("consensus: snapshot store: %w", err)
	}
	d.snaps = snaps
	return d, nil
}

func openBolt(dataDir string) (*disk, error) {
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(dataDir, boltFile),
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
		return nil, fmt.Errorf("consensus: open %s (is an agent still running on this data dir?): %w", boltFile, err)
	}
	return &disk{logs: bolt, stable: bolt, close: bolt.Close}, nil
}

// openWAL opens (or creates) DataDir/wal. raft-wal opens its meta file
// without a lock timeout, so a second process would hang on it: a flock of
// our own, taken without waiting, refuses that at once. The meta store is
// ours to close too (v0.4.0's Close left the file open; closing twice is
// harmless).
func openWAL(dataDir string, logger hclog.Logger) (*disk, error) {
	dir := filepath.Join(dataDir, walDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, walLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("consensus: lock %s (is an agent still running on this data dir?): %w", dir, err)
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta), wal.WithLogger(logger.Named("wal")))
	if err != nil {
		_ = meta.Close()
		lock.Close() // releases the flock
		return nil, fmt.Errorf("consensus: open %s: %w", dir, err)
	}
	closeAll := func() error {
		err := errors.Join(w.Close(), meta.Close())
		return errors.Join(err, lock.Close())
	}
	return &disk{logs: w, stable: w, close: closeAll}, nil
}
