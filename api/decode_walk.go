package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The second stage of decoding: checking a generic JSON tree against the
// Go type it is meant for, so that every problem is reported with its path
// before encoding/json decodes it.

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	fieldCache      sync.Map // reflect.Type -> map[string]reflect.Type
)

// jsonFields maps each JSON field name of struct type t to its Go type,
// following encoding/json: untagged anonymous structs (and those tagged
// only ",inline") are flattened, "-" and unexported fields are skipped, and
// a shallower field wins over a promoted one.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	for _, et := range embedded {
		for name, ft := range jsonFields(et) {
			if _, ok := m[name]; !ok {
				m[name] = ft
			}
		}
	}
	fieldCache.Store(t, m)
	return m
}

// walker checks a generic JSON value against a Go type, collecting an
// error for every unknown field and every value encoding/json would refuse.
type walker struct {
	errs FieldErrors
}

func (w *walker) add(e FieldError) {
	if len(w.errs) < maxCollectedErrors {
		w.errs = append(w.errs, e)
	}
}

func (w *walker) mismatch(p path, want string, v any) {
	w.add(TypeMismatch(p.String(), "expected "+want+", got "+jsonTypeName(v)))
}

// walk checks v against t at path p: the type's own UnmarshalJSON if it has
// one, else the rules of encoding/json for its kind.
func (w *walker) walk(v any, t reflect.Type, p path) {
	if v == nil {
		return // null leaves any field at its zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		w.unmarshaler(v, t, p)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.object(v, t, p)
	case reflect.Map:
		w.mapOf(v, t, p)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(unmarshalerType) {
			w.base64Bytes(v, p)
			return
		}
		w.array(v, t, p)
	case reflect.String:
		if _, ok := v.(string); !ok {
			w.mismatch(p, "string", v)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			w.mismatch(p, "boolean", v)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		w.number(v, t, p)
	case reflect.Interface:
		// anything goes
	default:
		w.add(TypeMismatch(p.String(), "unsupported field type "+t.String()))
	}
}

// unmarshaler lets a type with its own UnmarshalJSON (Quantity, Time,
// IntOrString) judge its value.
func (w *walker) unmarshaler(v any, t reflect.Type, p path) {
	b, err := json.Marshal(v)
	if err == nil {
		err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
	}
	if err != nil {
		w.add(TypeMismatch(p.String(), err.Error()))
	}
}

// object checks a JSON object against a struct: every key must be one of
// its JSON fields.
func (w *walker) object(v any, t reflect.Type, p path) {
	m, ok := v.(map[string]any)
	if !ok {
		w.mismatch(p, "object", v)
		return
	}
	fields := jsonFields(t)
	for k, fv := range m {
		ft, ok := fields[k]
		if !ok {
			w.add(UnknownField(p.child(k).String()))
			continue
		}
		w.walk(fv, ft, p.child(k))
	}
}

// mapOf checks a JSON object against a map with string keys.
func (w *walker) mapOf(v any, t reflect.Type, p path) {
	m, ok := v.(map[string]any)
	if !ok {
		w.mismatch(p, "object", v)
		return
	}
	if t.Key().Kind() != reflect.String {
		w.add(TypeMismatch(p.String(), "unsupported map key type "+t.Key().String()))
		return
	}
	for k, ev := range m {
		w.walk(ev, t.Elem(), p.key(k))
	}
}

// base64Bytes checks the base64 string encoding/json expects for a []byte.
func (w *walker) base64Bytes(v any, p path) {
	s, ok := v.(string)
	if !ok {
		w.mismatch(p, "base64-encoded string", v)
		return
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		w.add(TypeMismatch(p.String(), "expected base64-encoded string: "+err.Error()))
	}
}

// array checks a JSON array against a slice, element by element.
func (w *walker) array(v any, t reflect.Type, p path) {
	a, ok := v.([]any)
	if !ok {
		w.mismatch(p, "array", v)
		return
	}
	for i, ev := range a {
		w.walk(ev, t.Elem(), p.index(i))
	}
}

// number checks a JSON number against a numeric kind: its syntax (no
// fraction or exponent for an integer) and its range.
func (w *walker) number(v any, t reflect.Type, p path) {
	n, ok := v.(json.Number)
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		if !ok {
			w.mismatch(p, "number", v)
			return
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			w.add(TypeMismatch(p.String(), "number "+string(n)+" out of range"))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !ok {
			w.mismatch(p, "non-negative integer", v)
			return
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			w.badInteger(p, n, err, t)
		}
	default:
		if !ok {
			w.mismatch(p, "integer", v)
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			w.badInteger(p, n, err, t)
		}
	}
}

func (w *walker) badInteger(p path, n json.Number, err error, t reflect.Type) {
	if errors.Is(err, strconv.ErrRange) {
		w.add(TypeMismatch(p.String(), fmt.Sprintf("integer %s out of range for %s", n, t.Kind())))
		return
	}
	w.add(TypeMismatch(p.String(), "expected integer, got number "+string(n)))
}
