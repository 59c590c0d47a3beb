package apiserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

var fuzzMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// FuzzRequestAttributes checks that RequestAttributes never panics, that it
// reads every path the Server serves as the Server resolves it (a rule
// about secrets must be about the secrets the Server would touch), and
// that the read-only role and agent certificates are never allowed a write
// outside their rules, whatever the path.
func FuzzRequestAttributes(f *testing.F) {
	for _, s := range []string{
		"/api/v1/namespaces/default/pods/web/status",
		"/api/v1/namespaces/default/secrets",
		"/api/v1/namespaces/default/status",
		"/api/v1/namespaces/x",
		"/apis/apps/v1/namespaces/a/deployments/d/scale",
		"/api/v1/nodes/n1",
		"/api/v1/namespaces//pods",
		"/api/v1/",
		"/apis/apps",
		"/v1/cluster/raft/voters/n1",
		"/debug/pprof/heap",
	} {
		f.Add(uint8(0), s, "watch=true")
		f.Add(uint8(3), s, "")
	}
	f.Fuzz(func(t *testing.T, m uint8, path, query string) {
		r := &http.Request{
			Method: fuzzMethods[int(m)%len(fuzzMethods)],
			URL:    &url.URL{Path: path, RawQuery: query},
			Header: http.Header{},
		}
		a := RequestAttributes(r)
		clean := isCleanPath(r.URL)
		if want := r.URL.EscapedPath(); !clean && (a.Path != want || a.ResourceRequest) {
			t.Fatalf("unclean %q: %+v, want a non-resource request of %q", path, a, want)
		}
		if clean && a.Path != path {
			t.Fatalf("Path %q, want %q", a.Path, path)
		}
		if a.ResourceRequest && a.Resource == "" && !strings.Contains(path, "//") && !strings.HasSuffix(path, "/") {
			t.Fatalf("%s: a resource request without a resource: %+v", path, a)
		}
		// Agreement with the Server's resolver, for the clean paths that
		// ServeMux passes on.
		var group, version, rest string
		served := false
		if tail, ok := strings.CutPrefix(path, "/api/v1/"); ok && clean {
			version, rest, served = "v1", tail, true
		} else if tail, ok := strings.CutPrefix(path, "/apis/"); ok && clean {
			segs := strings.SplitN(tail, "/", 3)
			if len(segs) == 3 && segs[0] != "" && segs[1] != "" {
				group, version, rest, served = segs[0], segs[1], segs[2], true
			}
		}
		if served {
			if tg, serr := resolve(group, version, rest); serr == nil {
				sub := ""
				if tg.status {
					sub = "status"
				}
				if !a.ResourceRequest || a.Group != tg.info.Group || a.Resource != tg.info.Resource ||
					a.Namespace != tg.namespace || a.Name != tg.name || a.Subresource != sub {
					t.Fatalf("%s: attributes %+v, but the Server serves %s %q/%q status=%v",
						path, a, tg.info.Resource, tg.namespace, tg.name, tg.status)
				}
			}
		}
		// The read-only role reads only, and never secrets nor exec.
		if Authorize(Identity{User: "u", Role: RoleReadOnly}, a) == nil {
			if r.Method != "GET" && r.Method != "HEAD" {
				t.Fatalf("read-only may %s %s", r.Method, path)
			}
			if a.ResourceRequest && (a.Group == "" && a.Resource == "secrets" || a.Subresource == "exec") {
				t.Fatalf("read-only may %s %s", a.Verb, path)
			}
		}
		// An agent writes only Nodes, pods and its own endpoints.
		if Authorize(Identity{Node: "n1"}, a) == nil && r.Method != "GET" && r.Method != "HEAD" {
			ok := a.ResourceRequest && a.Group == "" && (a.Resource == "nodes" || a.Resource == "pods") ||
				!a.ResourceRequest && strings.HasPrefix(path, "/v1/cluster/")
			if !ok {
				t.Fatalf("agent may %s %s (%+v)", r.Method, path, a)
			}
		}
	})
}
