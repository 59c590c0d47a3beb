package apiserver

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkWriteDeployment compares one write of a Deployment's replicas
// through the API as a PUT of the whole object, a strategic merge patch,
// a JSON patch and a PATCH of /scale (httptest, store without Raft).
// Run: go test -run XXX -bench BenchmarkWriteDeployment -benchtime=2000x ./agent/apiserver
func BenchmarkWriteDeployment(b *testing.B) {
	e := newEnv(b)
	mustCode(b, e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", "application/yaml", deploymentYAML), 201)
	cases := []struct {
		name, method, path, ctype string
		body                      func(i int) string
	}{
		// A client's read-modify-write: GET, then PUT what it read.
		{"put", http.MethodPut, depPath, "application/json", func(int) string { return string(e.get(depPath).body) }},
		{"strategic", http.MethodPatch, depPath, mediaStrategicPatch, func(i int) string { return fmt.Sprintf(`{"spec":{"replicas":%d}}`, i%50) }},
		{"jsonpatch", http.MethodPatch, depPath, mediaJSONPatch, func(i int) string {
			return fmt.Sprintf(`[{"op":"replace","path":"/spec/replicas","value":%d}]`, i%50)
		}},
		{"scale", http.MethodPatch, depPath + "/scale", mediaMergePatch, func(i int) string { return fmt.Sprintf(`{"spec":{"replicas":%d}}`, i%50) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := range b.N {
				if r := e.request(c.method, c.path, c.ctype, c.body(i)); r.code != 200 {
					b.Fatalf("HTTP %d: %s", r.code, r.body)
				}
			}
		})
	}
}
