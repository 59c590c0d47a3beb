package consensus

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// heapPerObject applies n ConfigMaps of size bytes of data to a replica's
// FSM, as raft hands them over (32 to an entry, encoded by the proposer),
// each with its own data (values are distinct, as real ones are),
// and returns the live heap they add, per object, after a collection.
func heapPerObject(t *testing.T, n, size int) float64 {
	t.Helper()
	payload := strings.Repeat("x", size)
	st := store.New(store.DefaultConfig())
	f := newFSM(st, hclog.NewNullLogger())
	before := liveHeap()
	for i := 0; i < n; i += 32 {
		var ops []store.Op
		for j := i; j < min(i+32, n); j++ {
			ops = append(ops, createOp(&api.ConfigMap{
				ObjectMeta: api.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("m%d", j),
					UID: fmt.Sprintf("00000000-0000-4000-8000-%012d", j), CreationTimestamp: api.NewTime(time.Unix(1_800_000_000, 0))},
				Data: map[string]string{"v": fmt.Sprintf("%08d", j) + payload[8:]}}))
		}
		cmd, err := EncodeApplyOps(ops)
		if err != nil {
			t.Fatal(err)
		}
		res := f.Apply(&raft.Log{Index: uint64(i/32 + 1), Data: cmd})
		if rs, ok := res.([]store.Result); !ok || rs[0].Err != nil {
			t.Fatalf("entry %d: %v", i/32, res)
		}
	}
	after := liveHeap()
	runtime.KeepAlive(st)
	return float64(after-before) / float64(n)
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// What a replica's heap holds per stored 1 KiB ConfigMap, decoded from the
// log (issue 14: memory per object): measured 1,850 bytes (the 1 KiB value,
// the 256-byte struct, a 336-byte map for its one data entry, the store's
// index and the watch history's share); the bound keeps it from growing
// unnoticed. go test -run TestHeapPerStoredObject -v ./consensus
func TestHeapPerStoredObject(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 20 MiB")
	}
	const n, size = 10000, 1024
	per := heapPerObject(t, n, size)
	t.Logf("live heap per stored %d-byte ConfigMap: %.0f bytes", size, per)
	if bound := 2.2 * size; per > bound {
		t.Errorf("%.0f bytes per stored %d-byte ConfigMap, want at most %.0f", per, size, bound)
	}
}
