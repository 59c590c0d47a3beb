package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	gojson "github.com/goccy/go-json"

	"github.com/shoal-dev/shoal/api"
)

const (
	snapshotFormat  = "shoal-store"
	snapshotVersion = 1
)

type snapshotHeader struct {
	Format   string `json:"format"`
	Version  int    `json:"version"`
	Revision int64  `json:"revision"`
}

type snapshotObject struct {
	Kind   string     `json:"kind"`
	Object api.Object `json:"object"`
}

type snapshotTrailer struct {
	End      bool  `json:"end"`
	Count    int   `json:"count"`
	Revision int64 `json:"revision"`
}

// snapshotLine is any line, for decoding.
type snapshotLine struct {
	Format   string          `json:"format"`
	Version  int             `json:"version"`
	Revision int64           `json:"revision"`
	Kind     string          `json:"kind"`
	Object   json.RawMessage `json:"object"`
	End      bool            `json:"end"`
	Count    int             `json:"count"`
}

// Snapshot writes every object and the revision to w (format in the package
// documentation). It is Capture().WriteTo(w): the read lock is held only to
// collect pointers, so a slow writer never holds up Apply.
func (s *Store) Snapshot(w io.Writer) error {
	_, err := s.Capture().WriteTo(w)
	return err
}

// Frozen is the content of the store at one revision, captured by Capture.
// Stored objects are immutable, so it costs one pointer per object and stays
// valid however the store changes afterwards.
type Frozen struct {
	rev  int64
	objs []snapshotObject
}

// Capture returns the content of the store at its current revision, to be
// written later (for instance by a Raft FSMSnapshot's Persist, which must see
// the state as of the Snapshot call while Apply carries on).
func (s *Store) Capture() *Frozen {
	s.mu.RLock()
	rev := s.rev
	kinds := make([]string, 0, len(s.tables))
	for k := range s.tables {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	perKind := make([][]api.Object, len(kinds))
	for i, k := range kinds {
		for _, byName := range s.tables[k].byNS {
			for _, o := range byName {
				perKind[i] = append(perKind[i], o)
			}
		}
	}
	s.mu.RUnlock()

	f := &Frozen{rev: rev}
	for i, k := range kinds {
		sortObjects(perKind[i])
		for _, o := range perKind[i] {
			f.objs = append(f.objs, snapshotObject{Kind: k, Object: o})
		}
	}
	return f
}

// Revision is the store revision the capture was taken at.
func (f *Frozen) Revision() int64 { return f.rev }

// Len is the number of objects captured.
func (f *Frozen) Len() int { return len(f.objs) }

// countingWriter counts what reaches the underlying writer.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteTo writes the capture in the snapshot format. It may be called more
// than once.
func (f *Frozen) WriteTo(out io.Writer) (int64, error) {
	cw := &countingWriter{w: out}
	err := f.write(cw)
	return cw.n, err
}

func (f *Frozen) write(w io.Writer) error {
	rev, objs := f.rev, f.objs
	bw := bufio.NewWriter(w)
	// goccy/go-json, as the log's codec (consensus/codec.go): a snapshot
	// encodes every object of the store, and with encoding/json's
	// reflection that was half of a snapshot's CPU. Restore reads it with
	// encoding/json; TestSnapshotEveryKindProperty (package consensus)
	// checks that every kind reads back as encoding/json would write it.
	enc := gojson.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Revision: rev}); err != nil {
		return fmt.Errorf("store: snapshot header: %w", err)
	}
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			return fmt.Errorf("store: snapshot %s %q: %w", o.Kind, o.Object.GetObjectMeta().Name, err)
		}
	}
	if err := enc.Encode(snapshotTrailer{End: true, Count: len(objs), Revision: rev}); err != nil {
		return fmt.Errorf("store: snapshot trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	return nil
}

// Restore replaces the whole content of the store with a snapshot. The
// snapshot is read and checked completely before anything changes: a
// corrupt or truncated one returns an error (wrapping ErrBadSnapshot) and
// leaves the store as it was. On success the revision becomes the
// snapshot's, the history restarts there, and every open watcher is closed
// with ErrTooOld (its consumer must list again).
func (s *Store) Restore(r io.Reader) error {
	tables, rev, err := readSnapshot(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables = tables
	s.rev = rev
	s.hist = newHistory(s.cfg.HistorySize, s.cfg.HistoryBytes, rev)
	for w := range s.watchers {
		s.closeWatcher(w, fmt.Errorf("%w: the store was restored from a snapshot at revision %d; list and watch again", ErrTooOld, rev))
	}
	return nil
}

func readSnapshot(r io.Reader) (map[string]*table, int64, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bufio.NewReader(r))
	var h snapshotLine
	if err := dec.Decode(&h); err != nil {
		return nil, 0, bad("header: %v", err)
	}
	if h.Format != snapshotFormat {
		return nil, 0, bad("header: format is %q, want %q", h.Format, snapshotFormat)
	}
	if h.Version != snapshotVersion {
		return nil, 0, bad("header: version %d is not supported (this binary reads version %d)", h.Version, snapshotVersion)
	}
	if h.Revision < 0 {
		return nil, 0, bad("header: negative revision %d", h.Revision)
	}
	tables := newTables()
	count := 0
	for {
		var l snapshotLine
		if err := dec.Decode(&l); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, 0, bad("truncated after %d objects: no trailer", count)
			}
			return nil, 0, bad("object %d: %v", count+1, err)
		}
		if l.End {
			if l.Count != count || l.Revision != h.Revision {
				return nil, 0, bad("trailer says %d objects at revision %d, read %d objects at revision %d",
					l.Count, l.Revision, count, h.Revision)
			}
			break
		}
		count++
		shape, err := shapeOf(l.Kind)
		if err != nil {
			return nil, 0, bad("object %d: %v", count, err)
		}
		if len(l.Object) == 0 {
			return nil, 0, bad("object %d (%s): missing object", count, l.Kind)
		}
		obj := shape.info.New()
		if err := json.Unmarshal(l.Object, obj); err != nil {
			return nil, 0, bad("object %d (%s): %v", count, l.Kind, err)
		}
		Intern(obj) // as objects from the log are
		api.SetTypeMeta(obj)
		key := KeyOf(obj)
		if _, err := checkKey(key); err != nil {
			return nil, 0, bad("object %d: %v", count, err)
		}
		t := tables[key.Kind]
		if _, dup := t.get(key.Namespace, key.Name); dup {
			return nil, 0, bad("object %d: %s appears twice", count, describe(shape, key))
		}
		rv, err := strconv.ParseInt(obj.GetObjectMeta().ResourceVersion, 10, 64)
		if err != nil || rv < 1 || rv > h.Revision {
			return nil, 0, bad("object %d: %s has resourceVersion %q, want an integer in [1, %d]",
				count, describe(shape, key), obj.GetObjectMeta().ResourceVersion, h.Revision)
		}
		t.put(obj)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, 0, bad("data after the trailer")
	}
	return tables, h.Revision, nil
}
