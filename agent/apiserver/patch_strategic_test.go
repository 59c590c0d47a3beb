package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestStrategicMerge: lists merged by their merge keys, directives, and
// the plain merge everywhere else.
func TestStrategicMerge(t *testing.T) {
	const pod = `{"metadata":{"name":"p","labels":{"a":"1"},"finalizers":["x"]},
	  "spec":{"containers":[
	    {"name":"web","image":"nginx:1","ports":[{"containerPort":80,"name":"http"}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
	     "volumeMounts":[{"name":"v","mountPath":"/data"}]},
	    {"name":"side","image":"busybox","args":["a","b"]}],
	   "volumes":[{"name":"v","emptyDir":{}}],
	   "tolerations":[{"key":"k","operator":"Exists"}]},
	  "status":{"conditions":[{"type":"Ready","status":"False"},{"type":"PodScheduled","status":"True"}]}}`
	cases := []struct {
		name, patch, want, err string
	}{
		{name: "container image by name",
			patch: `{"spec":{"containers":[{"name":"side","image":"busybox:2"}]}}`,
			want: `{"metadata":{"name":"p","labels":{"a":"1"},"finalizers":["x"]},
	  "spec":{"containers":[
	    {"name":"web","image":"nginx:1","ports":[{"containerPort":80,"name":"http"}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
	     "volumeMounts":[{"name":"v","mountPath":"/data"}]},
	    {"name":"side","image":"busybox:2","args":["a","b"]}],
	   "volumes":[{"name":"v","emptyDir":{}}],
	   "tolerations":[{"key":"k","operator":"Exists"}]},
	  "status":{"conditions":[{"type":"Ready","status":"False"},{"type":"PodScheduled","status":"True"}]}}`},
		{name: "nested: env, ports, mounts; new container appended; plain list replaced",
			patch: `{"spec":{"containers":[{"name":"web","env":[{"name":"B","value":"3"},{"name":"C","value":"4"},{"name":"A","$patch":"delete"}],
			  "ports":[{"containerPort":443}],"volumeMounts":[{"mountPath":"/data","readOnly":true}]},{"name":"new","image":"x"}],
			  "tolerations":[{"key":"z","operator":"Exists"}]}}`,
			want: `{"metadata":{"name":"p","labels":{"a":"1"},"finalizers":["x"]},
	  "spec":{"containers":[
	    {"name":"web","image":"nginx:1","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],"env":[{"name":"B","value":"3"},{"name":"C","value":"4"}],
	     "volumeMounts":[{"name":"v","mountPath":"/data","readOnly":true}]},
	    {"name":"side","image":"busybox","args":["a","b"]},{"name":"new","image":"x"}],
	   "volumes":[{"name":"v","emptyDir":{}}],
	   "tolerations":[{"key":"z","operator":"Exists"}]},
	  "status":{"conditions":[{"type":"Ready","status":"False"},{"type":"PodScheduled","status":"True"}]}}`},
		{name: "delete a container, replace volumes, condition by type, finalizers as a set, null removes",
			patch: `{"metadata":{"labels":{"a":null,"b":"2"},"finalizers":["y","x"]},
			  "spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":[{"name":"side","$patch":"delete"}],
			  "volumes":[{"$patch":"replace"},{"name":"w","emptyDir":{}}]},
			  "status":{"conditions":[{"type":"Ready","status":"True"}]}}`,
			want: `{"metadata":{"name":"p","labels":{"b":"2"},"finalizers":["x","y"]},
	  "spec":{"containers":[
	    {"name":"web","image":"nginx:1","ports":[{"containerPort":80,"name":"http"}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
	     "volumeMounts":[{"name":"v","mountPath":"/data"}]}],
	   "volumes":[{"name":"w","emptyDir":{}}],
	   "tolerations":[{"key":"k","operator":"Exists"}]},
	  "status":{"conditions":[{"type":"Ready","status":"True"},{"type":"PodScheduled","status":"True"}]}}`},
		{name: "map replace and delete, retainKeys, deleteFromPrimitiveList",
			patch: `{"metadata":{"labels":{"$patch":"replace","c":"3"},"$deleteFromPrimitiveList/finalizers":["x"]},
			  "spec":{"$retainKeys":["containers"]},"status":{"$patch":"delete"}}`,
			want: `{"metadata":{"name":"p","labels":{"c":"3"},"finalizers":null},
	  "spec":{"containers":[
	    {"name":"web","image":"nginx:1","ports":[{"containerPort":80,"name":"http"}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
	     "volumeMounts":[{"name":"v","mountPath":"/data"}]},
	    {"name":"side","image":"busybox","args":["a","b"]}]}}`},
		{name: "element without its merge key", patch: `{"spec":{"containers":[{"image":"x"}]}}`, err: "spec.containers[0]: name: required"},
		{name: "element not an object", patch: `{"spec":{"containers":["x"]}}`, err: "must be an object"},
		{name: "bad directive", patch: `{"spec":{"$patch":"frob"}}`, err: "$patch"},
		{name: "bad retainKeys", patch: `{"spec":{"$retainKeys":"x"}}`, err: "$retainKeys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := applyStrategicPatch([]byte(pod), []byte(c.patch))
			if c.err != "" {
				var pe *patchError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want a patchError mentioning %q", err, c.err)
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

// TestApplyPatchFor: the patch of a second apply removes what the first
// applied and the second leaves out, and nothing else.
func TestApplyPatchFor(t *testing.T) {
	prev := `{"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"replicas":2,"template":{"spec":{"containers":[
	  {"name":"web","image":"nginx:1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},{"name":"side","image":"busybox"}]}}}}`
	cur := `{"metadata":{"labels":{"a":"1"}},"spec":{"template":{"spec":{"containers":[
	  {"name":"web","image":"nginx:2","env":[{"name":"A","value":"1"}]}]}}}}`
	live := `{"metadata":{"name":"d","labels":{"a":"1","b":"2","other":"kept"}},"spec":{"replicas":2,"paused":true,"template":{"spec":{"containers":[
	  {"name":"web","image":"nginx:1","imagePullPolicy":"IfNotPresent","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},{"name":"side","image":"busybox"}]}}}}`
	var p, c map[string]any
	mustUnmarshal(t, prev, &p)
	mustUnmarshal(t, cur, &c)
	patch := mustJSON(t, applyPatchFor(p, c, nil))
	out, err := applyStrategicPatch([]byte(live), []byte(patch))
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, `{"metadata":{"name":"d","labels":{"a":"1","other":"kept"}},"spec":{"paused":true,"template":{"spec":{"containers":[
	  {"name":"web","image":"nginx:2","imagePullPolicy":"IfNotPresent","env":[{"name":"A","value":"1"}]}]}}}}`)
}

func mustUnmarshal(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
}

// TestStrategicMergeLongLists: merging by key is linear in the lists'
// lengths (it was quadratic: 4e8 comparisons for 20,000 elements a side).
func TestStrategicMergeLongLists(t *testing.T) {
	const n = 20000
	var doc, patch strings.Builder
	doc.WriteString(`{"spec":{"containers":[{"name":"c","env":[`)
	patch.WriteString(`{"spec":{"containers":[{"name":"c","env":[`)
	for i := range n {
		if i > 0 {
			doc.WriteString(",")
			patch.WriteString(",")
		}
		fmt.Fprintf(&doc, `{"name":"v%d","value":"a"}`, i)
		fmt.Fprintf(&patch, `{"name":"v%d","value":"b"}`, n-1-i)
	}
	doc.WriteString(`]}]}}`)
	patch.WriteString(`]}]}}`)
	start := time.Now()
	out, err := applyStrategicPatch([]byte(doc.String()), []byte(patch.String()))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("merging %d elements took %v", n, d)
	}
	if strings.Count(string(out), `"value":"b"`) != n || strings.Contains(string(out), `"value":"a"`) {
		t.Errorf("not every element was merged")
	}
}
