package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeTestdata(t *testing.T) {
	want := map[string][]string{
		"web.yaml":           {"Deployment/web", "Service/web"},
		"db.yaml":            {"Service/db", "StatefulSet/db"},
		"node-exporter.yaml": {"DaemonSet/node-exporter"},
		"config.yaml":        {"ConfigMap/web-config", "Secret/web-db", "Secret/web-tls"},
		"pod.json":           {"Pod/debug"},
		"list.yaml":          {"Namespace/shop", "Node/node-1"},
	}
	for file, names := range want {
		t.Run(file, func(t *testing.T) {
			objs, err := DecodeManifests(readTestdata(t, file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetTypeMeta().Kind+"/"+o.GetObjectMeta().Name)
			}
			if !reflect.DeepEqual(got, names) {
				t.Fatalf("objects = %v, want %v", got, names)
			}
			for _, o := range objs {
				assertRoundTrip(t, o)
			}
			// The whole stream round-trips too.
			y, err := EncodeYAMLDocuments(objs)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeManifests(y)
			if err != nil {
				t.Fatalf("re-decoding the YAML stream: %v\n%s", err, y)
			}
			if !reflect.DeepEqual(again, objs) {
				t.Fatalf("YAML stream round trip changed the objects")
			}
		})
	}
}

// assertRoundTrip checks decode(encode(o)) == o for both encodings.
func assertRoundTrip(t *testing.T, o Object) {
	t.Helper()
	for name, enc := range map[string]func(Object) ([]byte, error){"yaml": EncodeYAML, "json": EncodeJSON} {
		b, err := enc(o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := DecodeObject(b)
		if err != nil {
			t.Fatalf("%s: decoding our own output: %v\n%s", name, err, b)
		}
		if !reflect.DeepEqual(back, o) {
			t.Fatalf("%s round trip of %s/%s differs:\n%s", name, KindOf(o), o.GetObjectMeta().Name, b)
		}
	}
}

// TestDecodeKeepsEveryField compares each YAML document of testdata, as
// generic JSON, with the encoding of the object decoded from it: a field
// the types dropped would show up as a difference.
func TestDecodeKeepsEveryField(t *testing.T) {
	for _, file := range []string{"web.yaml", "db.yaml", "node-exporter.yaml", "config.yaml"} {
		docs, err := splitDocuments(readTestdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range docs {
			if d.generic == nil {
				continue
			}
			obj, errs := decodeGeneric(d.generic, nil)
			if errs != nil {
				t.Fatalf("%s document %d: %v", file, i+1, errs)
			}
			b, err := EncodeJSON(obj)
			if err != nil {
				t.Fatal(err)
			}
			var back any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(&back); err != nil {
				t.Fatal(err)
			}
			in, _ := json.Marshal(d.generic)
			out, _ := json.Marshal(back)
			if !bytes.Equal(in, out) {
				t.Errorf("%s document %d lost or changed fields:\n in: %s\nout: %s", file, i+1, in, out)
			}
		}
	}
}

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`

func TestDecodeUnknownFieldVerbatim(t *testing.T) {
	in := strings.Replace(deploymentYAML, "image: nginx:1.27", "image: nginx:1.27\n        imagePullPolcy: Always", 1)

	_, err := DecodeObject([]byte(in))
	if err == nil || err.Error() != "spec.template.spec.containers[0].imagePullPolcy: unknown field" {
		t.Fatalf("DecodeObject error = %v", err)
	}
	var fe FieldErrors
	if !errors.As(err, &fe) || len(fe) != 1 || fe[0].Type != ErrorUnknown || fe[0].Path != "spec.template.spec.containers[0].imagePullPolcy" {
		t.Fatalf("DecodeObject error is not the expected FieldErrors: %#v", err)
	}

	// In a file, the document number and the object are named first.
	_, err = DecodeManifests([]byte("---\n" + deploymentYAML + "---\n" + in))
	want := `document 2 (Deployment "web"): spec.template.spec.containers[0].imagePullPolcy: unknown field`
	if err == nil || err.Error() != want {
		t.Fatalf("DecodeManifests error = %v\nwant %s", err, want)
	}
	var de *DocumentError
	if !errors.As(err, &de) || de.Index != 2 || !errors.As(err, &fe) {
		t.Fatalf("DecodeManifests error does not unwrap to DocumentError and FieldErrors: %#v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	dep := func(old, new string) string {
		if !strings.Contains(deploymentYAML, old) {
			panic("test bug: " + old)
		}
		return strings.Replace(deploymentYAML, old, new, 1)
	}
	svc := func(ports string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n" + ports
	}
	cases := []struct {
		name, in, want string
	}{
		{"replicas as string", dep("spec:\n  selector", "spec:\n  replicas: \"3\"\n  selector"),
			"spec.replicas: expected integer, got string"},
		{"replicas as float", dep("spec:\n  selector", "spec:\n  replicas: 1.5\n  selector"),
			"spec.replicas: expected integer, got number 1.5"},
		{"replicas overflow", dep("spec:\n  selector", "spec:\n  replicas: 4294967296\n  selector"),
			"spec.replicas: integer 4294967296 out of range for int32"},
		{"field names are case-sensitive", dep("spec:\n  selector", "spec:\n  Replicas: 3\n  selector"),
			"spec.Replicas: unknown field"},
		{"label value not a string", dep("name: web\n", "name: web\n  labels: {version: 2}\n"),
			"metadata.labels[version]: expected string, got number"},
		{"yes is a boolean in YAML", dep("name: web\n", "name: web\n  labels: {enabled: yes}\n"),
			"metadata.labels[enabled]: expected string, got boolean"},
		{"object instead of array", dep("containers:\n      - name: web\n        image: nginx:1.27\n", "containers: {name: web}\n"),
			"spec.template.spec.containers: expected array, got object"},
		{"array instead of object", dep("  selector:\n    matchLabels: {app: web}\n", "  selector: [app]\n"),
			"spec.selector: expected object, got array"},
		{"bad time", dep("name: web\n", "name: web\n  creationTimestamp: yesterday\n"),
			`metadata.creationTimestamp: invalid RFC 3339 time "yesterday"`},
		{"time as number", dep("name: web\n", "name: web\n  creationTimestamp: 5\n"),
			"metadata.creationTimestamp: expected an RFC 3339 time string"},
		{"quantity as boolean", dep("image: nginx:1.27\n", "image: nginx:1.27\n        resources: {limits: {cpu: true}}\n"),
			`spec.template.spec.containers[0].resources.limits[cpu]: expected a quantity such as "500m" or "128Mi"`},
		{"int-or-string as float", dep("spec:\n  selector", "spec:\n  strategy: {rollingUpdate: {maxSurge: 1.5}}\n  selector"),
			"spec.strategy.rollingUpdate.maxSurge: expected an integer or a string"},
		{"several errors, sorted", dep("spec:\n  selector", "spec:\n  zeta: 1\n  paused: \"no\"\n  selector") + "status: {alpha: 1}\n",
			"spec.paused: expected boolean, got string; spec.zeta: unknown field; status.alpha: unknown field"},
		{"kind missing", "apiVersion: v1\nmetadata: {name: x}\n", "kind: Required value"},
		{"kind not a string", "apiVersion: v1\nkind: [Pod]\n", "kind: expected string, got array"},
		{"unknown kind", "apiVersion: v1\nkind: Ingress\nmetadata: {name: x}\n",
			`kind: Unsupported value: "Ingress": supported values: "ConfigMap", "DaemonSet", "Deployment", "Endpoints", "Event", "Namespace", "Node", "Pod", "ReplicaSet", "Secret", "Service", "StatefulSet"`},
		{"apiVersion mismatch", dep("apiVersion: apps/v1", "apiVersion: v1"),
			`apiVersion: Invalid value: "v1": kind Deployment is served as apps/v1`},
		{"apiVersion missing", dep("apiVersion: apps/v1\n", ""),
			"apiVersion: Required value: kind Deployment is served as apps/v1"},
		{"secret data not base64", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: hunter2}\n",
			"data[password]: expected base64-encoded string: illegal base64 data at input byte 4"},
		{"int-or-string port as boolean", svc("  - port: 80\n    targetPort: true\n"),
			"spec.ports[0].targetPort: expected an integer or a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeObject([]byte(tc.in))
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
	// The catalogue of kinds in the unknown-kind error is KindNames.
	if got := len(KindNames()); got != 12 {
		t.Fatalf("the unknown-kind case above lists 12 kinds, KindNames has %d: update the test", got)
	}
}

func TestDecodeNullsAndAbsentFields(t *testing.T) {
	obj, err := DecodeObject([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w","creationTimestamp":null,"labels":null},
		"spec":{"replicas":null,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := obj.(*Deployment)
	if d.Spec.Replicas != nil || d.Labels != nil || !d.CreationTimestamp.IsZero() {
		t.Fatalf("nulls not decoded as zero values: %+v", d)
	}
}

func TestDecodeSyntaxAndLimits(t *testing.T) {
	nested := func(n int) string {
		// A ConfigMap whose data field is wrapped in n-2 arrays: n levels
		// counting the top object and the data object.
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":` +
			strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
	}
	cases := []struct {
		name string
		in   string
		is   error  // errors.Is target, or nil
		text string // substring of the message
	}{
		{"yaml syntax", "apiVersion: v1\nkind: [\n", ErrSyntax, "document 1 (line 1)"},
		{"duplicate yaml key", "apiVersion: v1\nkind: Pod\nkind: Pod\n", ErrSyntax, `"kind" already set`},
		{"duplicate json key", `{"apiVersion":"v1","kind":"Pod","kind":"Pod"}`, ErrSyntax, `duplicate key "kind"`},
		{"truncated json", `{"apiVersion":"v1",`, ErrSyntax, "unexpected EOF"},
		{"document is a list", "- a\n- b\n", ErrSyntax, "expected an object, got array"},
		{"document is a scalar", "---\nhello\n", ErrSyntax, "expected an object, got string"},
		{"too large", "#" + strings.Repeat("x", MaxManifestBytes), ErrTooLarge, ""},
		{"too many documents", strings.Repeat("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n", MaxDocuments+1), ErrTooManyDocuments, ""},
		{"too many json values", strings.Repeat(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}`, MaxDocuments+1), ErrTooManyDocuments, ""},
		{"too deep json", nested(MaxNestingDepth + 1), ErrTooDeep, ""},
		{"too deep yaml", "a: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n", ErrTooDeep, ""},
		{"deeper than yaml allows", "a: " + strings.Repeat("[", 20000) + "\n", ErrSyntax, "max depth"},
		{"at the depth limit", nested(MaxNestingDepth), nil, "data: expected object, got array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeManifests([]byte(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
			if tc.is == nil && (errors.Is(err, ErrTooDeep) || errors.Is(err, ErrSyntax)) {
				t.Fatalf("error %v should be a field error", err)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q does not contain %q", err, tc.text)
			}
		})
	}
	// Exactly at the size limit is fine.
	ok := "# " + strings.Repeat("x", MaxManifestBytes-3) + "\n"
	if objs, err := DecodeManifests([]byte(ok)); err != nil || len(objs) != 0 {
		t.Fatalf("input of exactly MaxManifestBytes: %v, %d objects", err, len(objs))
	}
	// Exactly MaxDocuments documents is fine.
	many := strings.Repeat("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n", MaxDocuments)
	if objs, err := DecodeManifests([]byte(many)); err != nil || len(objs) != MaxDocuments {
		t.Fatalf("MaxDocuments documents: %v, %d objects", err, len(objs))
	}
}

func TestDecodeDocumentSplitting(t *testing.T) {
	in := "# leading comment\r\n" +
		"apiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: a\r\n" +
		"--- # a comment after the marker\n" +
		"\n# only a comment\n" +
		"---\n" +
		"---\n" +
		"--- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n" +
		"...\n" +
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: c\n  labels: {x: \"---\"}\n"
	objs, err := DecodeManifests([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetObjectMeta().Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("names = %v", names)
	}

	// Errors name the document and, for one that does not parse, its line.
	in = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# two\nfoo: [\n"
	_, err = DecodeManifests([]byte(in))
	if err == nil || err.Error() != "document 2 (line 4): malformed manifest: yaml: line 6: did not find expected node content" {
		t.Fatalf("error = %v", err)
	}

	// Errors from several documents are all reported, one per line.
	in = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, x: 1}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\napiVersion: v1\nkind: Nope\n"
	_, err = DecodeManifests([]byte(in))
	want := "document 1 (Namespace \"a\"): metadata.x: unknown field\n" +
		"document 3 (Nope): kind: Unsupported value: \"Nope\": supported values: " + quotedKinds()
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant\n%s", err, want)
	}

	if objs, err := DecodeManifests([]byte("\n# nothing\n---\n")); err != nil || len(objs) != 0 {
		t.Fatalf("comment-only input: %v, %v", objs, err)
	}
}

func quotedKinds() string {
	var q []string
	for _, k := range KindNames() {
		q = append(q, `"`+k+`"`)
	}
	return strings.Join(q, ", ")
}

func TestDecodeJSONStreamAndList(t *testing.T) {
	objs, err := DecodeManifests([]byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}
		{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}`))
	if err != nil || len(objs) != 2 || objs[1].GetObjectMeta().Name != "b" {
		t.Fatalf("JSON stream: %v, %v", objs, err)
	}

	list := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: a}
- apiVersion: v1
  kind: Node
  metadata: {name: n1}
  spec: {podCIRD: 10.0.0.0/24}
`
	_, err = DecodeManifests([]byte(list))
	want := `document 1 items[1] (Node "n1"): spec.podCIRD: unknown field`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
	_, err = DecodeManifests([]byte("apiVersion: v1\nkind: List\nitems: [{kind: List}, 5]\nextra: 1\n"))
	want = `document 1 (List): extra: unknown field; items[0].kind: Invalid value: "List": a List may not hold a List; items[1]: expected object, got number`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
}

func TestDecodeObjectAndInto(t *testing.T) {
	if _, err := DecodeObject([]byte("# nothing\n")); !errors.Is(err, ErrNoObject) {
		t.Fatalf("empty: %v", err)
	}
	two := "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n"
	if _, err := DecodeObject([]byte(two)); err == nil || !strings.Contains(err.Error(), "expected one object, found 2") {
		t.Fatalf("two documents: %v", err)
	}

	// DecodeInto: apiVersion and kind may be left out, and are filled in.
	d := &Deployment{Spec: DeploymentSpec{Paused: true}}
	err := DecodeInto([]byte(`{"metadata":{"name":"w"},"spec":{"replicas":2}}`), d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || d.Name != "w" || *d.Spec.Replicas != 2 || d.Spec.Paused {
		t.Fatalf("DecodeInto gave %+v", d)
	}
	cases := []struct{ in, want string }{
		{`{"kind":"Pod","metadata":{"name":"w"}}`, `kind: Invalid value: "Pod": must be Deployment`},
		{`{"apiVersion":"v1","metadata":{"name":"w"}}`, `apiVersion: Invalid value: "v1": kind Deployment is served as apps/v1`},
		{`{"metadata":{"name":"w","nmae":"x"}}`, `metadata.nmae: unknown field`},
	}
	for _, tc := range cases {
		err := DecodeInto([]byte(tc.in), &Deployment{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("DecodeInto(%s) = %v, want %s", tc.in, err, tc.want)
		}
	}
}

func TestDecodeErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n")
	for i := 0; i < MaxFieldErrors+7; i++ {
		b.WriteString("  bogus" + string(rune('a'+i)) + ": 1\n")
	}
	_, err := DecodeObject([]byte(b.String()))
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error %v", err)
	}
	if len(fe) != MaxFieldErrors+1 || fe[MaxFieldErrors].Error() != "and 7 more errors" || fe[0].Path != "metadata.bogusa" {
		t.Fatalf("capped errors = %v", fe)
	}
}

func TestEncodeFillsTypeMeta(t *testing.T) {
	ns := &Namespace{ObjectMeta: ObjectMeta{Name: "a"}}
	y, err := EncodeYAML(ns)
	if err != nil {
		t.Fatal(err)
	}
	if string(y) != "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n" {
		t.Fatalf("YAML:\n%s", y)
	}
	if ns.Kind != "" {
		t.Fatal("EncodeYAML changed its argument")
	}
	j, err := EncodeJSON(ns)
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Namespace\",\n  \"metadata\": {\n    \"name\": \"a\"\n  }\n}\n" {
		t.Fatalf("JSON:\n%s", j)
	}
}
