package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	gojson "github.com/goccy/go-json"
)

// The fast path of DecodeInto. API clients send one JSON object per request,
// almost always well-formed; decoding it through the generic walker costs
// three JSON passes. When the input is plainly acceptable — one JSON object,
// no duplicate keys, no key that differs from one of the type's field names
// only in case, no unknown field — encoding/json's strict typed decode gives
// the same object in one pass (goccy/go-json's decoder, which matches
// encoding/json's behaviour and is several times faster on this path). Anything else, valid or not, takes the slow
// path, which produces the error messages with field paths. A fuzz test
// checks that both paths agree on every input the fast one accepts.

// fastDecodeJSON reports whether it decoded data into obj. On false, obj is
// in an unspecified state and the caller must use the slow path.
func fastDecodeJSON(data []byte, obj Object, info KindInfo) bool {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) < 2 || trimmed[0] != '{' || trimmed[len(trimmed)-1] != '}' {
		return false
	}
	if !plainKeys(trimmed, fieldNamesOf(reflect.TypeOf(obj).Elem())) {
		return false
	}
	// goccy/go-json is laxer than the JSON grammar in places (a raw
	// control character inside a string, found by the fuzzer): only text
	// that encoding/json calls valid takes the fast path.
	if !json.Valid(trimmed) {
		return false
	}
	v := reflect.ValueOf(obj).Elem()
	v.Set(reflect.Zero(v.Type()))
	dec := gojson.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil || dec.More() {
		return false
	}
	tm := obj.GetTypeMeta()
	if (tm.Kind != "" && tm.Kind != info.Kind) || (tm.APIVersion != "" && tm.APIVersion != info.APIVersion()) {
		return false
	}
	SetTypeMeta(obj)
	return true
}

// fieldNames maps the lower-cased json names of every struct field reachable
// from a type to their exact spelling.
type fieldNames map[string]string

var fieldNameCache sync.Map // reflect.Type → fieldNames

func fieldNamesOf(t reflect.Type) fieldNames {
	if f, ok := fieldNameCache.Load(t); ok {
		return f.(fieldNames)
	}
	names := fieldNames{}
	seen := map[reflect.Type]bool{}
	var visit func(reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if name != "" {
				names[strings.ToLower(name)] = name
			}
			visit(f.Type)
		}
	}
	visit(t)
	fieldNameCache.Store(t, names)
	return names
}

// plainKeys scans a JSON text and reports whether every object in it has
// distinct keys, none with escapes, and none that matches a field name
// case-insensitively without matching it exactly (encoding/json would take
// "Metadata" for "metadata"; Shoal treats it as unknown). Keys of maps such
// as labels may trip the case check; that only costs the slow path.
func plainKeys(data []byte, names fieldNames) bool {
	type frame struct {
		object bool
		keys   []string
	}
	var stack []frame
	expectKey := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{':
			if len(stack) >= MaxNestingDepth {
				return false
			}
			stack = append(stack, frame{object: true})
			expectKey = true
		case '[':
			if len(stack) >= MaxNestingDepth {
				return false
			}
			stack = append(stack, frame{})
			expectKey = false
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1].object != (c == '}') {
				return false
			}
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
		case '"':
			j := i + 1
			for j < len(data) && data[j] != '"' {
				if data[j] == '\\' {
					if expectKey {
						return false
					}
					j++
				}
				j++
			}
			if j >= len(data) {
				return false
			}
			if expectKey {
				key := string(data[i+1 : j])
				top := &stack[len(stack)-1]
				for _, k := range top.keys {
					if k == key {
						return false
					}
				}
				top.keys = append(top.keys, key)
				if exact, ok := names[strings.ToLower(key)]; ok && exact != key {
					return false
				}
				expectKey = false
			}
			i = j
		}
	}
	return len(stack) == 0
}
