package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
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

// runningPod is a pod as the ReplicaSet controller writes it and a node
// reports it Running: the shape most of the store's writes have at scale.
const runningPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d4b9c-x2x9q","generateName":"web-7d4b9c-","namespace":"default",` +
	`"uid":"5f1c7a0e-1b2c-4d3e-8f90-a1b2c3d4e5f6","resourceVersion":"123456","creationTimestamp":"2026-12-01T10:00:00Z",` +
	`"labels":{"app":"web","pod-template-hash":"7d4b9c"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c","uid":"0a1b2c3d-4e5f-6789-abcd-ef0123456789","controller":true,"blockOwnerDeletion":true}]},` +
	`"spec":{"containers":[{"name":"web","image":"registry.local/web:1.0","imagePullPolicy":"IfNotPresent","ports":[{"containerPort":8080,"protocol":"TCP"}],` +
	`"resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"nodeName":"hollow-042","schedulerName":"default-scheduler","dnsPolicy":"ClusterFirst"},` +
	`"status":{"phase":"Running","conditions":[{"type":"PodScheduled","status":"True","lastTransitionTime":"2026-12-01T10:00:00Z"},{"type":"Initialized","status":"True","lastTransitionTime":"2026-12-01T10:00:00Z"},` +
	`{"type":"ContainersReady","status":"True","lastTransitionTime":"2026-12-01T10:00:01Z"},{"type":"Ready","status":"True","lastTransitionTime":"2026-12-01T10:00:01Z"}],` +
	`"hostIP":"10.0.0.42","podIP":"10.244.42.17","startTime":"2026-12-01T10:00:00Z","containerStatuses":[{"name":"web","state":{"running":{"startedAt":"2026-12-01T10:00:01Z"}},` +
	`"ready":true,"started":true,"restartCount":0,"image":"registry.local/web:1.0","imageID":"sha256:0123456789abcdef","containerID":"containerd://abcdef0123456789"}]}}`

func decodeRunningPod(b *testing.B) *api.Pod {
	var p api.Pod
	if err := json.Unmarshal([]byte(runningPod), &p); err != nil {
		b.Fatal(err)
	}
	return &p
}

// BenchmarkInternPod and BenchmarkObjectSizePod are the reflective walks
// every object entering the store takes on every voter.
func BenchmarkInternPod(b *testing.B) {
	pods := make([]*api.Pod, b.N)
	for i := range pods {
		pods[i] = decodeRunningPod(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		Intern(pods[i])
	}
}

func BenchmarkObjectSizePod(b *testing.B) {
	p := decodeRunningPod(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if objectSize(p) < 1000 {
			b.Fatal("a pod of under 1,000 bytes")
		}
	}
}

// BenchmarkSnapshot writes a snapshot of 10,000 one-KiB ConfigMaps and
// 2,000 pods; "encoding-json" writes the same lines with encoding/json, as
// the store did before, for the ratio in the same run.
func BenchmarkSnapshot(b *testing.B) {
	s := New(Config{})
	for i := range 10000 {
		if r := s.Apply([]Op{create(bigConfigMap(fmt.Sprint("cm", i), i, 1024))}); r[0].Err != nil {
			b.Fatal(r[0].Err)
		}
	}
	for i := range 2000 {
		if r := s.Apply([]Op{create(pod("default", fmt.Sprint("p", i), fmt.Sprint("n", i%100), map[string]string{"app": "web"}))}); r[0].Err != nil {
			b.Fatal(r[0].Err)
		}
	}
	f := s.Capture()
	size := countingWriter{w: io.Discard}
	if _, err := f.WriteTo(&size); err != nil {
		b.Fatal(err)
	}
	b.Run("store", func(b *testing.B) {
		b.SetBytes(size.n)
		for b.Loop() {
			if _, err := f.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(size.n)
		for b.Loop() {
			bw := bufio.NewWriter(io.Discard)
			enc := json.NewEncoder(bw)
			enc.SetEscapeHTML(false)
			enc.Encode(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Revision: f.rev})
			for _, o := range f.objs {
				if err := enc.Encode(o); err != nil {
					b.Fatal(err)
				}
			}
			enc.Encode(snapshotTrailer{End: true, Count: len(f.objs), Revision: f.rev})
			bw.Flush()
		}
	})
}
