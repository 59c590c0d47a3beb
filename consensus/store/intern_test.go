package store

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/shoal-dev/shoal/api"
)

// Intern copies out every string an object reaches, so none is a
// slice of a decoder's buffer (goccy/go-json's strings are slices of its
// copy of the input, and one kept string keeps the whole copy). The
// object's strings are made here as slices of one buffer, as goccy makes
// them.
func TestInternStringsCopiesOutOfTheBuffer(t *testing.T) {
	buf := strings.Repeat("default web-0 u-1 app web zone a host-a c busybox sleep 1 bench svcload 10.244.1.2 TCP http cm-key cm-value", 2)
	at := func(s string) string {
		i := strings.Index(buf, s)
		if i < 0 {
			t.Fatalf("%q not in the buffer", s)
		}
		return buf[i : i+len(s)]
	}
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Namespace: at("default"), Name: at("web-0"), UID: at("u-1"),
			Labels: map[string]string{at("app"): at("web")}},
		Spec: api.PodSpec{NodeName: at("host-a"), NodeSelector: map[string]string{at("zone"): at("a")},
			Containers: []api.Container{{Name: at("c"), Image: at("busybox"), Args: []string{at("sleep"), at("1")}}}},
	}
	ep := &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: at("default"), Name: at("web"),
		Annotations: map[string]string{at("bench"): at("svcload")}},
		Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{{IP: at("10.244.1.2")}},
			Ports: []api.EndpointPort{{Name: at("http"), Port: 8080, Protocol: at("TCP")}}}}}
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: at("default"), Name: at("cm-key")},
		BinaryData: map[string][]byte{at("cm-key"): []byte("x")}, Data: map[string]string{at("cm-key"): at("cm-value")}}
	base := uintptr(unsafe.Pointer(unsafe.StringData(buf)))
	for _, obj := range []api.Object{pod, ep, cm} {
		Intern(obj)
		n := 0
		walkStrings(reflect.ValueOf(obj), func(path, s string) {
			n++
			if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); p >= base && p < base+uintptr(len(buf)) {
				t.Errorf("%T: %s = %q still points into the buffer", obj, path, s)
			}
		}, "")
		if n < 5 {
			t.Fatalf("%T: walked %d strings", obj, n)
		}
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

// Equal small maps share one; beyond the limits a map is kept as it is.
func TestInternSharesSmallMaps(t *testing.T) {
	a := &api.Service{ObjectMeta: api.ObjectMeta{Name: "a", Labels: map[string]string{"share-test": "x", "tier": "web"}}}
	b := &api.Service{ObjectMeta: api.ObjectMeta{Name: "b", Labels: map[string]string{"tier": "web", "share-test": "x"}}}
	c := &api.Service{ObjectMeta: api.ObjectMeta{Name: "c", Labels: map[string]string{"share-test": "y", "tier": "web"}}}
	for _, s := range []*api.Service{a, b, c} {
		Intern(s)
	}
	ptr := func(s *api.Service) unsafe.Pointer { return reflect.ValueOf(s.Labels).UnsafePointer() }
	if ptr(a) != ptr(b) {
		t.Error("equal labels kept as two maps")
	}
	if ptr(a) == ptr(c) {
		t.Error("different labels share a map")
	}
	big := map[string]string{}
	for i := range maxSharedMapLen + 1 {
		big[strings.Repeat("k", i+1)] = "v"
	}
	if m := sharedMaps.share(big); reflect.ValueOf(m).UnsafePointer() != reflect.ValueOf(big).UnsafePointer() {
		t.Error("a map over the limits was replaced")
	}
}

// Objects read from a snapshot pass through Intern too: pods with equal
// labels share one map after a restore.
func TestRestoredObjectsAreInterned(t *testing.T) {
	src := testStore()
	mustApply(t, src, create(pod("default", "a", "n1", map[string]string{"restore-test": "web"})),
		create(pod("default", "b", "n1", map[string]string{"restore-test": "web"})))
	dst := testStore()
	if err := dst.Restore(bytes.NewReader(snapshotBytes(t, src))); err != nil {
		t.Fatal(err)
	}
	a := mustGet(t, dst, "Pod", "default", "a").GetObjectMeta().Labels
	b := mustGet(t, dst, "Pod", "default", "b").GetObjectMeta().Labels
	if reflect.ValueOf(a).UnsafePointer() != reflect.ValueOf(b).UnsafePointer() {
		t.Error("restored pods with equal labels hold two maps")
	}
}
