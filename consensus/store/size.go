package store

import (
	"reflect"

	"github.com/shoal-dev/shoal/api"
)

// objectSize estimates the bytes an object holds: its struct and, through
// pointers, slices, maps and strings, what it reaches (a string or slice
// shared with another object counts for each). The watch history is bounded
// by it (Config.HistoryBytes). It is an estimate, not the allocator's
// figure: size classes and a map's empty slots are not counted.
func objectSize(obj api.Object) int64 {
	if obj == nil {
		return 0
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return int64(v.Type().Size())
	}
	return int64(v.Type().Elem().Size()) + reachedSize(v.Elem(), 0)
}

// mapEntryOverhead is what a map costs beyond its keys and values: its
// header and, per entry, a control byte and slack, roughly.
const (
	mapOverhead      = 48
	mapEntryOverhead = 8
)

// reachedSize is the size of what v reaches beyond its own inline bytes.
func reachedSize(v reflect.Value, depth int) int64 {
	if depth > maxInternDepth {
		return 0
	}
	switch v.Kind() {
	case reflect.String:
		return int64(v.Len())
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return int64(v.Type().Elem().Size()) + reachedSize(v.Elem(), depth+1)
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		e := v.Elem()
		return int64(e.Type().Size()) + reachedSize(e, depth+1)
	case reflect.Struct:
		var n int64
		for _, f := range walkFields(v.Type()) {
			n += reachedSize(v.Field(f.index), depth+1)
		}
		return n
	case reflect.Array:
		if !holdsStrings(v.Type().Elem()) {
			return 0
		}
		var n int64
		for i := range v.Len() {
			n += reachedSize(v.Index(i), depth+1)
		}
		return n
	case reflect.Slice:
		if v.IsNil() {
			return 0
		}
		n := int64(v.Cap()) * int64(v.Type().Elem().Size())
		if holdsStrings(v.Type().Elem()) {
			for i := range v.Len() {
				n += reachedSize(v.Index(i), depth+1)
			}
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return 0
		}
		t := v.Type()
		n := int64(mapOverhead) + int64(v.Len())*(int64(t.Key().Size()+t.Elem().Size())+mapEntryOverhead)
		if holdsStrings(t.Key()) || holdsStrings(t.Elem()) {
			it := v.MapRange()
			for it.Next() {
				n += reachedSize(it.Key(), depth+1) + reachedSize(it.Value(), depth+1)
			}
		}
		return n
	}
	return 0
}
