package store

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
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

// TestInternHeap bounds what 10,000 Endpoints of ten addresses hold once
// interned (issue 11, agent RSS), their strings made as slices of one
// buffer as goccy/go-json makes them. Interning every string, their
// strings took 10.1 MiB, most of it the unique package's map of the
// 100,000 distinct addresses and 20,000 uids and resourceVersions;
// copying an object's own values instead, 1.7 MiB. The figures:
// go test -run TestInternHeap -v ./consensus/store
func TestInternHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 Endpoints")
	}
	const n, per = 10000, 10
	var b strings.Builder
	for i := range n * per {
		// A prefix of this test's own, so no other test interned them.
		fmt.Fprintf(&b, "10.%d.%d.%d ", 200+i>>16, i>>8&0xff, i&0xff)
	}
	buf := b.String()
	objs := make([]*api.Endpoints, n)
	off := 0
	next := func() string {
		end := off + strings.IndexByte(buf[off:], ' ')
		s := buf[off:end]
		off = end + 1
		return s
	}
	for i := range objs {
		ss := api.EndpointSubset{Ports: []api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}}}
		for range per {
			ss.Addresses = append(ss.Addresses, api.EndpointAddress{IP: next()})
		}
		objs[i] = &api.Endpoints{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("intern-heap-%d", i),
			UID: fmt.Sprintf("intern-heap-uid-%d", i), ResourceVersion: strconv.Itoa(i)}, Subsets: []api.EndpointSubset{ss}}
	}
	// Interning replaces the buffer by the strings' own copies and what
	// the unique package keeps of them.
	bufSize := float64(len(buf))
	before := heapAlloc()
	for _, o := range objs {
		Intern(o)
	}
	buf = ""
	after := heapAlloc()
	runtime.KeepAlive(objs)
	mib := (float64(after) - float64(before) + bufSize) / (1 << 20)
	t.Logf("10,000 Endpoints × 10 addresses interned: their strings take %.1f MiB", mib)
	const bound = 5.0 // the race detector makes it 3.3
	if mib > bound {
		t.Errorf("%.1f MiB, want under %.0f", mib, bound)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
