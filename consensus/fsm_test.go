package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"

	"github.com/shoal-dev/shoal/consensus/store"
)

func newTestFSM() *fsm { return newFSM(newStore(), testLogger("fsm")) }

func entry(t testing.TB, index uint64, ops ...store.Op) *raft.Log {
	t.Helper()
	cmd, err := EncodeApplyOps(ops)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: cmd}
}

func TestFSMApplyReturnsResults(t *testing.T) {
	f := newTestFSM()
	res := f.Apply(entry(t, 7, createOp(configMap("default", "a", 4)), createOp(configMap("default", "a", 4))))
	rs, ok := res.([]store.Result)
	if !ok || len(rs) != 2 {
		t.Fatalf("Apply returned %#v, want two results", res)
	}
	if rs[0].Err != nil || rs[0].Object == nil {
		t.Errorf("first create: %+v", rs[0])
	}
	if !errors.Is(rs[1].Err, store.ErrAlreadyExists) {
		t.Errorf("second create: err = %v, want ErrAlreadyExists", rs[1].Err)
	}
	if got := f.AppliedIndex(); got != 7 {
		t.Errorf("AppliedIndex = %d, want 7", got)
	}
}

func TestFSMUnknownCommand(t *testing.T) {
	f := newTestFSM()
	before := snapshotBytes(t, f.store)

	// Ignorable: skipped, the index still advances, the store is untouched.
	ignorable := []byte{byte(IgnoreUnknownTypeFlag | 0x05), 1, 2, 3}
	if res := f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: ignorable}); res != nil {
		t.Errorf("ignorable unknown command returned %#v", res)
	}
	if f.AppliedIndex() != 3 {
		t.Errorf("AppliedIndex = %d after an ignored entry, want 3", f.AppliedIndex())
	}
	if !bytes.Equal(before, snapshotBytes(t, f.store)) {
		t.Error("an ignored command changed the store")
	}

	// Not ignorable, or not decodable: skipped, counted and returned as an
	// error, never a panic (which would stop every voter at this entry, and
	// again at each restart); the store is untouched and the index moves.
	cases := map[string]struct {
		data []byte
		want error
	}{
		"unknown type":     {[]byte{0x05, 1, 2}, ErrUnknownCommand},
		"unknown type 127": {[]byte{0x7f}, ErrUnknownCommand},
		"empty entry":      {nil, ErrCorruptCommand},
		"corrupt payload":  {[]byte{byte(ApplyOpsType), applyOpsVersion, 3}, ErrCorruptCommand},
		"bad object json": {mustReplace(t, entry(t, 1, createOp(configMap("default", "a", 8))).Data,
			[]byte(`"data"`), []byte(`"data `)), ErrCorruptCommand},
	}
	index := uint64(4)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			index++
			skipped := f.SkippedEntries()
			var res any
			if err := catchPanic(func() { res = f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: c.data}) }); err != nil {
				t.Fatalf("Apply panicked: %v", err)
			}
			if err, _ := res.(error); !errors.Is(err, c.want) {
				t.Fatalf("Apply returned %#v, want an error wrapping %v", res, c.want)
			}
			if got := f.SkippedEntries(); got != skipped+1 {
				t.Errorf("SkippedEntries = %d, want %d", got, skipped+1)
			}
			if f.AppliedIndex() != index {
				t.Errorf("AppliedIndex = %d, want %d", f.AppliedIndex(), index)
			}
			if !bytes.Equal(before, snapshotBytes(t, f.store)) {
				t.Error("a skipped entry changed the store")
			}
		})
	}
}

func catchPanic(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("panic: %v", r)
			}
		}
	}()
	fn()
	return nil
}

// Two replicas fed the same entries end byte-for-byte identical, whatever
// the entries (including ops that fail).
func TestFSMDeterminismProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a, b := newTestFSM(), newTestFSM()
		n := rapid.IntRange(1, 30).Draw(rt, "entries")
		for i := 1; i <= n; i++ {
			ops := rapid.SliceOfN(rapid.Custom(genOp), 1, 5).Draw(rt, "ops")
			l := entry(t, uint64(i), ops...)
			ra, rb := a.Apply(l), b.Apply(l)
			if fmt.Sprint(resultSummary(ra)) != fmt.Sprint(resultSummary(rb)) {
				rt.Fatalf("entry %d: results differ: %v vs %v", i, resultSummary(ra), resultSummary(rb))
			}
		}
		if !bytes.Equal(snapshotBytes(t, a.store), snapshotBytes(t, b.store)) {
			rt.Fatalf("snapshots differ:\n%s\n---\n%s", dump(t, a.store), dump(t, b.store))
		}
	})
}

func resultSummary(r any) []string {
	var out []string
	for _, x := range r.([]store.Result) {
		if x.Err != nil {
			out = append(out, "err: "+x.Err.Error())
		} else {
			out = append(out, "ok: "+x.Object.GetObjectMeta().ResourceVersion)
		}
	}
	return out
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	src := newTestFSM()
	for i := 1; i <= 20; i++ {
		src.Apply(entry(t, uint64(i), createOp(configMap("default", fmt.Sprintf("cm-%d", i), 32))))
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Applies after Snapshot() must not leak into the persisted snapshot.
	src.Apply(entry(t, 21, createOp(configMap("default", "late", 1))))
	want := dump(t, replayConfigMaps(t, 20))

	var sink memSink
	if err := snap.Persist(&sink); err != nil || !sink.closed {
		t.Fatalf("Persist: err=%v closed=%v", err, sink.closed)
	}
	snap.Release()

	dst := newTestFSM()
	dst.Apply(entry(t, 1, createOp(configMap("other", "stale", 1)))) // Restore must discard this
	if err := dst.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst.store); got != want {
		t.Fatalf("restored store differs:\n got %s\nwant %s", got, want)
	}
	if dst.AppliedIndex() != 20 {
		t.Fatalf("AppliedIndex after restore = %d, want 20", dst.AppliedIndex())
	}
}

// replayConfigMaps applies the entries TestFSMSnapshotRestore writes, up to
// index n, to a fresh store: the content a snapshot at n must hold.
func replayConfigMaps(t *testing.T, n int) *store.Store {
	f := newTestFSM()
	for i := 1; i <= n; i++ {
		f.Apply(entry(t, uint64(i), createOp(configMap("default", fmt.Sprintf("cm-%d", i), 32))))
	}
	return f.store
}
