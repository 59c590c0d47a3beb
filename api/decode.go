package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	goyaml "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
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

// splitDocuments cuts the input into documents and parses each into
// generic JSON values (map[string]any, []any, string, json.Number, bool,
// nil). Input whose first non-blank byte is '{' is read as a stream of JSON
// objects; anything else as YAML documents separated by "---" lines.
func splitDocuments(data []byte) ([]document, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxManifestBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return splitJSON(data)
	}
	return splitYAML(data)
}

func splitJSON(data []byte) ([]document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var docs []document
	for {
		v, err := readJSONValue(dec)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			if errors.Is(err, ErrTooDeep) {
				return nil, err
			}
			docs = append(docs, document{err: err})
			return docs, nil
		}
		if len(docs) >= MaxDocuments {
			return nil, fmt.Errorf("%w: more than %d", ErrTooManyDocuments, MaxDocuments)
		}
		docs = append(docs, toDocument(v, 0))
	}
}

func toDocument(v any, line int) document {
	switch x := v.(type) {
	case nil:
		return document{line: line}
	case map[string]any:
		return document{generic: x, line: line}
	}
	return document{line: line, err: fmt.Errorf("%w: expected an object, got %s", ErrSyntax, jsonTypeName(v))}
}

// splitYAML cuts at lines that start with "---" (optionally followed by
// blanks or a comment or content) and at "..." end markers.
func splitYAML(data []byte) ([]document, error) {
	var docs []document
	var cur bytes.Buffer
	curLine, lineNo := 1, 0
	flush := func() error {
		text := cur.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			cur.Reset()
			return nil
		}
		if len(docs) >= MaxDocuments {
			return fmt.Errorf("%w: more than %d", ErrTooManyDocuments, MaxDocuments)
		}
		docs = append(docs, parseYAMLDocument(text, curLine))
		cur.Reset()
		return nil
	}
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			line, data = data, nil
		}
		bare := bytes.TrimRight(line, "\r\n")
		if bytes.HasPrefix(bare, []byte("---")) && (len(bare) == 3 || bare[3] == ' ' || bare[3] == '\t') {
			if err := flush(); err != nil {
				return nil, err
			}
			curLine = lineNo
			// Content after the marker on the same line belongs to the
			// new document; pad it so columns stay where they were.
			cur.WriteString("   ")
			cur.Write(line[3:])
			continue
		}
		if bytes.Equal(bare, []byte("...")) {
			if err := flush(); err != nil {
				return nil, err
			}
			curLine = lineNo + 1
			continue
		}
		if cur.Len() == 0 {
			curLine = lineNo
		}
		cur.Write(line)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return docs, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+):`)

func parseYAMLDocument(text []byte, line int) document {
	j, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		// Make the parser's line numbers count from the start of the input.
		msg := yamlLineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
			n, _ := strconv.Atoi(yamlLineRE.FindStringSubmatch(m)[1])
			return "line " + strconv.Itoa(n+line-1) + ":"
		})
		return document{line: line, err: fmt.Errorf("%w: %s", ErrSyntax, msg)}
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	v, err := readJSONValue(dec)
	if err != nil {
		return document{line: line, err: err}
	}
	return toDocument(v, line)
}

// readJSONValue reads one JSON value token by token, without recursion,
// refusing nesting deeper than MaxNestingDepth and duplicate keys. At the
// end of the input it returns io.EOF.
func readJSONValue(dec *json.Decoder) (any, error) {
	type frame struct {
		obj    map[string]any
		arr    []any
		key    string // pending key in an object
		hasKey bool
	}
	var stack []*frame
	var result any
	// add places a finished value into the enclosing container, or makes it
	// the result. It reports whether the whole value is complete.
	add := func(v any) (bool, error) {
		if len(stack) == 0 {
			result = v
			return true, nil
		}
		top := stack[len(stack)-1]
		if top.obj != nil {
			if !top.hasKey {
				return false, fmt.Errorf("%w: object key missing", ErrSyntax)
			}
			top.obj[top.key] = v
			top.hasKey = false
			return false, nil
		}
		top.arr = append(top.arr, v)
		return false, nil
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF && len(stack) == 0 {
			return nil, io.EOF
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		var done bool
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) >= MaxNestingDepth {
					return nil, fmt.Errorf("%w: more than %d levels", ErrTooDeep, MaxNestingDepth)
				}
				f := &frame{}
				if t == '{' {
					f.obj = map[string]any{}
				} else {
					f.arr = []any{}
				}
				stack = append(stack, f)
				continue
			case '}', ']':
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if top.obj != nil {
					done, err = add(top.obj)
				} else {
					done, err = add(top.arr)
				}
			}
		case string:
			if len(stack) > 0 {
				if top := stack[len(stack)-1]; top.obj != nil && !top.hasKey {
					if _, dup := top.obj[t]; dup {
						return nil, fmt.Errorf("%w: duplicate key %q", ErrSyntax, t)
					}
					top.key, top.hasKey = t, true
					continue
				}
			}
			done, err = add(t)
		default: // json.Number, bool, nil
			done, err = add(t)
		}
		if err != nil {
			return nil, err
		}
		if done {
			return result, nil
		}
	}
}

// jsonTypeName names the JSON type of a generic value for error messages.
func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

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

func (w *walker) walk(v any, t reflect.Type, p path) {
	if v == nil {
		return // null leaves any field at its zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		b, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			w.add(TypeMismatch(p.String(), err.Error()))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
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
	case reflect.Map:
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
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(unmarshalerType) {
			s, ok := v.(string)
			if !ok {
				w.mismatch(p, "base64-encoded string", v)
				return
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				w.add(TypeMismatch(p.String(), "expected base64-encoded string: "+err.Error()))
			}
			return
		}
		a, ok := v.([]any)
		if !ok {
			w.mismatch(p, "array", v)
			return
		}
		for i, ev := range a {
			w.walk(ev, t.Elem(), p.index(i))
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			w.mismatch(p, "string", v)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			w.mismatch(p, "boolean", v)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			w.mismatch(p, "integer", v)
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			w.badInteger(p, n, err, t)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			w.mismatch(p, "non-negative integer", v)
			return
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			w.badInteger(p, n, err, t)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			w.mismatch(p, "number", v)
			return
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			w.add(TypeMismatch(p.String(), "number "+string(n)+" out of range"))
		}
	case reflect.Interface:
		// anything goes
	default:
		w.add(TypeMismatch(p.String(), "unsupported field type "+t.String()))
	}
}

func (w *walker) badInteger(p path, n json.Number, err error, t reflect.Type) {
	if errors.Is(err, strconv.ErrRange) {
		w.add(TypeMismatch(p.String(), fmt.Sprintf("integer %s out of range for %s", n, t.Kind())))
		return
	}
	w.add(TypeMismatch(p.String(), "expected integer, got number "+string(n)))
}

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
