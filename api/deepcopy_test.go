package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// fillValue sets every field reachable from v (settable) to a value made
// from seed: strings, numbers and times differ by seed, pointers point to
// filled values, slices and maps get two filled entries. depth bounds
// recursive types.
func fillValue(v reflect.Value, seed, depth int) {
	if depth > 8 {
		return
	}
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Date(2026, 1, 1, 0, 0, seed, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", seed))
	case reflect.Bool:
		v.SetBool(seed%2 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(seed) + 0.5)
	case reflect.Pointer:
		n := reflect.New(v.Type().Elem())
		fillValue(n.Elem(), seed, depth+1)
		v.Set(n)
	case reflect.Slice:
		n := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillValue(n.Index(i), seed+i, depth+1)
		}
		v.Set(n)
	case reflect.Map:
		n := reflect.MakeMap(v.Type())
		for i := range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fillValue(k, seed+i, depth+1)
			fillValue(e, seed+i, depth+1)
			n.SetMapIndex(k, e)
		}
		v.Set(n)
	case reflect.Array:
		for i := range v.Len() {
			fillValue(v.Index(i), seed+i, depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(v.Field(i), seed+i, depth+1)
			}
		}
	}
}

// mutateInPlace changes every value reachable from v without replacing a
// pointer, slice or map: what it changes is what a shallow copy would
// share with the original.
func mutateInPlace(v reflect.Value, seed int) {
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Date(2030, 1, 1, 0, 0, seed, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("changed%d", seed))
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1000)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1000)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1000)
	case reflect.Pointer:
		if !v.IsNil() {
			mutateInPlace(v.Elem(), seed)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			mutateInPlace(v.Index(i), seed+i)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			mutateInPlace(e, seed)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				mutateInPlace(v.Field(i), seed+i)
			}
		}
	}
}

// Every served kind is copied by reflection, the copy encodes exactly as
// the original, and changing everything in the copy changes nothing in the
// original (nothing is shared).
func TestDeepCopyKindsUseReflection(t *testing.T) {
	for _, k := range Kinds() {
		t.Run(k.Kind, func(t *testing.T) {
			orig := k.New()
			typ := reflect.TypeOf(orig).Elem()
			if p := planFor(typ); !p.ok || !p.refs {
				t.Fatalf("%v: plan ok=%v refs=%v, want a reflection copy of a type with references", typ, p.ok, p.refs)
			}
			fillValue(reflect.ValueOf(orig).Elem(), 1, 0)
			before, err := json.Marshal(orig)
			if err != nil {
				t.Fatal(err)
			}
			cp := orig.DeepCopyObject()
			if reflect.ValueOf(cp).Pointer() == reflect.ValueOf(orig).Pointer() {
				t.Fatal("the copy is the original")
			}
			got, err := json.Marshal(cp)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(before) {
				t.Fatalf("copy encodes differently:\n got %s\nwant %s", got, before)
			}
			if !reflect.DeepEqual(cp, orig) {
				t.Fatal("copy is not deeply equal to the original")
			}
			mutateInPlace(reflect.ValueOf(cp).Elem(), 7)
			after, _ := json.Marshal(orig)
			if string(after) != string(before) {
				t.Fatalf("changing the copy changed the original:\n now %s\nwas %s", after, before)
			}
			mutated, _ := json.Marshal(cp)
			if string(mutated) == string(before) {
				t.Fatal("mutateInPlace changed nothing: the test checks nothing")
			}
		})
	}
}

type copyRecursive struct {
	Name string
	Next *copyRecursive
	Any  any
	Arr  [2][]int
	Byte map[string][]byte
}

type copyHidden struct {
	Name   string `json:"name"`
	hidden []string
}

func TestDeepCopyShapes(t *testing.T) {
	in := &copyRecursive{Name: "a", Next: &copyRecursive{Name: "b", Any: []string{"x"}},
		Any: map[string]any{"k": []int{1}}, Arr: [2][]int{{1}, {2}}, Byte: map[string][]byte{"b": []byte("v")}}
	out := deepCopy(in)
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("copy %+v differs from %+v", out, in)
	}
	out.Next.Name = "changed"
	out.Next.Any.([]string)[0] = "changed"
	out.Any.(map[string]any)["k"].([]int)[0] = 9
	out.Arr[1][0] = 9
	out.Byte["b"][0] = 'X'
	if in.Next.Name != "b" || in.Next.Any.([]string)[0] != "x" || in.Any.(map[string]any)["k"].([]int)[0] != 1 ||
		in.Arr[1][0] != 2 || string(in.Byte["b"]) != "v" {
		t.Fatalf("changing the copy changed the original: %+v", in)
	}
	if deepCopy[copyRecursive](nil) != nil {
		t.Fatal("a nil pointer's copy is not nil")
	}

	// An unexported field that holds references cannot be copied by
	// reflection: such a type is copied through JSON, which leaves it out.
	if p := planFor(reflect.TypeFor[copyHidden]()); p.ok {
		t.Fatal("a type with an unexported slice was planned for reflection")
	}
	h := deepCopy(&copyHidden{Name: "n", hidden: []string{"x"}})
	if h.Name != "n" || h.hidden != nil {
		t.Fatalf("JSON copy: %+v", h)
	}
}

// BenchmarkDeepCopyPod compares the reflection copy with the JSON round
// trip it replaced, on a pod as the store holds one.
func BenchmarkDeepCopyPod(b *testing.B) {
	pod := &Pod{}
	fillValue(reflect.ValueOf(pod).Elem(), 1, 5) // depth 5: a pod of usual size, not every optional part
	b.Run("reflect", func(b *testing.B) {
		for range b.N {
			_ = deepCopy(pod)
		}
	})
	b.Run("json", func(b *testing.B) {
		for range b.N {
			_ = jsonCopy(pod)
		}
	})
}
