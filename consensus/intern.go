package consensus

import (
	"reflect"
	"unique"
)

// internStrings replaces every string reachable from v (through struct
// fields, pointers, slices, arrays, maps and interfaces) with its interned
// copy.
//
// goccy/go-json decodes a string without escapes as a slice of its own copy
// of the input, so a single kept string keeps the whole encoded object
// alive: with 10,000 Endpoints of ten addresses in the store, those buffers
// were 14 MiB of the live heap. Interned copies hold only the characters,
// and the values objects repeat (namespaces, label keys and values, port
// names, protocols, node names) are held once. Unexported fields are left
// as they are (the api types have none that hold strings).
func internStrings(v any) {
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
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				internValue(f, depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		if k := v.Type().Elem().Kind(); k == reflect.Uint8 || !holdsStrings(v.Type().Elem()) {
			return
		}
		for i := range v.Len() {
			internValue(v.Index(i), depth+1)
		}
	case reflect.Map:
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
