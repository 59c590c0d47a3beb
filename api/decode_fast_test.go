package api

import (
	"strings"
	"testing"
)

// Inputs the fast path must leave to the slow one, so that their errors
// keep their field paths; and one it must take.
func TestDecodeIntoFastPath(t *testing.T) {
	cm, _ := LookupKind("ConfigMap")
	cases := []struct {
		name, in string
		fast     bool
		wantErr  string
	}{
		{"plain", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":"y"}},"data":{"k":"v"}}`, true, ""},
		{"no type meta", `{"metadata":{"name":"a"}}`, true, ""},
		{"unknown field", `{"metadata":{"name":"a","nmae":"b"}}`, false, "metadata.nmae: unknown field"},
		{"case differs", `{"Metadata":{"name":"a"}}`, false, "Metadata: unknown field"},
		{"duplicate key", `{"metadata":{"name":"a","name":"b"}}`, false, "duplicate"},
		{"wrong kind", `{"kind":"Secret","metadata":{"name":"a"}}`, false, "kind"},
		{"wrong type", `{"metadata":{"name":7}}`, false, "metadata.name"},
		{"two objects", `{"metadata":{"name":"a"}} {"metadata":{"name":"b"}}`, false, "expected one object"},
		{"escaped key", `{"metadata":{"name":"a"},"data":{"k\u0041":"v"}}`, false, ""},
		{"yaml", "metadata:\n  name: a\n", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fastDecodeJSON([]byte(c.in), &ConfigMap{}, cm); got != c.fast {
				t.Errorf("fast path taken = %v, want %v", got, c.fast)
			}
			var obj ConfigMap
			err := DecodeInto([]byte(c.in), &obj)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("DecodeInto: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("DecodeInto error = %v, want it to mention %q", err, c.wantErr)
			case err == nil && (obj.Kind != "ConfigMap" || obj.APIVersion != "v1"):
				t.Errorf("type meta not filled: %+v", obj.TypeMeta)
			}
		})
	}
}

func BenchmarkDecodeIntoConfigMap(b *testing.B) {
	body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bench","labels":{"app":"web"}},"data":{"v":"` + strings.Repeat("x", 1024) + `"}}`)
	for b.Loop() {
		var cm ConfigMap
		if err := DecodeInto(body, &cm); err != nil {
			b.Fatal(err)
		}
	}
}
