package store

import (
	"fmt"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func BenchmarkApplyCreate(b *testing.B) {
	s := New(Config{})
	w, err := s.Watch("", "", 0, Selector{}) // one idle watcher, drained below
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	pods := make([]*api.Pod, b.N)
	for i := range pods {
		pods[i] = pod("default", fmt.Sprint("p", i), fmt.Sprint("n", i%100), map[string]string{"app": "web"})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if r := s.Apply([]Op{create(pods[i])}); r[0].Err != nil {
			b.Fatal(r[0].Err)
		}
		select {
		case <-w.Events():
		default:
		}
	}
}

// BenchmarkListByNode lists the pods of one node while the total grows
// tenfold; every node holds the same number of pods, so with the index the
// cost stays flat. The scan variant (a label selector on the same data) shows
// what the index saves.
func BenchmarkListByNode(b *testing.B) {
	const podsPerNode = 20
	for _, total := range []int{1000, 10000} {
		s := New(Config{})
		var ops []Op
		for i := range total {
			n := fmt.Sprint("n", i/podsPerNode)
			ops = append(ops, create(pod(fmt.Sprint("ns", i%10), fmt.Sprint("p", i), n, map[string]string{"node": n})))
		}
		mustApply(b, s, ops...)
		byField := Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: "n7"}}}
		byLabel := Selector{Labels: api.SelectorFromSet(map[string]string{"node": "n7"})}
		for _, c := range []struct {
			name string
			sel  Selector
		}{{"index", byField}, {"scan", byLabel}} {
			b.Run(fmt.Sprintf("pods=%d/%s", total, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					objs, _, err := s.List("Pod", "", c.sel)
					if err != nil || len(objs) != podsPerNode {
						b.Fatalf("%d pods, %v", len(objs), err)
					}
				}
			})
		}
	}
}

// BenchmarkListAll lists every pod of 10,000, in one namespace and in all
// of them, without a selector: what a controller's pass over a kind costs.
func BenchmarkListAll(b *testing.B) {
	s := New(Config{})
	var ops []Op
	for i := range 10000 {
		ops = append(ops, create(pod(fmt.Sprint("ns", i%2), fmt.Sprint("p", i), "n1", nil)))
	}
	mustApply(b, s, ops...)
	for _, ns := range []string{"ns0", ""} {
		b.Run("namespace="+ns, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, _, err := s.List("Pod", ns, Selector{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A list without a selector makes one slice, to measure: no probe object
// for a field check, no slice grown by doubling.
func TestListWithoutSelectorAllocatesOnce(t *testing.T) {
	s := New(Config{})
	var ops []Op
	for i := range 1000 {
		ops = append(ops, create(pod(fmt.Sprint("ns", i%2), fmt.Sprint("p", i), "n1", nil)))
	}
	mustApply(t, s, ops...)
	for _, ns := range []string{"ns0", ""} {
		var objs []api.Object
		allocs := testing.AllocsPerRun(20, func() {
			objs, _, _ = s.List("Pod", ns, Selector{})
		})
		want := 500
		if ns == "" {
			want = 1000
		}
		if len(objs) != want || cap(objs) != want || allocs != 1 {
			t.Errorf("List(%q): %d objects in a slice of %d, %.0f allocations; want %d, %d, 1", ns, len(objs), cap(objs), allocs, want, want)
		}
	}
}
