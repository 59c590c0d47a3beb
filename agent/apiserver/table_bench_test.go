package apiserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// benchPods is how many pods BenchmarkListPods lists (issue 13's figure).
const benchPods = 10000

// seedPods stores n pods in namespace default, in batches.
func seedPods(b *testing.B, e *env, n int) {
	b.Helper()
	var ops []store.Op
	flush := func() {
		for _, res := range e.st.Apply(ops) {
			if res.Err != nil {
				b.Fatal(res.Err)
			}
		}
		ops = ops[:0]
	}
	for i := range n {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("web-%05d", i), Namespace: "default", Labels: map[string]string{"app": "web"}}}
		p.Spec.Containers = []api.Container{{Name: "web", Image: "nginx:1.27", Ports: []api.ContainerPort{{ContainerPort: 80}}}}
		p.Spec.NodeName = fmt.Sprintf("n%d", i%50)
		p.Status.Phase = api.PodRunning
		p.Status.PodIP = fmt.Sprintf("10.1.%d.%d", i/250, i%250)
		p.Status.ContainerStatuses = []api.ContainerStatus{{Name: "web", Ready: true}}
		api.SetTypeMeta(p)
		api.SetDefaults(p)
		api.PrepareCreate(p, testNow, api.NewUID())
		ops = append(ops, store.Op{Type: store.OpCreate, Object: p})
		if len(ops) == 500 {
			flush()
		}
	}
	flush()
}

// BenchmarkListPods lists 10,000 pods through the Server: as JSON (what
// clients decode), as a Table with the default PartialObjectMetadata rows
// (what kubectl get asks), as a Table without objects, and shoal get's
// path (JSON list decoded by api.Client, rows rendered by the client).
//
//	go test -run '^$' -bench ListPods -benchtime 10x ./agent/apiserver
func BenchmarkListPods(b *testing.B) {
	e := newEnv(b)
	seedPods(b, e, benchPods)
	fetch := func(b *testing.B, path, accept string) {
		var n int64
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("HTTP %d, %v", resp.StatusCode, err)
			}
		}
		b.ReportMetric(float64(n), "bytes/list")
	}
	const pods = "/api/v1/namespaces/default/pods"
	b.Run("json", func(b *testing.B) { fetch(b, pods, "application/json") })
	b.Run("table", func(b *testing.B) { fetch(b, pods, tableAccept) })
	b.Run("table-no-object", func(b *testing.B) { fetch(b, pods+"?includeObject=None", tableAccept) })
	b.Run("shoal-get", func(b *testing.B) {
		c := api.NewClient(e.ts.URL)
		for b.Loop() {
			objs, _, err := c.List(context.Background(), "Pod", "default", api.ListOptions{})
			if err != nil || len(objs) != benchPods {
				b.Fatalf("%d pods, %v", len(objs), err)
			}
			_, row := api.TableColumns("Pod", false, api.TableEnv{Now: time.Now()})
			for _, o := range objs {
				row(o)
			}
		}
	})
}
