package store

import (
	"fmt"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// BenchmarkWatchFanout is the store's share of the watch fan-out (issue
// 14): one pod write while W watchers, each of the pods of one node
// (fieldSelector spec.nodeName, as every agent watches its own pods), are
// registered; exactly one of them receives the event. The cost per write
// should not grow with W, since each write concerns one node.
func BenchmarkWatchFanout(b *testing.B) {
	for _, w := range []int{1, 100, 1000, 3000} {
		b.Run(fmt.Sprintf("watchers=%d", w), func(b *testing.B) {
			s := New(Config{})
			ws := make([]*Watcher, w)
			for i := range ws {
				sel := Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: fmt.Sprint("n", i)}}}
				var err error
				if ws[i], err = s.Watch("Pod", "", 0, sel); err != nil {
					b.Fatal(err)
				}
			}
			pods := make([]*api.Pod, b.N)
			for i := range pods {
				pods[i] = pod("default", fmt.Sprint("p", i), fmt.Sprint("n", i%w), nil)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if r := s.Apply([]Op{create(pods[i])}); r[0].Err != nil {
					b.Fatal(r[0].Err)
				}
				select {
				case <-ws[i%w].Events():
				default:
					b.Fatalf("watcher of n%d got no event", i%w)
				}
			}
		})
	}
}
