package consensus

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/consensus/store"
)

// Few, large entries: the log is snapshotted and truncated once their bytes
// pass SnapshotBytes, long before raft's entry count would, and not before;
// the log kept after the snapshot stays within TrailingBytes.
func TestSnapshotAfterLogBytes(t *testing.T) {
	cfg := TestConfig()
	cfg.ID = "solo"
	cfg.InMemory = true
	_, cfg.Transport = raft.NewInmemTransport(raft.NewInmemAddr())
	cfg.Bootstrap = true
	cfg.Logger = testLogger(cfg.ID)
	cfg.SnapshotBytes = 1 << 20
	cfg.TrailingBytes = 256 << 10
	nd, err := NewNode(cfg, newStore())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nd.Shutdown() })
	waitFor(t, 10*time.Second, "solo to lead", nd.IsLeader)

	// One Propose is one entry here (a lone caller): 16 config maps of
	// 4 KiB, about 64 KiB.
	batch := 0
	write := func() {
		t.Helper()
		ops := make([]store.Op, 16)
		for i := range ops {
			ops[i] = createOp(configMap("default", fmt.Sprintf("b%d-%d", batch, i), 4<<10))
		}
		batch++
		propose(t, nd, ops...)
	}
	snapIndex := func() uint64 {
		v, _ := strconv.ParseUint(nd.raft.Stats()["last_snapshot_index"], 10, 64)
		return v
	}
	first := func() uint64 {
		f, err := nd.logs.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	// Below the bound (well below raft's 8192 entries too): no snapshot.
	for i := 0; i < 100 && nd.fsm.bytes.sinceSnapshot() < cfg.SnapshotBytes*3/4; i++ {
		write()
	}
	if nd.fsm.bytes.wanted() || snapIndex() != 0 || first() != 1 {
		t.Fatalf("after %d bytes (< %d): snapshot asked %v, at index %d, log starts at %d",
			nd.fsm.bytes.sinceSnapshot(), cfg.SnapshotBytes, nd.fsm.bytes.wanted(), snapIndex(), first())
	}

	// Past it: a snapshot is asked for, and the log's start moves up. Stop
	// writing once it is asked (or already taken: the count dropped), so
	// the log's tail is what TrailingBytes kept.
	for i, prev := 0, uint64(0); i < 100; i++ {
		since := nd.fsm.bytes.sinceSnapshot()
		if nd.fsm.bytes.wanted() || since < prev || snapIndex() != 0 {
			break
		}
		prev = since
		write()
	}
	waitFor(t, 20*time.Second, "a snapshot and a truncated log", func() bool {
		return snapIndex() > 0 && first() > 1
	})
	last, _ := nd.logs.LastIndex()
	t.Logf("%d entries written; snapshot at %d; log kept [%d, %d]", batch, snapIndex(), first(), last)

	// What stays of the log up to the snapshot fits in TrailingBytes.
	var kept uint64
	for i := first(); i <= snapIndex(); i++ {
		var l raft.Log
		if err := nd.logs.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		kept += uint64(len(l.Data))
	}
	if kept > cfg.TrailingBytes {
		t.Fatalf("%d bytes of log kept up to the snapshot, more than TrailingBytes %d", kept, cfg.TrailingBytes)
	}
	if last == snapIndex() && kept == 0 {
		t.Fatalf("no trailing entries kept (first %d, snapshot %d)", first(), snapIndex())
	}
}
