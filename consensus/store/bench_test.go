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
