package consensus

import (
	"reflect"
	"testing"
	"unique"
	"unsafe"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Decoded objects hold interned strings, never slices of the decoder's copy
// of the command (which one kept string would keep whole): every string an
// object reaches is the canonical copy unique.Make holds for its value.
func TestDecodedStringsAreInterned(t *testing.T) {
	ep := &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web",
		Labels: map[string]string{"bench": "svcload"}, Annotations: map[string]string{"note": "x"}}}
	ss := api.EndpointSubset{Ports: []api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}}}
	for _, ip := range []string{"10.244.1.2", "10.244.1.3"} {
		ss.Addresses = append(ss.Addresses, api.EndpointAddress{IP: ip})
	}
	ep.Subsets = []api.EndpointSubset{ss}
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web-0", UID: "u-1", Labels: map[string]string{"app": "web"}},
		Spec: api.PodSpec{NodeName: "host-a", NodeSelector: map[string]string{"zone": "a"},
			Containers: []api.Container{{Name: "c", Image: "busybox", Args: []string{"sleep", "1"}}}},
	}
	api.SetTypeMeta(pod)
	ops := []store.Op{createOp(ep), createOp(pod), createOp(configMap("default", "cm", 4))}
	cmd, err := EncodeApplyOps(ops)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeCommand(t, cmd)
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("round trip differs:\n got %#v\nwant %#v", got, ops)
	}
	n := 0
	for i, op := range got {
		walkStrings(reflect.ValueOf(op.Object), func(path, s string) {
			n++
			if unsafe.StringData(s) != unsafe.StringData(unique.Make(s).Value()) {
				t.Errorf("op %d: %s = %q is not interned", i, path, s)
			}
		}, "")
	}
	if n < 20 {
		t.Fatalf("walked %d strings, want the objects' twenty and more", n)
	}
}

func walkStrings(v reflect.Value, f func(path, s string), path string) {
	switch v.Kind() {
	case reflect.String:
		if v.Len() > 0 {
			f(path, v.String())
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), f, path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walkStrings(v.Field(i), f, path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkStrings(v.Index(i), f, path+"[]")
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			walkStrings(it.Key(), f, path+"{key}")
			walkStrings(it.Value(), f, path+"{}")
		}
	}
}
