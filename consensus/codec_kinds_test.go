package consensus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// makeConfig fills every field by reflection: strings that are sometimes
// not valid UTF-8 (JSON writes U+FFFD for the bad bytes), and timestamps
// drawn across and beyond the years RFC 3339 can write, in any zone, with
// sub-second digits the encoding drops.
var makeConfig = rapid.MakeConfig{Kinds: map[reflect.Kind]*rapid.Generator[any]{
	reflect.String: rapid.OneOf(
		rapid.String(),
		rapid.Custom(func(t *rapid.T) string { return string(rapid.SliceOfN(rapid.Byte(), 0, 12).Draw(t, "raw")) }),
	).AsAny(),
}, Types: map[reflect.Type]*rapid.Generator[any]{
	reflect.TypeOf(api.Time{}): rapid.Custom(func(t *rapid.T) any {
		if rapid.Bool().Draw(t, "zero") {
			return api.Time{}
		}
		sec := rapid.Int64Range(-72_000_000_000, 316_000_000_000).Draw(t, "sec") // years -300 to 12000
		nsec := rapid.Int64Range(0, 999_999_999).Draw(t, "nsec")
		off := rapid.IntRange(-14*3600, 14*3600).Draw(t, "offset")
		return api.Time{Time: time.Unix(sec, nsec).In(time.FixedZone("", off))}
	}).AsAny(),
}}

func makeKind[T any, P interface {
	*T
	api.Object
}]() *rapid.Generator[api.Object] {
	g := rapid.MakeCustom[T](makeConfig)
	return rapid.Custom(func(t *rapid.T) api.Object {
		v := g.Draw(t, "object")
		return P(&v)
	})
}

// kindGens has a generator for every kind the registry serves;
// TestCodecKindGensCoverRegistry keeps it complete.
var kindGens = map[string]*rapid.Generator[api.Object]{
	"Namespace":   makeKind[api.Namespace](),
	"Node":        makeKind[api.Node](),
	"Pod":         makeKind[api.Pod](),
	"Service":     makeKind[api.Service](),
	"Endpoints":   makeKind[api.Endpoints](),
	"ConfigMap":   makeKind[api.ConfigMap](),
	"Secret":      makeKind[api.Secret](),
	"ReplicaSet":  makeKind[api.ReplicaSet](),
	"Deployment":  makeKind[api.Deployment](),
	"DaemonSet":   makeKind[api.DaemonSet](),
	"StatefulSet": makeKind[api.StatefulSet](),
	"Event":       makeKind[api.Event](),
}

func TestCodecKindGensCoverRegistry(t *testing.T) {
	for _, k := range api.Kinds() {
		g, ok := kindGens[k.Kind]
		if !ok {
			t.Errorf("kind %s has no generator in kindGens", k.Kind)
			continue
		}
		obj := g.Example(0)
		if got := api.KindOf(obj); got != k.Kind {
			t.Errorf("generator for %s makes %T", k.Kind, obj)
		}
	}
	if len(kindGens) != len(api.Kinds()) {
		t.Errorf("kindGens has %d kinds, the registry %d", len(kindGens), len(api.Kinds()))
	}
}

func genAnyKindOp(t *rapid.T) store.Op {
	kinds := api.Kinds()
	info := kinds[rapid.IntRange(0, len(kinds)-1).Draw(t, "kind")]
	typ := store.OpType(rapid.IntRange(int(store.OpCreate), int(store.OpUpdateStatus)).Draw(t, "type"))
	return store.Op{Type: typ, Object: kindGens[info.Kind].Draw(t, info.Kind)}
}

// TestCodecEveryKindProperty: whatever random object of whatever kind the
// leader encodes, every replica decodes it, and to the object encoding/json
// would make of the same bytes; a second round trip gives the
// same object (JSON normalises some values, such as an empty list or a
// nanosecond, so the first trip may change the Go value, later ones not).
// An object the decoder could not read must fail at encoding, where it is
// the proposer's error, never in the FSM on every voter.
func TestCodecEveryKindProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := rapid.SliceOfN(rapid.Custom(genAnyKindOp), 1, 4).Draw(t, "ops")
		cmd, err := EncodeApplyOps(ops)
		if err != nil {
			// Only a time outside what RFC 3339 can write may be refused.
			if !bytes.Contains([]byte(err.Error()), []byte("year outside")) {
				t.Fatalf("encode: %v", err)
			}
			return
		}
		got, err := DecodeApplyOps(cmd[1:])
		if err != nil {
			t.Fatalf("a replica cannot decode what the leader encoded: %v", err)
		}
		if len(got) != len(ops) {
			t.Fatalf("decoded %d ops, encoded %d", len(got), len(ops))
		}
		for i, op := range ops {
			want, err := json.Marshal(op.Object)
			if err != nil {
				t.Fatal(err)
			}
			ref := api.Object(reflect.New(reflect.TypeOf(op.Object).Elem()).Interface().(api.Object))
			if err := json.Unmarshal(want, ref); err != nil {
				t.Fatalf("op %d: encoding/json cannot read its own output: %v", i, err)
			}
			// Two map keys that differ only in invalid UTF-8 both
			// encode as U+FFFD: the JSON then holds a key twice, and
			// which one wins is each library's choice. No object from
			// the API can hold such keys (decoding JSON already turned
			// them into U+FFFD), so only decoding and stability are
			// asked of it.
			if !reflect.DeepEqual(got[i].Object, ref) && !hasDuplicateKeys(want) {
				g, _ := json.Marshal(got[i].Object)
				r, _ := json.Marshal(ref)
				t.Fatalf("op %d (%s): decoded differently from encoding/json:\n got %s\nwant %s", i, api.KindOf(op.Object), g, r)
			}
			// Stable after one trip: the log of a snapshot restored
			// from this object's encoding holds the same object.
			again, err := EncodeApplyOps([]store.Op{{Type: got[i].Type, Object: got[i].Object}})
			if err != nil {
				t.Fatalf("op %d (%s): re-encoding the decoded object: %v", i, api.KindOf(op.Object), err)
			}
			if twice := decodeCommand(t, again); !reflect.DeepEqual(twice[0].Object, got[i].Object) {
				t.Fatalf("op %d (%s): a second round trip differs:\n got %#v\nwant %#v", i, api.KindOf(op.Object), twice[0].Object, got[i].Object)
			}
			if got[i].Type != op.Type {
				t.Fatalf("op %d: type %v, want %v", i, got[i].Type, op.Type)
			}
		}
	})
}

// hasDuplicateKeys reports whether some object in the JSON text holds a key
// twice.
func hasDuplicateKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, object: v == '{', key: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.key {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}

func TestHasDuplicateKeys(t *testing.T) {
	for in, want := range map[string]bool{
		`{"a":1,"b":{"a":2},"c":[{"a":1}]}`: false,
		`{"a":1,"b":{"x":2,"x":3}}`:         true,
		`{"a":{"b":1},"a":2}`:               true,
		`[{"k":"k"},{"k":"k"}]`:             false,
	} {
		if got := hasDuplicateKeys([]byte(in)); got != want {
			t.Errorf("hasDuplicateKeys(%s) = %v, want %v", in, got, want)
		}
	}
}

// TestSnapshotEveryKindProperty: a store snapshot is written by
// goccy/go-json (store.Frozen) and read back by encoding/json
// (store.Restore). Whatever random objects of whatever kinds the store
// holds, the restored store holds each as encoding/json would make it of
// its own encoding.
func TestSnapshotEveryKindProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		src := store.New(store.Config{})
		var held []store.Key
		for i, op := range rapid.SliceOfN(rapid.Custom(genAnyKindOp), 1, 6).Draw(t, "objects") {
			m := op.Object.GetObjectMeta()
			// A distinct name, and a namespace the API could have
			// taken (a random one may not be UTF-8, which JSON
			// cannot carry as a key).
			m.Name = fmt.Sprintf("o%d", i)
			if m.Namespace != "" {
				m.Namespace = "default"
			}
			if r := src.Apply([]store.Op{{Type: store.OpCreate, Object: op.Object}}); r[0].Err != nil {
				continue // refused by the store (its own checks): not held
			}
			held = append(held, store.Key{Kind: api.KindOf(op.Object), Namespace: m.Namespace, Name: m.Name})
		}
		var snap bytes.Buffer
		if err := src.Snapshot(&snap); err != nil {
			if bytes.Contains([]byte(err.Error()), []byte("year outside")) {
				return // a time RFC 3339 cannot write: refused by both libraries
			}
			t.Fatalf("snapshot: %v", err)
		}
		dst := store.New(store.Config{})
		if err := dst.Restore(bytes.NewReader(snap.Bytes())); err != nil {
			t.Fatalf("restore of a snapshot the store wrote: %v\n%s", err, snap.Bytes())
		}
		for _, k := range held {
			orig, err := src.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dst.Get(k)
			if err != nil {
				t.Fatalf("%v: not restored: %v", k, err)
			}
			want, err := json.Marshal(orig)
			if err != nil {
				t.Fatal(err)
			}
			ref := reflect.New(reflect.TypeOf(orig).Elem()).Interface().(api.Object)
			if err := json.Unmarshal(want, ref); err != nil {
				t.Fatalf("%v: encoding/json cannot read its own output: %v", k, err)
			}
			if !reflect.DeepEqual(got, ref) && !hasDuplicateKeys(want) {
				g, _ := json.Marshal(got)
				t.Fatalf("%v: restored differently from encoding/json:\n got %s\nwant %s", k, g, want)
			}
		}
	})
}
