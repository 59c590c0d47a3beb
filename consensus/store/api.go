package store

// This file fixes the store's public API so that the packages above it
// (consensus, agent) can be written against it. The bodies are in store.go,
// watch.go and snapshot.go.

import (
	"errors"
	"io"

	"github.com/shoal-dev/shoal/api"
)

// Errors returned by the store. They are wrapped with the object's identity
// (fmt.Errorf("%w: ...")); test them with errors.Is.
var (
	// ErrNotFound: no object with that kind, namespace and name.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a create named an object that exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the resourceVersion precondition did not match the stored object.
	ErrConflict = errors.New("conflict")
	// ErrTooOld: a watch asked for a revision older than the retained history (HTTP 410).
	ErrTooOld = errors.New("resource version too old")
	// ErrInvalid: an operation that can never apply (unknown kind, missing name, ...).
	ErrInvalid = errors.New("invalid")
	// ErrWatchOverflow: a watcher fell too far behind and was closed; re-list and watch again.
	ErrWatchOverflow = errors.New("watcher fell behind")
	// ErrBadSnapshot: Restore read a corrupt, truncated or unsupported snapshot;
	// the store was left unchanged.
	ErrBadSnapshot = errors.New("bad snapshot")
)

// Key names one object. Namespace is empty for cluster-scoped kinds.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// KeyOf returns the key of a typed object.
func KeyOf(obj api.Object) Key {
	m := obj.GetObjectMeta()
	return Key{Kind: api.KindOf(obj), Namespace: m.Namespace, Name: m.Name}
}

// OpType is the kind of change an Op makes.
type OpType uint8

const (
	// OpCreate stores a new object; it fails with ErrAlreadyExists.
	OpCreate OpType = iota + 1
	// OpUpdate replaces an object's metadata and spec, keeping its status.
	// A non-empty metadata.resourceVersion must match the stored one.
	// metadata.generation is bumped when the spec changes.
	OpUpdate
	// OpUpdateStatus replaces only the status of an object, keeping the rest.
	OpUpdateStatus
	// OpDelete removes the object named by Key. A non-zero ResourceVersion
	// must match the stored one.
	OpDelete
)

// Op is one change. Several Ops travel in one Raft entry and are applied in
// order; each succeeds or fails on its own.
//
// The proposer fills everything that must be the same on every replica
// (uid, creationTimestamp, generated names) before the Op is proposed: Apply
// is deterministic and reads no clock.
type Op struct {
	Type            OpType
	Object          api.Object // OpCreate, OpUpdate, OpUpdateStatus
	Key             Key        // OpDelete
	ResourceVersion int64      // OpDelete precondition; 0 means none
}

// Result is the outcome of one Op: the object as stored (with its new
// resourceVersion), or, for a delete, the object as it was; or an error.
type Result struct {
	Object api.Object
	Err    error
}

// EventType is the type of a watch event, spelled as Kubernetes does.
type EventType string

const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change seen by a watcher. Revision is the store revision of
// the change (equal to the object's resourceVersion, and for a delete, the
// revision at which it was deleted).
type Event struct {
	Type     EventType
	Object   api.Object
	Revision int64
	// Prev is, for MODIFIED, the object as it was before the change (so a
	// consumer can tell which selections it left); nil otherwise.
	Prev api.Object
}

// Selector narrows a list or watch. A nil Labels or Fields matches everything.
type Selector struct {
	Labels api.Selector
	Fields api.FieldSelector
}

// Config tunes the store.
type Config struct {
	// HistorySize is how many past events are kept for watches that resume
	// from an older revision.
	HistorySize int
	// HistoryBytes bounds the same history by the estimated bytes of the
	// objects its events hold (each event's object and, for an update or
	// delete, the version it replaced): the oldest events go first. The
	// newest event is kept even if it alone is larger.
	HistoryBytes int64
	// WatchBuffer is the channel size of one watcher; a watcher that falls
	// further behind is closed with ErrWatchOverflow.
	WatchBuffer int
}

// DefaultConfig returns the production settings.
//
// 10,000 events cover minutes of a busy cluster, for watchers that
// reconnect; 64 MiB keeps that history from holding a large share of a
// voter's memory when objects are big (10,000 updates of a 1 MiB ConfigMap
// would otherwise keep 20,000 versions alive, 20 GiB).
func DefaultConfig() Config {
	return Config{HistorySize: 10000, HistoryBytes: 64 << 20, WatchBuffer: 1024}
}

// Interface summarises what Store offers; it is documentation, the consumers
// declare their own narrower interfaces.
type Interface interface {
	Get(key Key) (api.Object, error)
	List(kind, namespace string, sel Selector) (objs []api.Object, revision int64, err error)
	Apply(ops []Op) []Result
	Watch(kind, namespace string, fromRevision int64, sel Selector) (*Watcher, error)
	Revision() int64
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

var _ Interface = (*Store)(nil)
