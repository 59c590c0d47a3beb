package api

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"

	goyaml "go.yaml.in/yaml/v2"
)

// EncodeJSON renders obj as indented JSON ending in a newline, filling in
// apiVersion and kind if they are missing (on a copy).
func EncodeJSON(obj Object) ([]byte, error) {
	b, err := json.MarshalIndent(withTypeMeta(obj), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// EncodeYAML renders obj as YAML, filling in apiVersion and kind if they are
// missing (on a copy). Keys come out sorted, as in the JSON encoding.
//
// It goes JSON → generic tree → YAML emitter, rather than through
// sigs.k8s.io/yaml's JSONToYAML, whose YAML parser refuses raw control
// characters (such as DEL) that JSON leaves unescaped.
func EncodeYAML(obj Object) ([]byte, error) {
	b, err := json.Marshal(withTypeMeta(obj))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, err
	}
	return goyaml.Marshal(toYAMLValue(g))
}

// toYAMLValue turns a generic JSON value into one the YAML emitter writes
// faithfully: objects become key-sorted MapSlices, numbers Go numbers.
func toYAMLValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(goyaml.MapSlice, len(keys))
		for i, k := range keys {
			out[i] = goyaml.MapItem{Key: k, Value: toYAMLValue(x[k])}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = toYAMLValue(x[i])
		}
		return out
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	}
	return v
}

// EncodeYAMLDocuments renders several objects as one YAML stream, documents
// separated by "---" lines, as DecodeManifests reads it back.
func EncodeYAMLDocuments(objs []Object) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := EncodeYAML(o)
		if err != nil {
			return nil, err
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

func withTypeMeta(obj Object) Object {
	if tm := obj.GetTypeMeta(); tm.Kind == "" || tm.APIVersion == "" {
		obj = obj.DeepCopyObject()
		SetTypeMeta(obj)
	}
	return obj
}
