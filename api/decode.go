package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Limits on what the decoder accepts, so that hostile input costs bounded
// time and memory.
const (
	// MaxManifestBytes is the largest input DecodeManifests, DecodeObject
	// and DecodeInto read.
	MaxManifestBytes = 3 << 20
	// MaxDocuments is how many YAML documents (or JSON values, or List
	// items) one input may hold.
	MaxDocuments = 1000
	// MaxNestingDepth is how deeply objects and arrays may nest.
	MaxNestingDepth = 100
	// maxCollectedErrors bounds the work spent on one very broken document;
	// FieldErrors.Sorted then reports the first MaxFieldErrors of them.
	maxCollectedErrors = 1000
)

// Errors for input that is not a manifest at all. Problems with individual
// fields are reported as FieldErrors instead.
var (
	// ErrTooLarge: the input is longer than MaxManifestBytes.
	ErrTooLarge = errors.New("manifest too large")
	// ErrTooManyDocuments: the input holds more than MaxDocuments objects.
	ErrTooManyDocuments = errors.New("too many documents")
	// ErrTooDeep: objects or arrays nest deeper than MaxNestingDepth.
	ErrTooDeep = errors.New("nesting too deep")
	// ErrSyntax: the input is not well-formed YAML or JSON.
	ErrSyntax = errors.New("malformed manifest")
	// ErrNoObject: the input holds no object (only blanks or comments).
	ErrNoObject = errors.New("no object in input")
)

// DocumentError is a problem with one document of a manifest file. It
// prints as
//
//	document 2 (Deployment "web"): spec.replicas: expected integer, got string
//
// with the 1-based document number, and the kind and name when they could
// be read; a document that did not parse names its first line instead. An
// item of a `kind: List` document also names its index: `document 1
// items[3] (...)`.
type DocumentError struct {
	Index int    // 1-based document number in the input
	Item  int    // index in the items of a List document, or -1
	Line  int    // first line of the document in the input, 0 if unknown
	Kind  string // kind, when it was read
	Name  string // metadata.name, when it was read
	Err   error  // usually FieldErrors
}

func (e *DocumentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "document %d", e.Index)
	if e.Item >= 0 {
		fmt.Fprintf(&b, " items[%d]", e.Item)
	}
	switch {
	case e.Kind != "" && e.Name != "":
		fmt.Fprintf(&b, " (%s %q)", e.Kind, e.Name)
	case e.Kind != "":
		fmt.Fprintf(&b, " (%s)", e.Kind)
	case e.Line > 0:
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *DocumentError) Unwrap() error { return e.Err }

// ManifestError collects the DocumentErrors of one input, one per line.
type ManifestError []*DocumentError

func (m ManifestError) Error() string {
	s := make([]string, len(m))
	for i, e := range m {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (m ManifestError) Unwrap() []error {
	out := make([]error, len(m))
	for i, e := range m {
		out[i] = e
	}
	return out
}

// document is one YAML document or JSON value cut from the input.
type document struct {
	generic map[string]any // nil when the document is empty
	line    int
	err     error
}

// DecodeManifests reads every object of a manifest: YAML documents
// separated by "---" lines, or one or more JSON objects. Empty and
// comment-only documents are skipped, and a `kind: List` document
// contributes its items. Decoding is strict: an unknown field or a value of
// the wrong type is an error naming its path. Every document is checked;
// if any fails, the result is nil and the error is a ManifestError.
// The objects are neither defaulted nor validated.
func DecodeManifests(data []byte) ([]Object, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []Object
	var merr ManifestError
	for i, d := range docs {
		if d.err != nil {
			merr = append(merr, &DocumentError{Index: i + 1, Item: -1, Line: d.line, Err: d.err})
			continue
		}
		if d.generic == nil {
			continue
		}
		if kind, _ := d.generic["kind"].(string); kind == "List" {
			items, errs := decodeList(d.generic)
			if errs != nil {
				merr = append(merr, &DocumentError{Index: i + 1, Item: -1, Line: d.line, Kind: "List", Err: errs})
				continue
			}
			if len(out)+len(items) > MaxDocuments {
				return nil, fmt.Errorf("%w: more than %d objects", ErrTooManyDocuments, MaxDocuments)
			}
			for j, item := range items {
				obj, errs := decodeGeneric(item, nil)
				if errs != nil {
					merr = append(merr, documentError(i+1, j, 0, item, errs))
					continue
				}
				out = append(out, obj)
			}
			continue
		}
		obj, errs := decodeGeneric(d.generic, nil)
		if errs != nil {
			merr = append(merr, documentError(i+1, -1, d.line, d.generic, errs))
			continue
		}
		out = append(out, obj)
	}
	if merr != nil {
		return nil, merr
	}
	if len(out) > MaxDocuments {
		return nil, fmt.Errorf("%w: more than %d objects", ErrTooManyDocuments, MaxDocuments)
	}
	return out, nil
}

func documentError(index, item, line int, generic map[string]any, errs FieldErrors) *DocumentError {
	e := &DocumentError{Index: index, Item: item, Line: line, Err: errs}
	e.Kind, _ = generic["kind"].(string)
	if md, ok := generic["metadata"].(map[string]any); ok {
		e.Name, _ = md["name"].(string)
	}
	return e
}

// decodeList checks the envelope of a `kind: List` document and returns its
// items.
func decodeList(g map[string]any) ([]map[string]any, FieldErrors) {
	var errs FieldErrors
	if v := g["apiVersion"]; v != "v1" {
		errs = append(errs, Invalid("apiVersion", v, "kind List is served as v1"))
	}
	for k := range g {
		switch k {
		case "apiVersion", "kind", "items", "metadata":
		default:
			errs = append(errs, UnknownField(k))
		}
	}
	var items []map[string]any
	switch raw := g["items"].(type) {
	case nil:
	case []any:
		for i, it := range raw {
			m, ok := it.(map[string]any)
			if !ok {
				errs = append(errs, TypeMismatch(path("items").index(i).String(), "expected object, got "+jsonTypeName(it)))
				continue
			}
			if m["kind"] == "List" {
				errs = append(errs, Invalid(path("items").index(i).child("kind").String(), "List", "a List may not hold a List"))
				continue
			}
			items = append(items, m)
		}
	default:
		errs = append(errs, TypeMismatch("items", "expected array, got "+jsonTypeName(raw)))
	}
	if errs != nil {
		return nil, errs.Sorted()
	}
	return items, nil
}

// DecodeObject reads exactly one object, JSON or YAML, with the same
// strictness as DecodeManifests. Problems with fields come back as
// FieldErrors without a document prefix; input that does not parse wraps
// ErrSyntax.
func DecodeObject(data []byte) (Object, error) {
	g, err := oneDocument(data)
	if err != nil {
		return nil, err
	}
	obj, errs := decodeGeneric(g, nil)
	if errs != nil {
		return nil, errs
	}
	return obj, nil
}

// DecodeInto reads one object of the kind of obj, which it first resets to
// its zero value. apiVersion and kind may be left out of the input; when
// present they must match obj. Afterwards obj's TypeMeta is filled in.
func DecodeInto(data []byte, obj Object) error {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return errors.New("api: DecodeInto needs a non-nil object")
	}
	if len(data) > MaxManifestBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxManifestBytes)
	}
	if info, ok := LookupKind(KindOf(obj)); ok && fastDecodeJSON(data, obj, info) {
		return nil
	}
	g, err := oneDocument(data)
	if err != nil {
		return err
	}
	if _, errs := decodeGeneric(g, obj); errs != nil {
		return errs
	}
	return nil
}

func oneDocument(data []byte) (map[string]any, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var found []document
	for _, d := range docs {
		if d.err != nil {
			return nil, d.err
		}
		if d.generic != nil {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, ErrNoObject
	case 1:
		return found[0].generic, nil
	}
	return nil, fmt.Errorf("expected one object, found %d documents", len(found))
}

// decodeGeneric turns one parsed document into a typed object. With into
// nil the kind comes from the document; otherwise the document must be of
// into's kind (or say nothing) and is decoded into it.
func decodeGeneric(g map[string]any, into Object) (Object, FieldErrors) {
	var errs FieldErrors
	kindVal, hasKind := g["kind"]
	kind, kindIsString := kindVal.(string)
	if hasKind && kindVal != nil && !kindIsString {
		return nil, FieldErrors{TypeMismatch("kind", "expected string, got "+jsonTypeName(kindVal))}
	}
	apiVal := g["apiVersion"]
	apiVersion, apiIsString := apiVal.(string)
	if apiVal != nil && !apiIsString {
		return nil, FieldErrors{TypeMismatch("apiVersion", "expected string, got "+jsonTypeName(apiVal))}
	}

	var info KindInfo
	if into != nil {
		var ok bool
		info, ok = LookupKind(KindOf(into))
		if !ok {
			return nil, FieldErrors{Invalid("kind", KindOf(into), "not a served kind")}
		}
		if kind != "" && kind != info.Kind {
			return nil, FieldErrors{Invalid("kind", kind, "must be "+info.Kind)}
		}
		if apiVersion != "" && apiVersion != info.APIVersion() {
			return nil, FieldErrors{Invalid("apiVersion", apiVersion, fmt.Sprintf("kind %s is served as %s", info.Kind, info.APIVersion()))}
		}
	} else {
		if kind == "" {
			return nil, FieldErrors{Required("kind", "")}
		}
		var ok bool
		info, ok = LookupKind(kind)
		if !ok {
			return nil, FieldErrors{NotSupported("kind", kind, KindNames())}
		}
		if apiVersion == "" {
			return nil, FieldErrors{Required("apiVersion", "kind "+kind+" is served as "+info.APIVersion())}
		}
		if apiVersion != info.APIVersion() {
			return nil, FieldErrors{Invalid("apiVersion", apiVersion, fmt.Sprintf("kind %s is served as %s", info.Kind, info.APIVersion()))}
		}
		into = info.New()
	}

	w := walker{}
	w.walk(g, reflect.TypeOf(into).Elem(), "")
	if errs = w.errs.Sorted(); errs != nil {
		return nil, errs
	}
	b, err := json.Marshal(g)
	if err != nil {
		return nil, FieldErrors{{Type: ErrorTypeMismatch, Detail: "re-encoding: " + err.Error()}}
	}
	v := reflect.ValueOf(into).Elem()
	v.Set(reflect.Zero(v.Type()))
	if err := json.Unmarshal(b, into); err != nil {
		// The walker accepts only what encoding/json accepts, so this is a
		// bug in the walker; report it rather than hide it.
		return nil, FieldErrors{{Type: ErrorTypeMismatch, Detail: "decoding: " + err.Error()}}
	}
	SetTypeMeta(into)
	return into, nil
}
