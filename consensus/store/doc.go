// Package store is Shoal's in-memory, indexed object store: the state that
// Raft replicates, and what controllers and tests use directly without Raft.
//
// It owns:
//   - objects by kind, namespace and name, with a per-namespace index so a
//     namespaced list never scans other namespaces, and an index of pods by
//     spec.nodeName so "the pods of node X" costs O(pods on X);
//   - one global revision, bumped by every successful operation and written
//     into the object's metadata.resourceVersion;
//   - optimistic concurrency (resourceVersion preconditions), generation
//     bumps on spec changes, and status kept apart from spec (OpUpdateStatus);
//   - watches from a revision, replayed from a bounded history;
//   - snapshot and restore in a versioned, streaming format.
//
// It must not import raft or any Shoal package other than api, read a clock
// or draw random numbers: Apply is deterministic, so every replica that
// applies the same operations in the same order holds the same objects.
//
// # Ownership of objects
//
// The store takes ownership of the objects passed in Ops: the caller must not
// touch them after Apply. The store never changes an object once stored; an
// update stores a new object. Objects the store returns (Get, List, Result,
// Event) are shared by every reader and read-only: call DeepCopyObject before
// changing one.
//
// # Watches
//
// A watch delivers, in revision order, the events after a revision. Events are
// pushed into the watcher's buffered channel while Apply holds the write lock,
// without ever blocking: a watcher whose buffer is full is closed with
// ErrWatchOverflow and must list and watch again. As in Kubernetes, a watch
// with a selector sees an update that makes an object stop matching as
// DELETED, and one that makes it start matching as ADDED.
//
// # Snapshot format (version 1)
//
// One JSON value per line:
//
//	{"format":"shoal-store","version":1,"revision":R}
//	{"kind":"Pod","object":{...}}            one line per object, sorted by kind, namespace, name
//	{"end":true,"count":N,"revision":R}
//
// The trailer lets Restore tell a complete snapshot from a truncated one.
// Capture freezes the content at one revision in O(objects) pointer copies,
// so a Raft FSM can take the snapshot in FSM.Snapshot and write it later in
// Persist without holding up Apply.
package store
