package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("result %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestJSONPatch: RFC 6902's operations, including the appendix's cases
// that matter (escapes, "-", test failures, pointers that name nothing).
func TestJSONPatch(t *testing.T) {
	const doc = `{"a":{"b":[1,2,3],"c~d":{"e/f":1}},"x":"y"}`
	cases := []struct {
		name, patch, want  string
		parseErr, applyErr string
	}{
		{name: "add member", patch: `[{"op":"add","path":"/n","value":true}]`, want: `{"a":{"b":[1,2,3],"c~d":{"e/f":1}},"x":"y","n":true}`},
		{name: "add replaces member", patch: `[{"op":"add","path":"/x","value":1}]`, want: `{"a":{"b":[1,2,3],"c~d":{"e/f":1}},"x":1}`},
		{name: "insert in array", patch: `[{"op":"add","path":"/a/b/1","value":9}]`, want: `{"a":{"b":[1,9,2,3],"c~d":{"e/f":1}},"x":"y"}`},
		{name: "append", patch: `[{"op":"add","path":"/a/b/-","value":4}]`, want: `{"a":{"b":[1,2,3,4],"c~d":{"e/f":1}},"x":"y"}`},
		{name: "escapes", patch: `[{"op":"replace","path":"/a/c~0d/e~1f","value":2}]`, want: `{"a":{"b":[1,2,3],"c~d":{"e/f":2}},"x":"y"}`},
		{name: "remove", patch: `[{"op":"remove","path":"/a/b/0"},{"op":"remove","path":"/x"}]`, want: `{"a":{"b":[2,3],"c~d":{"e/f":1}}}`},
		{name: "move", patch: `[{"op":"move","from":"/x","path":"/z"}]`, want: `{"a":{"b":[1,2,3],"c~d":{"e/f":1}},"z":"y"}`},
		{name: "copy", patch: `[{"op":"copy","from":"/a/b","path":"/b"}]`, want: `{"a":{"b":[1,2,3],"c~d":{"e/f":1}},"x":"y","b":[1,2,3]}`},
		{name: "test passes", patch: `[{"op":"test","path":"/a/b","value":[1,2,3]},{"op":"replace","path":"/x","value":"z"}]`, want: `{"a":{"b":[1,2,3],"c~d":{"e/f":1}},"x":"z"}`},
		{name: "replace root", patch: `[{"op":"replace","path":"","value":{"k":1}}]`, want: `{"k":1}`},
		{name: "test fails", patch: `[{"op":"test","path":"/x","value":"nope"}]`, applyErr: "test failed"},
		{name: "remove missing", patch: `[{"op":"remove","path":"/nope"}]`, applyErr: "no such member"},
		{name: "replace missing", patch: `[{"op":"replace","path":"/a/zz","value":1}]`, applyErr: "no such member"},
		{name: "index out of range", patch: `[{"op":"add","path":"/a/b/7","value":1}]`, applyErr: "out of range"},
		{name: "leading zero index", patch: `[{"op":"remove","path":"/a/b/01"}]`, applyErr: "not an array index"},
		{name: "through a scalar", patch: `[{"op":"add","path":"/x/y/z","value":1}]`, applyErr: "not an object or an array"},
		{name: "move into itself", patch: `[{"op":"move","from":"/a","path":"/a/b/0"}]`, applyErr: "into itself"},
		{name: "not an array", patch: `{"op":"add"}`, parseErr: "JSON array"},
		{name: "unknown op", patch: `[{"op":"frob","path":"/x"}]`, parseErr: `"frob"`},
		{name: "no path", patch: `[{"op":"remove"}]`, parseErr: "path: required"},
		{name: "no value", patch: `[{"op":"add","path":"/x"}]`, parseErr: "value: required"},
		{name: "no from", patch: `[{"op":"copy","path":"/x"}]`, parseErr: "from: required"},
		{name: "relative pointer", patch: `[{"op":"remove","path":"x"}]`, parseErr: "must start with /"},
		{name: "bad escape", patch: `[{"op":"remove","path":"/a~2"}]`, parseErr: "bad escape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ops, err := parseJSONPatch([]byte(c.patch))
			if c.parseErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.parseErr) {
					t.Fatalf("parse error %v, want one mentioning %q", err, c.parseErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := applyJSONPatch([]byte(doc), ops)
			if c.applyErr != "" {
				var pe *patchError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.applyErr) {
					t.Fatalf("apply error %v, want a patchError mentioning %q", err, c.applyErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, out, c.want)
		})
	}
}

// TestMergePatch: RFC 7386's examples.
func TestMergePatch(t *testing.T) {
	cases := []struct{ doc, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, c := range cases {
		out, err := applyMergePatch([]byte(c.doc), []byte(c.patch))
		if err != nil {
			t.Fatalf("%s + %s: %v", c.doc, c.patch, err)
		}
		jsonEqual(t, out, c.want)
	}
}

// TestJSONPatchGrowthBound: copy operations that double the document each
// time stop at maxPatchedBytes instead of exhausting memory.
func TestJSONPatchGrowthBound(t *testing.T) {
	var b strings.Builder
	b.WriteString(`[{"op":"add","path":"/a","value":{"x":"` + strings.Repeat("x", 1000) + `"}}`)
	for i := range 100 {
		fmt.Fprintf(&b, `,{"op":"copy","from":"/a","path":"/a/c%d"}`, i)
	}
	b.WriteString("]")
	ops, err := parseJSONPatch([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = applyJSONPatch([]byte(`{}`), ops)
	var pe *patchError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "would exceed") {
		t.Fatalf("error %v, want the size bound", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}
