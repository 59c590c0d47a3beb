package events

import (
	"fmt"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// BenchmarkEventRepeat is the cost to the caller of recording an event
// that is already queued (a crash loop): a hash and a map lookup.
func BenchmarkEventRepeat(b *testing.B) {
	r, _, _ := newTest(b, nil)
	em := r.For("kubelet")
	b.ReportAllocs()
	for b.Loop() {
		em.Event(pod, api.EventTypeWarning, "BackOff", "Back-off restarting failed container app")
	}
}

// BenchmarkEventDistinct records events about ever new objects into a
// full queue: each is dropped and counted.
func BenchmarkEventDistinct(b *testing.B) {
	r, _, _ := newTest(b, nil)
	em := r.For("kubelet")
	refs := make([]api.ObjectReference, 1024)
	for i := range refs {
		refs[i] = api.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("p%d", i)}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		em.Event(refs[i%len(refs)], api.EventTypeNormal, "Started", "Started container app")
		i++
	}
}
