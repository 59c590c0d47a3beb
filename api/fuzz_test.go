package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeManifests checks three properties of arbitrary input:
// decoding never panics; every object that decodes encodes (as YAML and as
// JSON) to something that decodes to the same object; and defaulting and
// validating a decoded object never panic. "The same" is compared through
// the JSON encoding, which is the canonical form (an empty map and a nil
// one, or a time with and without sub-second digits, encode alike).
func FuzzDecodeManifests(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(deploymentYAML))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"YWJj"}}`))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: http}]}\n"))
	f.Add([]byte("---\n--- # c\n...\n"))
	f.Add([]byte(`{"metadata":{"name":"a","Name":"b"},"data":{"x":"1"}}`))
	f.Add([]byte(`{"metadata":{"name":"a","name":"b"}}`))
	f.Add([]byte(`{"kind":"ConfigMap","metadata":{"name":"a","labels":{"k\u0041":"v"}},"data":{"k":"v"}}`))
	f.Add([]byte(`{"spec":{"replicas":3,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastPathAgrees(t, data)
		objs, err := DecodeManifests(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			canon := mustJSON(t, o)
			for name, enc := range map[string]func(Object) ([]byte, error){"yaml": EncodeYAML, "json": EncodeJSON} {
				b, err := enc(o)
				if err != nil {
					t.Fatalf("%s encoding of a decoded object: %v", name, err)
				}
				back, err := DecodeObject(b)
				if err != nil {
					t.Fatalf("decoding our own %s: %v\n%s", name, err, b)
				}
				if got := mustJSON(t, back); got != canon {
					t.Fatalf("%s round trip changed the object:\n got %s\nwant %s", name, got, canon)
				}
			}
			d := o.DeepCopyObject()
			SetDefaults(d)
			_ = Validate(o)
			_ = Validate(d)
			_ = ValidateUpdate(d, o)
		}
	})
}

// mustJSON is the canonical form of an object: its JSON after one JSON
// round trip (RoundTrip), because encoding is not canonical by itself:
// an empty non-nil map under an omitzero struct (template metadata with
// labels: {}) shows the struct, the round-tripped nil map does not.
func mustJSON(t *testing.T, o Object) string {
	t.Helper()
	b, err := json.Marshal(RoundTrip(o))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkFastPathAgrees: whatever DecodeInto's fast path accepts, the slow
// path accepts too, with the same result.
func checkFastPathAgrees(t *testing.T, data []byte) {
	for _, kind := range []string{"ConfigMap", "Deployment", "Pod", "Service", "Secret"} {
		info, _ := LookupKind(kind)
		fast := info.New()
		if !fastDecodeJSON(data, fast, info) {
			continue
		}
		g, err := oneDocument(data)
		if err != nil {
			t.Fatalf("%s: the fast path accepted what the slow path rejects: %v", kind, err)
		}
		slow := info.New()
		if _, errs := decodeGeneric(g, slow); errs != nil {
			t.Fatalf("%s: the fast path accepted what the slow path rejects: %v", kind, errs)
		}
		if a, b := mustJSON(t, fast), mustJSON(t, slow); a != b {
			t.Fatalf("%s: the paths disagree:\nfast %s\nslow %s", kind, a, b)
		}
	}
}
