package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"sigs.k8s.io/yaml"
)

// The first stage of decoding: cutting the input into documents and
// parsing each into a generic JSON tree, within the limits.

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
