package apiserver

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Strategic merge patch, Kubernetes' merge for the fields Shoal has. It is
// a JSON merge patch (RFC 7386) except that:
//
//   - a list named in mergeKeys is merged element by element, an element
//     of the patch replacing or merging into the one with the same merge
//     key; an element {"<key>": v, "$patch": "delete"} removes it, and an
//     element {"$patch": "replace"} makes the rest of the patch's list the
//     whole list;
//   - a list of strings named in mergeSets (metadata.finalizers) is a set:
//     the patch's values are added, "$deleteFromPrimitiveList/<field>"
//     removes values;
//   - a map with "$patch": "replace" replaces the map, "$patch": "delete"
//     removes it;
//   - "$retainKeys" keeps only the fields it lists (then merges the rest);
//   - "$setElementOrder/<field>" is accepted and ignored (the order of the
//     merged list is the original order, then new elements in the patch's
//     order).
//
// Any other list is replaced whole, as Kubernetes does for lists without a
// patch strategy (tolerations, taints, containerStatuses, envFrom, args...).

// mergeKeys names the merge key of each list merged by key, by the last
// two field names of its path (indices left out), or else by its own name.
var mergeKeys = map[string]string{
	"containers.ports":     "containerPort",
	"initContainers.ports": "containerPort",
	"spec.ports":           "port", // Service
	"status.addresses":     "type", // Node
	"containers":           "name",
	"initContainers":       "name",
	"env":                  "name",
	"volumes":              "name",
	"volumeMounts":         "mountPath",
	"conditions":           "type",
	"ownerReferences":      "uid",
}

// mergeSets are lists of strings merged as sets.
var mergeSets = map[string]bool{"metadata.finalizers": true}

// maxStrategicDepth bounds the nesting a strategic merge patch walks.
const maxStrategicDepth = 100

const (
	directivePatch       = "$patch"
	directiveRetainKeys  = "$retainKeys"
	prefixSetOrder       = "$setElementOrder/"
	prefixDeleteFromList = "$deleteFromPrimitiveList/"
)

// applyStrategicPatch applies a strategic merge patch to a JSON document.
func applyStrategicPatch(doc, patch []byte) ([]byte, error) {
	var target map[string]any
	if err := json.Unmarshal(doc, &target); err != nil {
		return nil, err
	}
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, fmt.Errorf("a strategic merge patch is a JSON object: %v", err)
	}
	out, err := strategicMergeMap(target, p, nil)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

func pathString(path []string) string {
	if len(path) == 0 {
		return "(root)"
	}
	return strings.Join(path, ".")
}

func mergeKeyFor(path []string) (string, bool) {
	if n := len(path); n >= 2 {
		if k, ok := mergeKeys[path[n-2]+"."+path[n-1]]; ok {
			return k, true
		}
	}
	if n := len(path); n >= 1 {
		k, ok := mergeKeys[path[n-1]]
		return k, ok
	}
	return "", false
}

func isMergeSet(path []string) bool {
	n := len(path)
	return n >= 2 && mergeSets[path[n-2]+"."+path[n-1]]
}

// strategicMergeMap merges patch into target (which it may change) at path.
// A nil result with no error means the map is to be deleted.
func strategicMergeMap(target, patch map[string]any, path []string) (map[string]any, error) {
	if len(path) > maxStrategicDepth {
		return nil, patchErrorf("%s: the patch nests deeper than %d levels", pathString(path), maxStrategicDepth)
	}
	if d, ok := patch[directivePatch]; ok {
		switch d {
		case "replace":
			out := map[string]any{}
			for k, v := range patch {
				if k != directivePatch {
					out[k] = v
				}
			}
			stripDirectives(out)
			return out, nil
		case "delete":
			return nil, nil
		case "merge":
		default:
			return nil, patchErrorf("%s: $patch: %v is not one of replace, delete, merge", pathString(path), d)
		}
	}
	if target == nil {
		target = map[string]any{}
	}
	if rk, ok := patch[directiveRetainKeys]; ok {
		keys, ok := rk.([]any)
		if !ok {
			return nil, patchErrorf("%s: $retainKeys: must be a list of field names", pathString(path))
		}
		keep := map[string]bool{}
		for _, k := range keys {
			s, ok := k.(string)
			if !ok {
				return nil, patchErrorf("%s: $retainKeys: must be a list of field names", pathString(path))
			}
			keep[s] = true
		}
		for k := range target {
			if !keep[k] {
				delete(target, k)
			}
		}
	}
	for k, v := range patch {
		switch {
		case k == directivePatch || k == directiveRetainKeys || strings.HasPrefix(k, prefixSetOrder):
			continue
		case strings.HasPrefix(k, prefixDeleteFromList):
			field := strings.TrimPrefix(k, prefixDeleteFromList)
			drop, ok := v.([]any)
			if !ok {
				return nil, patchErrorf("%s: %s: must be a list", pathString(path), k)
			}
			if cur, ok := target[field].([]any); ok {
				var kept []any
				for _, e := range cur {
					if !containsJSON(drop, e) {
						kept = append(kept, e)
					}
				}
				target[field] = kept
			}
			continue
		}
		child := append(append([]string(nil), path...), k)
		if v == nil {
			delete(target, k)
			continue
		}
		merged, del, err := strategicMergeValue(target[k], v, child)
		if err != nil {
			return nil, err
		}
		if del {
			delete(target, k)
		} else {
			target[k] = merged
		}
	}
	return target, nil
}

// strategicMergeValue merges one field's patch value into its current
// value; del reports that the field is to be removed.
func strategicMergeValue(cur, patch any, path []string) (any, bool, error) {
	switch p := patch.(type) {
	case map[string]any:
		cm, _ := cur.(map[string]any)
		out, err := strategicMergeMap(cm, p, path)
		if err != nil {
			return nil, false, err
		}
		return out, out == nil, nil
	case []any:
		cl, _ := cur.([]any)
		if key, ok := mergeKeyFor(path); ok {
			out, err := mergeListByKey(cl, p, key, path)
			return out, false, err
		}
		if isMergeSet(path) {
			out := append([]any(nil), cl...)
			for _, e := range p {
				if !containsJSON(out, e) {
					out = append(out, e)
				}
			}
			return out, false, nil
		}
		return stripDirectives(p), false, nil
	}
	return patch, false, nil
}

// mergeListByKey merges a patch list into a list of objects by key.
func mergeListByKey(cur, patch []any, key string, path []string) ([]any, error) {
	for _, e := range patch {
		if m, ok := e.(map[string]any); ok && m[directivePatch] == "replace" {
			var out []any
			for _, e2 := range patch {
				if m2, ok := e2.(map[string]any); ok && m2[directivePatch] != nil {
					continue
				}
				out = append(out, stripDirectives(e2))
			}
			return out, nil
		}
	}
	// Elements are found by key through an index, so that a long list
	// costs linear time; deleted elements are tombstoned until the end.
	out := append([]any(nil), cur...)
	gone := make([]bool, len(out))
	at := map[string]int{}
	for j, c := range out {
		if cm, ok := c.(map[string]any); ok {
			if _, dup := at[keyString(cm[key])]; !dup {
				at[keyString(cm[key])] = j
			}
		}
	}
	for i, e := range patch {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, patchErrorf("%s[%d]: must be an object (the list is merged by %q)", pathString(path), i, key)
		}
		kv, ok := m[key]
		if !ok {
			return nil, patchErrorf("%s[%d]: %s: required to merge the element into the list", pathString(path), i, key)
		}
		ks := keyString(kv)
		j, found := at[ks]
		if m[directivePatch] == "delete" {
			if found {
				gone[j] = true
				delete(at, ks)
			}
			continue
		}
		var cm map[string]any
		if found {
			cm, _ = out[j].(map[string]any)
		}
		nm, err := strategicMergeMap(cm, m, path)
		if err != nil {
			return nil, err
		}
		switch {
		case nm == nil && found:
			gone[j] = true
			delete(at, ks)
		case nm == nil:
		case found:
			out[j] = nm
		default:
			at[ks] = len(out)
			out = append(out, nm)
			gone = append(gone, false)
		}
	}
	kept := out[:0]
	for j, c := range out {
		if !gone[j] {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// keyString is the identity of a merge key's value: its type and value, so
// that the number 80 and the string "80" stay apart.
func keyString(v any) string {
	return fmt.Sprintf("%T:%v", v, v)
}

// stripDirectives removes $-directives from a value that replaces another.
func stripDirectives(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if strings.HasPrefix(k, "$") {
				delete(t, k)
				continue
			}
			t[k] = stripDirectives(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = stripDirectives(e)
		}
	}
	return v
}

func containsJSON(list []any, v any) bool {
	for _, e := range list {
		if reflect.DeepEqual(e, v) {
			return true
		}
	}
	return false
}
