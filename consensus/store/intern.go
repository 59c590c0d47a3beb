package store

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unique"
)

// Intern replaces every string reachable from v (through struct fields,
// pointers, slices, arrays, maps and interfaces) with its interned copy.
//
// Objects entering the store pass through it: those decoded from the Raft
// log (goccy/go-json decodes a string without escapes as a slice of its own
// copy of the input, so a single kept string keeps the whole encoded
// object alive: with 10,000 Endpoints of ten addresses in the store, those
// buffers were 14 MiB of the live heap) and those read from a snapshot.
// Interned copies hold only the characters, and the values objects repeat
// (namespaces, label keys and values, port names, protocols, node names)
// are held once; values an object holds alone (see ownValue) are copied
// without interning. Unexported fields are left
// as they are (the api types have none that hold strings).
//
// Small map[string]string values (labels, selectors) equal to one decoded
// recently are replaced by that one, so objects with the same labels share
// one map: 10,000 Services and their Endpoints labelled alike held 20,000
// maps of 300 bytes each. Objects in the store are read-only (Get and List
// hand them out shared), so their maps are too.
func Intern(v any) {
	internValue(reflect.ValueOf(v), 0)
}

// maxInternDepth bounds the walk; api objects nest a handful of levels.
const maxInternDepth = 64

func internValue(v reflect.Value, depth int) {
	if depth > maxInternDepth || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() && v.Len() > 0 {
			v.SetString(unique.Make(v.String()).Value())
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			e := v.Elem()
			if v.Kind() == reflect.Interface && e.Kind() != reflect.Pointer {
				// A value held in an interface cannot be set in place.
				return
			}
			internValue(e, depth+1)
		}
	case reflect.Struct:
		for _, wf := range walkFields(v.Type()) {
			f := v.Field(wf.index)
			if !f.CanSet() {
				continue
			}
			if wf.own {
				cloneStrings(f, depth+1)
				continue
			}
			internValue(f, depth+1)
		}
	case reflect.Slice, reflect.Array:
		if k := v.Type().Elem().Kind(); k == reflect.Uint8 || !holdsStrings(v.Type().Elem()) {
			return
		}
		for i := range v.Len() {
			internValue(v.Index(i), depth+1)
		}
	case reflect.Map:
		if v.Type() == stringMapType && v.CanSet() {
			v.Set(reflect.ValueOf(sharedMaps.share(v.Interface().(map[string]string))))
			return
		}
		internMap(v, depth)
	}
}

// internMap interns a map's keys and what its values hold. Assigning an
// equal key replaces the stored one, so the map is changed in place.
func internMap(m reflect.Value, depth int) {
	if m.IsNil() {
		return
	}
	t := m.Type()
	keyStr := t.Key().Kind() == reflect.String
	if !keyStr && !holdsStrings(t.Elem()) {
		return
	}
	for _, k := range m.MapKeys() {
		// A map's values are not addressable: intern a copy and put it back.
		val := reflect.New(t.Elem()).Elem()
		val.Set(m.MapIndex(k))
		internValue(val, depth+1)
		if keyStr {
			k = reflect.ValueOf(unique.Make(k.String()).Value()).Convert(t.Key())
		}
		m.SetMapIndex(k, val)
	}
}

// ownValue reports whether a struct field of this name holds a value that
// is, as a rule, its object's own (an object's uid and resourceVersion, an
// address): such strings are copied out of the decoder's buffer but not
// interned. Interning costs about 45 bytes of the unique package's map a
// distinct string, more than the string itself, and saves nothing when no
// other object holds the value: the strings of 10,000 Endpoints of ten
// addresses took 10.1 MiB interned, 1.7 MiB copied (TestInternHeap).
func ownValue(field string) bool {
	switch field {
	case "UID", "ResourceVersion", "IP", "PodIP", "HostIP", "ClusterIP", "ClusterIPs":
		return true
	}
	return false
}

// cloneStrings copies a string, or the strings of a []string, out of
// whatever they are slices of.
func cloneStrings(v reflect.Value, depth int) {
	switch {
	case v.Kind() == reflect.String:
		if v.Len() > 0 {
			v.SetString(strings.Clone(v.String()))
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		for i := range v.Len() {
			cloneStrings(v.Index(i), depth+1)
		}
	case v.Kind() == reflect.Pointer && !v.IsNil():
		cloneStrings(v.Elem(), depth+1)
	default:
		internValue(v, depth)
	}
}

var stringMapType = reflect.TypeFor[map[string]string]()

// Limits of map sharing: maps with more entries or longer contents are
// only interned, and the cache of maps to share is emptied when full.
const (
	maxSharedMapLen   = 8
	maxSharedMapBytes = 512
	maxSharedMaps     = 1024
)

// mapCache holds recently decoded small maps by their contents.
type mapCache struct {
	mu sync.Mutex
	m  map[string]map[string]string
}

var sharedMaps = mapCache{m: map[string]map[string]string{}}

// share returns a map equal to m: one decoded earlier if the cache holds
// it, else m with its strings interned.
func (c *mapCache) share(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	key, ok := mapContents(m)
	if !ok {
		internStringMap(m)
		return m
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[key]; ok {
		return s
	}
	internStringMap(m)
	if len(c.m) >= maxSharedMaps {
		clear(c.m)
	}
	c.m[key] = m
	return m
}

// mapContents encodes a small map's entries in key order, each string
// length-prefixed; ok is false for a map over the sharing limits.
func mapContents(m map[string]string) (string, bool) {
	if len(m) > maxSharedMapLen {
		return "", false
	}
	n := 0
	keys := make([]string, 0, len(m))
	for k, v := range m {
		n += len(k) + len(v)
		keys = append(keys, k)
	}
	if n > maxSharedMapBytes {
		return "", false
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(n + 8*len(m))
	for _, k := range keys {
		for _, s := range []string{k, m[k]} {
			b.WriteString(strconv.Itoa(len(s)))
			b.WriteByte(':')
			b.WriteString(s)
		}
	}
	return b.String(), true
}

// internStringMap interns a map's keys and values in place.
func internStringMap(m map[string]string) {
	for k, v := range m {
		m[unique.Make(k).Value()] = unique.Make(v).Value()
	}
}

// holdsStrings reports whether a value of type t may reach a string.
func holdsStrings(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}
