package consensus

import (
	"errors"
	"fmt"
)

// Errors returned by Node. Test them with errors.Is, and ErrNotLeader with
// errors.As.
var (
	// ErrShutdown: the node has been shut down; nothing more can be done
	// with it.
	ErrShutdown = errors.New("consensus: node is shut down")

	// ErrOutcomeUnknown: a proposal left this node but the node cannot tell
	// whether it committed (leadership was lost in flight, or the caller's
	// context ended first). The caller must re-read before retrying a write
	// that is not idempotent. It is joined with the cause, e.g.
	// context.DeadlineExceeded.
	ErrOutcomeUnknown error = outcomeUnknown{}

	// ErrUnknownCommand: a log entry carries a command type this binary does
	// not know. With IgnoreUnknownTypeFlag set the FSM skips it quietly;
	// without, it skips it, logs an error and counts it (Status.
	// SkippedEntries), and Propose returns this error.
	ErrUnknownCommand = errors.New("consensus: unknown command type")

	// ErrCorruptCommand: a log entry of a known type could not be decoded.
	// The FSM skips it, logs an error and counts it (Status.SkippedEntries);
	// it never panics, which would stop every voter at the same entry, and
	// again at every restart. Propose returns this error: nothing of the
	// entry was applied.
	ErrCorruptCommand = errors.New("consensus: undecodable command")

	// ErrAlreadyBootstrapped: Bootstrap was called on a node that already
	// has Raft state (it was bootstrapped, or joined a cluster, before).
	ErrAlreadyBootstrapped = errors.New("consensus: node already has raft state")
)

// ErrNotLeader is returned by operations that only the leader can perform
// when this node is not the leader. LeaderID and LeaderAddr name the current
// leader if this node knows it, and are empty otherwise (an election is in
// progress or this node is partitioned).
type ErrNotLeader struct {
	LeaderID   string
	LeaderAddr string
}

func (e *ErrNotLeader) Error() string {
	if e.LeaderID == "" && e.LeaderAddr == "" {
		return "consensus: not the leader, and no leader is known"
	}
	return fmt.Sprintf("consensus: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

// LeaderAddress is the Raft address of the leader, or "" when none is known.
// The API server names it in its 503 answer until writes are forwarded.
func (e *ErrNotLeader) LeaderAddress() string { return e.LeaderAddr }

// outcomeUnknown is ErrOutcomeUnknown's type: its method lets a package
// that does not import this one (the API server) recognise it.
type outcomeUnknown struct{}

func (outcomeUnknown) Error() string { return "consensus: outcome of the proposal is unknown" }

// OutcomeUnknown reports that the proposal may or may not have committed.
func (outcomeUnknown) OutcomeUnknown() bool { return true }
