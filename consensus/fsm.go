package consensus

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/consensus/store"
)

// fsm applies committed log entries to the store. Raft calls Apply,
// StoreConfiguration, Snapshot and Restore from one goroutine; AppliedIndex
// and waitApplied are safe from any goroutine.
//
// Apply is deterministic: it reads no clock and no local state other than
// the store, so every replica that applies the same entries holds the same
// objects at the same revisions.
type fsm struct {
	store   *store.Store
	logger  hclog.Logger
	skipped atomic.Uint64 // entries Apply could not apply
	bytes   *logBytes     // the byte bounds of the log; nil: not counted

	mu      sync.Mutex
	applied uint64        // index of the last entry the store reflects
	advance chan struct{} // closed when applied moves, if anyone waits
	waiting bool
}

func newFSM(st *store.Store, logger hclog.Logger) *fsm {
	return &fsm{store: st, logger: logger, advance: make(chan struct{})}
}

var (
	_ raft.FSM                = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

// Apply implements raft.FSM. It returns []store.Result for ApplyOpsType, nil
// for a command skipped because it carries IgnoreUnknownTypeFlag, and an
// error (wrapping ErrCorruptCommand or ErrUnknownCommand) for an entry it
// cannot apply.
//
// An entry it cannot apply is skipped, logged and counted (SkippedEntries);
// it never panics. A panic would stop this agent, and every voter runs the
// same binary over the same log, so one bad entry would stop every voter,
// again at each restart as the entry is replayed. Skipping is the same on
// every replica of the same binary, so they stay alike; the proposer gets
// the error as the outcome of its write (nothing of it was applied).
func (f *fsm) Apply(l *raft.Log) any {
	defer f.setApplied(l.Index)
	f.bytes.applied(len(l.Data))
	if len(l.Data) == 0 {
		return f.skip(l.Index, fmt.Errorf("%w: empty entry", ErrCorruptCommand))
	}
	typ, payload := MessageType(l.Data[0]), l.Data[1:]
	switch typ {
	case ApplyOpsType:
		ops, err := DecodeApplyOps(payload)
		if err != nil {
			return f.skip(l.Index, err)
		}
		return f.store.Apply(ops)
	}
	if typ&IgnoreUnknownTypeFlag != 0 {
		f.logger.Warn("skipping unknown command type marked ignorable", "type", uint8(typ), "index", l.Index)
		return nil
	}
	// A newer binary's state change: this replica now lags the ones that
	// know it, until it is upgraded too (the count and the log say so).
	return f.skip(l.Index, fmt.Errorf("%w %d (without the ignore flag): upgrade this agent", ErrUnknownCommand, uint8(typ)))
}

// skip records an entry that could not be applied and returns the error
// the proposer gets.
func (f *fsm) skip(index uint64, err error) error {
	err = fmt.Errorf("log entry %d skipped: %w", index, err)
	n := f.skipped.Add(1)
	f.logger.Error("skipping a log entry that cannot be applied", "index", index, "skipped_total", n, "err", err)
	return err
}

// SkippedEntries is how many log entries this replica skipped since it
// started because it could not apply them.
func (f *fsm) SkippedEntries() uint64 { return f.skipped.Load() }

// StoreConfiguration implements raft.ConfigurationStore. Raft hands
// configuration entries to the FSM goroutine only through it; we use it to
// keep the applied index exact for ReadBarrier.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.setApplied(index)
}

func (f *fsm) setApplied(index uint64) {
	f.mu.Lock()
	f.applied = index
	if f.waiting {
		close(f.advance)
		f.advance = make(chan struct{})
		f.waiting = false
	}
	f.mu.Unlock()
}

// AppliedIndex is the index of the last log entry the store reflects.
func (f *fsm) AppliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// waitApplied returns once the store reflects index, or when ctx ends or
// stop is closed.
func (f *fsm) waitApplied(ctx context.Context, index uint64, stop <-chan struct{}) error {
	for {
		f.mu.Lock()
		if f.applied >= index {
			f.mu.Unlock()
			return nil
		}
		f.waiting = true
		ch := f.advance
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return ErrShutdown
		}
	}
}

// Snapshot format: a version byte, the applied index as 8 big-endian bytes,
// then the store's own snapshot.
const snapshotVersion = 1

// Snapshot implements raft.FSM. On the FSM goroutine it only captures a
// point-in-time view of the store (one pointer per object: stored objects
// are immutable), so Apply is held up for microseconds; Persist, which runs
// concurrently with later Applies, does the encoding and writing.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.bytes.snapshotted()
	return &fsmSnapshot{applied: f.AppliedIndex(), frozen: f.store.Capture()}, nil
}

// Restore implements raft.FSM: it replaces the store's content with the
// snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var hdr [9]byte
	if _, err := io.ReadFull(rc, hdr[:]); err != nil {
		return fmt.Errorf("consensus: restore: read header: %w", err)
	}
	if hdr[0] != snapshotVersion {
		return fmt.Errorf("consensus: restore: snapshot version %d, this binary knows %d", hdr[0], snapshotVersion)
	}
	if err := f.store.Restore(rc); err != nil {
		return fmt.Errorf("consensus: restore store: %w", err)
	}
	f.bytes.restored()
	f.setApplied(binary.BigEndian.Uint64(hdr[1:]))
	return nil
}

type fsmSnapshot struct {
	applied uint64
	frozen  *store.Frozen
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	var hdr [9]byte
	hdr[0] = snapshotVersion
	binary.BigEndian.PutUint64(hdr[1:], s.applied)
	w := bufio.NewWriterSize(sink, 256<<10)
	_, err := w.Write(hdr[:])
	if err == nil {
		_, err = s.frozen.WriteTo(w)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("consensus: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.frozen = nil }
