package consensus

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// DecodeApplyOps passes what it decodes through store.Intern: objects with
// equal small labels share one map.
func TestDecodedEqualLabelsShareAMap(t *testing.T) {
	mk := func(name string, labels map[string]string) *api.Endpoints {
		return &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name, Labels: labels}}
	}
	ops := []store.Op{
		createOp(mk("a", map[string]string{"share-test": "x", "tier": "web"})),
		createOp(mk("b", map[string]string{"tier": "web", "share-test": "x"})),
		createOp(mk("c", map[string]string{"share-test": "y", "tier": "web"})),
	}
	cmd, err := EncodeApplyOps(ops)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeCommand(t, cmd)
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("round trip differs:\n got %#v\nwant %#v", got, ops)
	}
	ptr := func(i int) unsafe.Pointer {
		return reflect.ValueOf(got[i].Object.GetObjectMeta().Labels).UnsafePointer()
	}
	if ptr(0) != ptr(1) {
		t.Error("equal labels decoded as two maps")
	}
	if ptr(0) == ptr(2) {
		t.Error("different labels share a map")
	}
}
