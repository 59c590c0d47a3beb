package apiserver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// maxJSONPatchOps bounds the operations of one JSON patch (RFC 6902); the
// body size bounds everything else.
const maxJSONPatchOps = 10000

// patchError is a patch that cannot be applied to the current object: a
// pointer that names nothing, a failed test. The handler answers 422.
type patchError struct{ msg string }

func (e *patchError) Error() string { return e.msg }

func patchErrorf(format string, args ...any) error {
	return &patchError{msg: fmt.Sprintf(format, args...)}
}

// jsonPatchOp is one operation of an RFC 6902 document.
type jsonPatchOp struct {
	Op    string           `json:"op"`
	Path  *string          `json:"path"`
	From  *string          `json:"from"`
	Value *json.RawMessage `json:"value"`
}

// parseJSONPatch checks the shape of an RFC 6902 document before it is
// applied, so that a malformed patch is a 400 whatever the object holds.
func parseJSONPatch(data []byte) ([]jsonPatchOp, error) {
	var ops []jsonPatchOp
	if err := json.Unmarshal(data, &ops); err != nil {
		return nil, fmt.Errorf("a JSON patch is a JSON array of operations: %v", err)
	}
	if len(ops) > maxJSONPatchOps {
		return nil, fmt.Errorf("the JSON patch has %d operations, the limit is %d", len(ops), maxJSONPatchOps)
	}
	for i, op := range ops {
		at := fmt.Sprintf("operation [%d]", i)
		if op.Path == nil {
			return nil, fmt.Errorf("%s: path: required", at)
		}
		if _, err := splitPointer(*op.Path); err != nil {
			return nil, fmt.Errorf("%s: path: %v", at, err)
		}
		switch op.Op {
		case "add", "replace", "test":
			if op.Value == nil {
				return nil, fmt.Errorf("%s (%s): value: required", at, op.Op)
			}
		case "remove":
		case "move", "copy":
			if op.From == nil {
				return nil, fmt.Errorf("%s (%s): from: required", at, op.Op)
			}
			if _, err := splitPointer(*op.From); err != nil {
				return nil, fmt.Errorf("%s: from: %v", at, err)
			}
		default:
			return nil, fmt.Errorf("%s: op: %q is not one of add, remove, replace, move, copy, test", at, op.Op)
		}
	}
	return ops, nil
}

// splitPointer parses an RFC 6901 JSON pointer into its reference tokens.
func splitPointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%q is not a JSON pointer (it must start with /)", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(t, "~0", ""), "~1", ""), "~") {
			return nil, fmt.Errorf("%q: bad escape in %q (only ~0 and ~1)", p, t)
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// maxPatchedBytes bounds what a JSON patch may grow a document to: copy
// operations could otherwise double it with each operation. Each add,
// replace and copy counts the size of the value it inserts (removals are
// not subtracted), so the bound is checked without encoding the document.
const maxPatchedBytes = api.MaxManifestBytes

// applyJSONPatch applies an RFC 6902 patch to a JSON document.
func applyJSONPatch(doc []byte, ops []jsonPatchOp) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	size := len(doc)
	for i, op := range ops {
		var err error
		var added int
		root, added, err = applyJSONPatchOp(root, op)
		if err != nil {
			return nil, patchErrorf("JSON patch operation [%d] (%s %s): %v", i, op.Op, *op.Path, err)
		}
		if size += added; size > maxPatchedBytes {
			return nil, patchErrorf("JSON patch operation [%d] (%s %s): the patched object would exceed %d bytes", i, op.Op, *op.Path, maxPatchedBytes)
		}
	}
	return json.Marshal(root)
}

// applyJSONPatchOp applies one operation; added is the size of the value it
// inserted.
func applyJSONPatchOp(root any, op jsonPatchOp) (out any, added int, err error) {
	path, _ := splitPointer(*op.Path)
	var value any
	if op.Value != nil {
		if err := json.Unmarshal(*op.Value, &value); err != nil {
			return nil, 0, fmt.Errorf("value: %v", err)
		}
		added = len(*op.Value)
	}
	switch op.Op {
	case "add":
		out, err = pointerAdd(root, path, value)
		return out, added, err
	case "remove":
		out, _, err = pointerRemove(root, path)
		return out, 0, err
	case "replace":
		if _, err := pointerGet(root, path); err != nil {
			return nil, 0, err
		}
		if len(path) == 0 {
			return value, added, nil
		}
		if out, _, err = pointerRemove(root, path); err != nil {
			return nil, 0, err
		}
		out, err = pointerAdd(out, path, value)
		return out, added, err
	case "move":
		from, _ := splitPointer(*op.From)
		if len(from) < len(path) && reflect.DeepEqual(from, path[:len(from)]) {
			return nil, 0, fmt.Errorf("from: %q is a prefix of path: cannot move a value into itself", *op.From)
		}
		out, v, err := pointerRemove(root, from)
		if err != nil {
			return nil, 0, fmt.Errorf("from: %v", err)
		}
		out, err = pointerAdd(out, path, v)
		return out, 0, err
	case "copy":
		from, _ := splitPointer(*op.From)
		v, err := pointerGet(root, from)
		if err != nil {
			return nil, 0, fmt.Errorf("from: %v", err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, 0, err
		}
		out, err = pointerAdd(root, path, deepCopyJSON(v))
		return out, len(b), err
	case "test":
		v, err := pointerGet(root, path)
		if err != nil {
			return nil, 0, err
		}
		if !reflect.DeepEqual(v, value) {
			return nil, 0, fmt.Errorf("test failed: the value is %s, not %s", compactJSON(v), compactJSON(value))
		}
		return root, 0, nil
	}
	return nil, 0, fmt.Errorf("unknown op %q", op.Op)
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func deepCopyJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(t))
		for k, e := range t {
			c[k] = deepCopyJSON(e)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, e := range t {
			c[i] = deepCopyJSON(e)
		}
		return c
	}
	return v
}

// arrayIndex parses an array index token; end allows "-" and len(a).
func arrayIndex(tok string, n int, end bool) (int, error) {
	if tok == "-" && end {
		return n, nil
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') || strings.TrimLeft(tok, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not an array index", tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i > n || (i == n && !end) {
		return 0, fmt.Errorf("index %s is out of range (the array has %d elements)", tok, n)
	}
	return i, nil
}

func pointerGet(root any, path []string) (any, error) {
	cur := root
	for i, tok := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("/%s: no such member", strings.Join(path[:i+1], "/"))
			}
			cur = v
		case []any:
			idx, err := arrayIndex(tok, len(c), false)
			if err != nil {
				return nil, fmt.Errorf("/%s: %v", strings.Join(path[:i+1], "/"), err)
			}
			cur = c[idx]
		default:
			return nil, fmt.Errorf("/%s: the parent is not an object or an array", strings.Join(path[:i+1], "/"))
		}
	}
	return cur, nil
}

// pointerEdit replaces the container holding path's last token by what
// edit makes of it, rebuilding the chain of parents.
func pointerEdit(root any, path []string, edit func(parent any, tok string) (any, error)) (any, error) {
	if len(path) == 1 {
		return edit(root, path[0])
	}
	switch c := root.(type) {
	case map[string]any:
		child, ok := c[path[0]]
		if !ok {
			return nil, fmt.Errorf("%q: no such member", path[0])
		}
		nc, err := pointerEdit(child, path[1:], edit)
		if err != nil {
			return nil, err
		}
		c[path[0]] = nc
		return c, nil
	case []any:
		idx, err := arrayIndex(path[0], len(c), false)
		if err != nil {
			return nil, err
		}
		nc, err := pointerEdit(c[idx], path[1:], edit)
		if err != nil {
			return nil, err
		}
		c[idx] = nc
		return c, nil
	}
	return nil, fmt.Errorf("%q: the parent is not an object or an array", path[0])
}

func pointerAdd(root any, path []string, value any) (any, error) {
	if len(path) == 0 {
		return value, nil
	}
	return pointerEdit(root, path, func(parent any, tok string) (any, error) {
		switch c := parent.(type) {
		case map[string]any:
			c[tok] = value
			return c, nil
		case []any:
			idx, err := arrayIndex(tok, len(c), true)
			if err != nil {
				return nil, err
			}
			out := make([]any, 0, len(c)+1)
			out = append(out, c[:idx]...)
			out = append(out, value)
			return append(out, c[idx:]...), nil
		}
		return nil, fmt.Errorf("%q: the parent is not an object or an array", tok)
	})
}

func pointerRemove(root any, path []string) (any, any, error) {
	if len(path) == 0 {
		return nil, nil, fmt.Errorf("cannot remove the whole document")
	}
	var removed any
	out, err := pointerEdit(root, path, func(parent any, tok string) (any, error) {
		switch c := parent.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("%q: no such member", tok)
			}
			removed = v
			delete(c, tok)
			return c, nil
		case []any:
			idx, err := arrayIndex(tok, len(c), false)
			if err != nil {
				return nil, err
			}
			removed = c[idx]
			out := make([]any, 0, len(c)-1)
			out = append(out, c[:idx]...)
			return append(out, c[idx+1:]...), nil
		}
		return nil, fmt.Errorf("%q: the parent is not an object or an array", tok)
	})
	return out, removed, err
}

// applyMergePatch applies an RFC 7386 JSON merge patch.
func applyMergePatch(doc, patch []byte) ([]byte, error) {
	var target, p any
	if err := json.Unmarshal(doc, &target); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("a merge patch is a JSON document: %v", err)
	}
	return json.Marshal(mergePatch(target, p))
}

func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergePatch(tm[k], v)
	}
	return tm
}
