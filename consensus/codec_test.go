package consensus

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

func decodeCommand(t interface {
	Helper()
	Fatalf(string, ...any)
}, cmd []byte) []store.Op {
	t.Helper()
	if len(cmd) == 0 || MessageType(cmd[0]) != ApplyOpsType {
		t.Fatalf("command does not start with ApplyOpsType: % x", cmd[:min(len(cmd), 4)])
	}
	ops, err := DecodeApplyOps(cmd[1:])
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return ops
}

func TestCodecRoundTrip(t *testing.T) {
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web-0", UID: "u-1", ResourceVersion: "41",
			Labels: map[string]string{"app": "web"}},
		Spec: api.PodSpec{NodeName: "host-a", Containers: []api.Container{{Name: "c", Image: "busybox"}}},
	}
	api.SetTypeMeta(pod)
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "prod"}}
	ops := []store.Op{
		createOp(configMap("default", "cm", 16)),
		{Type: store.OpUpdate, Object: pod},
		{Type: store.OpUpdateStatus, Object: pod},
		createOp(ns), // cluster-scoped, no TypeMeta set
		{Type: store.OpDelete, Key: store.Key{Kind: "Pod", Namespace: "default", Name: "web-0"}, ResourceVersion: 41},
		{Type: store.OpDelete, Key: store.Key{Kind: "Namespace", Name: "prod"}, ResourceVersion: -3},
	}
	cmd, err := EncodeApplyOps(ops)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeCommand(t, cmd)
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("round trip differs:\n got %#v\nwant %#v", got, ops)
	}
	if _, ok := got[1].Object.(*api.Pod); !ok {
		t.Fatalf("op 1 decoded as %T, want *api.Pod", got[1].Object)
	}
}

func TestCodecRejects(t *testing.T) {
	// A kind the registry cannot allocate could not be decoded by replicas.
	pvc := &api.PersistentVolumeClaim{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "data"}}
	if _, ok := api.LookupKind(api.KindOf(pvc)); !ok {
		if _, err := EncodeApplyOps([]store.Op{createOp(pvc)}); err == nil {
			t.Error("encoding an unregistered kind succeeded")
		}
	}

	good, err := EncodeApplyOps([]store.Op{createOp(configMap("default", "a", 8))})
	if err != nil {
		t.Fatal(err)
	}
	payload := good[1:]
	cases := map[string][]byte{
		"empty":          {},
		"future version": append([]byte{applyOpsVersion + 1}, payload[1:]...),
		"truncated":      payload[:len(payload)-3],
		"trailing bytes": append(append([]byte{}, payload...), 0),
		"huge count":     {applyOpsVersion, 0xff, 0xff, 0xff, 0x0f},
		"unknown kind":   mustReplace(t, payload, []byte("ConfigMap"), []byte("Gadget123")),
		"bad json":       mustReplace(t, payload, []byte(`"data"`), []byte(`"data `)),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeApplyOps(p); !errors.Is(err, ErrCorruptCommand) {
				t.Fatalf("DecodeApplyOps = %v, want ErrCorruptCommand", err)
			}
		})
	}
}

func mustReplace(t testing.TB, b, old, new []byte) []byte {
	t.Helper()
	if len(old) != len(new) || !bytes.Contains(b, old) {
		t.Fatalf("bad replacement %q -> %q", old, new)
	}
	return bytes.Replace(append([]byte{}, b...), old, new, 1)
}

// genName draws a DNS-1123-ish name.
func genName(t *rapid.T, label string) string {
	return rapid.StringMatching(`[a-z]([a-z0-9-]{0,10}[a-z0-9])?`).Draw(t, label)
}

// genStringMap draws nil or a non-empty map: empty maps are omitted by the
// JSON encoding and come back nil, which is the same object.
func genStringMap(t *rapid.T, label string) map[string]string {
	if rapid.Bool().Draw(t, label+"-nil") {
		return nil
	}
	return rapid.MapOfN(rapid.StringMatching(`[a-z]{1,8}`), rapid.String(), 1, 4).Draw(t, label)
}

func genObject(t *rapid.T, ns string) api.Object {
	meta := api.ObjectMeta{
		Namespace:       ns,
		Name:            genName(t, "name"),
		Labels:          genStringMap(t, "labels"),
		Annotations:     genStringMap(t, "annotations"),
		ResourceVersion: rapid.SampledFrom([]string{"", "1", "17"}).Draw(t, "rv"),
	}
	var obj api.Object
	switch rapid.IntRange(0, 2).Draw(t, "kind") {
	case 0:
		obj = &api.ConfigMap{ObjectMeta: meta, Data: genStringMap(t, "data")}
	case 1:
		var data map[string][]byte
		if rapid.Bool().Draw(t, "secret-data") {
			data = rapid.MapOfN(rapid.StringMatching(`[a-z]{1,8}`), rapid.SliceOfN(rapid.Byte(), 1, 32), 1, 3).Draw(t, "bytes")
		}
		obj = &api.Secret{ObjectMeta: meta, Type: "Opaque", Data: data}
	default:
		obj = &api.Service{ObjectMeta: meta, Spec: api.ServiceSpec{Selector: genStringMap(t, "selector")}}
	}
	if rapid.Bool().Draw(t, "typemeta") {
		api.SetTypeMeta(obj)
	}
	return obj
}

func genOp(t *rapid.T) store.Op {
	ns := rapid.SampledFrom([]string{"default", "kube-system", "a"}).Draw(t, "ns")
	typ := store.OpType(rapid.IntRange(int(store.OpCreate), int(store.OpDelete)).Draw(t, "type"))
	if typ == store.OpDelete {
		return store.Op{Type: typ,
			Key:             store.Key{Kind: rapid.SampledFrom([]string{"ConfigMap", "Secret", "Service"}).Draw(t, "dkind"), Namespace: ns, Name: genName(t, "dname")},
			ResourceVersion: rapid.Int64Range(0, 1<<40).Draw(t, "drv")}
	}
	return store.Op{Type: typ, Object: genObject(t, ns)}
}

func TestCodecRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := rapid.SliceOfN(rapid.Custom(genOp), 0, 8).Draw(t, "ops")
		cmd, err := EncodeApplyOps(ops)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeApplyOps(cmd[1:])
		if err != nil {
			t.Fatal(err)
		}
		if len(ops) == 0 {
			ops = []store.Op{} // decode allocates; compare contents
		}
		if !reflect.DeepEqual(got, ops) {
			t.Fatalf("round trip differs:\n got %#v\nwant %#v", got, ops)
		}
	})
}

// Arbitrary bytes never panic the decoder: corruption is an error, and it is
// the FSM that decides to stop.
func TestCodecGarbageProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, _ = DecodeApplyOps(rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "payload"))
	})
}

// The codec writes and reads objects with goccy/go-json for speed; every
// manifest in api/testdata must come back exactly as encoding/json would
// decode it.
func TestCodecDecoderMatchesEncodingJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "api", "testdata", "*.*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := api.DecodeManifests(b)
		if err != nil {
			continue // the fuzz corpus holds invalid inputs too
		}
		for _, o := range objs {
			api.SetDefaults(o)
			cmd, err := EncodeApplyOps([]store.Op{{Type: store.OpCreate, Object: o}})
			if err != nil {
				t.Fatal(err)
			}
			ops, err := DecodeApplyOps(cmd[1:])
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			want, _ := json.Marshal(o)
			std := api.RoundTrip(o) // a round trip through encoding/json
			stdJSON, _ := json.Marshal(std)
			got, _ := json.Marshal(ops[0].Object)
			if string(got) != string(want) || string(got) != string(stdJSON) {
				t.Errorf("%s: %s %s decoded differently:\n got %s\nwant %s", f, api.KindOf(o), o.GetObjectMeta().Name, got, want)
			}
			n++
		}
	}
	if n < 5 {
		t.Fatalf("only %d objects checked", n)
	}
}
