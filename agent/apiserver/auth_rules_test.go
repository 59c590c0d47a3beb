package apiserver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// The identities of the rule tables, by short name.
var ruleIdentities = map[string]Identity{
	"admin": {User: "root", Role: RoleAdmin},
	"ro":    {User: "viewer", Role: RoleReadOnly},
	"write": {User: "dev", Role: RoleWrite, Namespaces: []string{"team"}},
	"n1":    {Node: "n1", Voter: true},
	"odd":   {User: "mallory", Role: "owner"}, // a role Shoal does not know
}

func attrsOf(method, target string) Attributes {
	return RequestAttributes(httptest.NewRequest(method, target, nil))
}

// TestAuthorize runs every identity over a table of requests; allow names
// the identities that may do each.
func TestAuthorize(t *testing.T) {
	const (
		pods   = "/api/v1/namespaces/team/pods"
		other  = "/api/v1/namespaces/other/pods"
		nodes  = "/api/v1/nodes"
		deploy = "/apis/apps/v1/namespaces/team/deployments"
	)
	all := []string{"admin", "ro", "write", "n1"}
	cases := []struct {
		method, path string
		allow        []string
	}{
		// Reads of resources: every known role, the agent too.
		{"GET", pods, all},
		{"GET", pods + "?watch=true", all},
		{"GET", "/api/v1/pods", all},
		{"GET", pods + "/web", all},
		{"HEAD", pods + "/web", all},
		{"GET", other + "/web/log", all},
		{"GET", nodes, all},
		{"GET", nodes + "/n2", all},
		{"GET", deploy, all},
		{"GET", "/api/v1/namespaces", all},
		{"GET", "/api/v1/namespaces/team", all},
		// Secrets: admin, write in its namespaces, agents (pods mount them).
		{"GET", "/api/v1/namespaces/team/secrets/s", []string{"admin", "write", "n1"}},
		{"GET", "/api/v1/namespaces/other/secrets/s", []string{"admin", "n1"}},
		{"GET", "/api/v1/secrets?watch=1", []string{"admin", "n1"}},
		{"POST", "/api/v1/namespaces/team/secrets", []string{"admin", "write"}},
		{"DELETE", "/api/v1/namespaces/other/secrets/s", []string{"admin"}},
		// Writes in a namespace.
		{"POST", pods, []string{"admin", "write"}},
		{"PUT", pods + "/web", []string{"admin", "write"}},
		{"PATCH", pods + "/web", []string{"admin", "write"}},
		{"DELETE", pods + "/web", []string{"admin", "write", "n1"}}, // n1: admitNode checks the binding
		{"DELETE", pods, []string{"admin", "write"}},
		{"PUT", pods + "/web/status", []string{"admin", "write", "n1"}},
		{"POST", other, []string{"admin"}},
		{"PUT", other + "/web", []string{"admin"}},
		{"POST", deploy, []string{"admin", "write"}},
		{"PUT", "/apis/apps/v1/namespaces/other/deployments/web/scale", []string{"admin"}},
		{"PUT", deploy + "/web/scale", []string{"admin", "write"}},
		// exec: never read-only.
		{"POST", pods + "/web/exec", []string{"admin", "write"}}, // an agent certificate alone never execs
		{"GET", pods + "/web/exec", []string{"admin", "write"}},
		{"POST", other + "/web/exec", []string{"admin"}},
		// attach and portforward (GET: kubectl's WebSocket upgrades) reach
		// into a pod as exec does.
		{"GET", pods + "/web/attach", []string{"admin", "write"}},
		{"POST", pods + "/web/attach", []string{"admin", "write"}},
		{"GET", other + "/web/attach", []string{"admin"}},
		{"GET", pods + "/web/portforward", []string{"admin", "write"}},
		{"POST", pods + "/web/portforward", []string{"admin", "write"}},
		{"GET", other + "/web/portforward", []string{"admin"}},
		// Cluster-scoped writes.
		{"POST", "/api/v1/namespaces", []string{"admin"}},
		{"DELETE", "/api/v1/namespaces/team", []string{"admin"}},
		{"PUT", "/api/v1/namespaces/team/status", []string{"admin"}},
		{"POST", nodes, []string{"admin", "n1"}}, // n1: admitNode checks the name
		{"PUT", nodes + "/n1", []string{"admin", "n1"}},
		{"PUT", nodes + "/n1/status", []string{"admin", "n1"}},
		{"PATCH", nodes + "/n1/status", []string{"admin", "n1"}},
		{"PUT", nodes + "/n2", []string{"admin"}},
		{"PUT", nodes + "/n2/status", []string{"admin"}},
		{"DELETE", nodes + "/n1", []string{"admin"}},
		// Shoal's own endpoints.
		{"GET", "/v1/cluster/members", all},
		{"GET", "/v1/cluster/raft", all},
		{"HEAD", "/v1/cluster/raft", all},
		{"GET", "/v1/cluster/replica", []string{"admin", "n1"}},
		// Prometheus scrapes with a read-only token or an agent certificate.
		{"GET", "/metrics", all},
		{"HEAD", "/metrics", all},
		{"POST", "/metrics", []string{"admin"}},
		{"GET", "/metrics/x", []string{"admin"}},
		{"POST", "/v1/cluster/promote", []string{"admin", "n1"}},
		{"POST", "/v1/cluster/demote", []string{"admin", "n1"}},
		{"POST", "/v1/cluster/certificate", []string{"admin", "n1"}},
		{"GET", "/v1/cluster/tokens", []string{"admin"}},
		{"POST", "/v1/cluster/tokens/rotate", []string{"admin"}},
		{"POST", "/v1/cluster/tokens/api", []string{"admin"}},
		{"POST", "/v1/cluster/raft/voters", []string{"admin"}},
		{"DELETE", "/v1/cluster/raft/voters/n2", []string{"admin"}},
		{"DELETE", "/v1/cluster/raft/voters/n1", []string{"admin", "n1"}}, // leaving on shutdown
		{"GET", "/v1/cluster/raft/voters", []string{"admin"}},
		{"GET", "/debug/pprof/", []string{"admin"}},
		{"GET", "/debug/pprof/profile?seconds=1", []string{"admin"}},
		{"GET", "/debug/pprof", []string{"admin"}},
		// Discovery.
		{"GET", "/api", all},
		{"GET", "/apis/apps/v1", all},
		{"GET", "/apis/apps", all},
		{"GET", "/openapi/v2", all},
		{"GET", "/openapi/v3", all},
		{"GET", "/openapi/v3/apis/apps/v1?hash=AB", all},
		{"POST", "/openapi/v3/api/v1", []string{"admin"}},
		{"GET", "/openapiv3", []string{"admin"}},
	}
	for _, c := range cases {
		a := attrsOf(c.method, c.path)
		for name, id := range ruleIdentities {
			err := Authorize(id, a)
			want := slices.Contains(c.allow, name)
			if (err == nil) != want {
				t.Errorf("%s %s as %s: err %v, want allowed=%v", c.method, c.path, name, err, want)
				continue
			}
			if err != nil {
				var se *api.StatusError
				if !errors.As(err, &se) || se.Code() != http.StatusForbidden || se.Reason() != ReasonForbidden {
					t.Errorf("%s %s as %s: %v is not a 403 Forbidden Status", c.method, c.path, name, err)
				}
			}
		}
	}
}

// TestAuthorizeReadOnlyRefusesEveryWrite: a read-only token gets 403 on
// every write verb of every kind, collection, object and status alike, and
// on exec; an agent certificate on every write but its own Node, its
// pods' status and deletion, and Events.
func TestAuthorizeReadOnlyRefusesEveryWrite(t *testing.T) {
	ro, node := ruleIdentities["ro"], ruleIdentities["n1"]
	writes := []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	for _, k := range api.Kinds() {
		base := apiPrefix(k.Group, k.Version)
		if k.Namespaced {
			base += "namespaces/team/"
		}
		base += k.Resource
		for _, p := range []string{base, base + "/x", base + "/x/status", base + "/n1", base + "/n1/status"} {
			for _, m := range writes {
				a := attrsOf(m, p)
				if err := Authorize(ro, a); err == nil {
					t.Errorf("read-only may %s %s", m, p)
				}
				nodeMay := k.Kind == "Node" && (p == base && m == http.MethodPost ||
					strings.HasSuffix(p, "/n1") && (m == http.MethodPut || m == http.MethodPatch) ||
					strings.HasSuffix(p, "/n1/status") && (m == http.MethodPut || m == http.MethodPatch))
				nodeMay = nodeMay || k.Kind == "Pod" && (strings.HasSuffix(p, "/status") && (m == http.MethodPut || m == http.MethodPatch) ||
					!strings.HasSuffix(p, "/status") && p != base && m == http.MethodDelete)
				// Events: created in the collection, updated by name;
				// admitNodeEvent checks what they are about.
				nodeMay = nodeMay || k.Kind == "Event" && (p == base && m == http.MethodPost ||
					p != base && !strings.HasSuffix(p, "/status") && (m == http.MethodPut || m == http.MethodPatch))
				if err := Authorize(node, a); (err == nil) != nodeMay {
					t.Errorf("agent n1 %s %s: err %v, want allowed=%v", m, p, err, nodeMay)
				}
			}
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		for _, sub := range []string{"exec", "attach", "portforward"} {
			if err := Authorize(ro, attrsOf(m, "/api/v1/namespaces/team/pods/web/"+sub)); err == nil {
				t.Errorf("read-only may %s %s", m, sub)
			}
		}
	}
}

func TestAuthorizeMessage(t *testing.T) {
	err := Authorize(ruleIdentities["ro"], attrsOf("POST", "/api/v1/namespaces/team/pods"))
	for _, want := range []string{"Forbidden", `user "viewer"`, "read-only", "create pods", `namespace "team"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("message %v does not say %q", err, want)
		}
	}
	err = Authorize(ruleIdentities["n1"], attrsOf("PUT", "/api/v1/nodes/n2"))
	if err == nil || !strings.Contains(err.Error(), `node "n1"`) || !strings.Contains(err.Error(), `update nodes "n2"`) {
		t.Errorf("agent message: %v", err)
	}
	err = Authorize(ruleIdentities["write"], attrsOf("POST", "/api/v1/namespaces/other/pods"))
	if err == nil || !strings.Contains(err.Error(), `"team"`) {
		t.Errorf("write message does not name its namespaces: %v", err)
	}
}

func TestRequestAttributes(t *testing.T) {
	cases := []struct {
		method, target string
		want           Attributes
	}{
		{"GET", "/api/v1/pods", Attributes{Verb: VerbList, ResourceRequest: true, Version: "v1", Resource: "pods"}},
		{"GET", "/api/v1/namespaces/a/pods?watch=true", Attributes{Verb: VerbWatch, ResourceRequest: true, Version: "v1", Resource: "pods", Namespace: "a"}},
		{"GET", "/api/v1/namespaces/a/pods?watch=nope", Attributes{Verb: VerbList, ResourceRequest: true, Version: "v1", Resource: "pods", Namespace: "a"}},
		{"HEAD", "/api/v1/namespaces/a/pods/w", Attributes{Verb: VerbGet, ResourceRequest: true, Version: "v1", Resource: "pods", Namespace: "a", Name: "w"}},
		{"PUT", "/api/v1/namespaces/a/pods/w/status", Attributes{Verb: VerbUpdate, ResourceRequest: true, Version: "v1", Resource: "pods", Namespace: "a", Name: "w", Subresource: "status"}},
		{"GET", "/api/v1/namespaces/a/pods/w/log", Attributes{Verb: VerbGet, ResourceRequest: true, Version: "v1", Resource: "pods", Namespace: "a", Name: "w", Subresource: "log"}},
		{"POST", "/api/v1/namespaces/a/pods/w/exec", Attributes{Verb: VerbCreate, ResourceRequest: true, Version: "v1", Resource: "pods", Namespace: "a", Name: "w", Subresource: "exec"}},
		{"PATCH", "/apis/apps/v1/namespaces/a/deployments/d/scale", Attributes{Verb: VerbPatch, ResourceRequest: true, Group: "apps", Version: "v1", Resource: "deployments", Namespace: "a", Name: "d", Subresource: "scale"}},
		{"DELETE", "/apis/apps/v1/namespaces/a/deployments", Attributes{Verb: VerbDeleteCollection, ResourceRequest: true, Group: "apps", Version: "v1", Resource: "deployments", Namespace: "a"}},
		{"DELETE", "/api/v1/namespaces/a", Attributes{Verb: VerbDelete, ResourceRequest: true, Version: "v1", Resource: "namespaces", Name: "a"}},
		{"PUT", "/api/v1/namespaces/a/status", Attributes{Verb: VerbUpdate, ResourceRequest: true, Version: "v1", Resource: "namespaces", Name: "a", Subresource: "status"}},
		{"PUT", "/api/v1/nodes/n/status", Attributes{Verb: VerbUpdate, ResourceRequest: true, Version: "v1", Resource: "nodes", Name: "n", Subresource: "status"}},
		{"OPTIONS", "/api/v1/nodes", Attributes{Verb: "options", ResourceRequest: true, Version: "v1", Resource: "nodes"}},
		{"POST", "/v1/cluster/demote", Attributes{Verb: "post"}},
		{"HEAD", "/v1/cluster/raft", Attributes{Verb: VerbGet}},
		{"GET", "/api/v1", Attributes{Verb: "get"}},
		{"GET", "/apis/apps/v1", Attributes{Verb: "get"}},
		{"GET", "/openapi/v3/apis/apps/v1", Attributes{Verb: "get"}},
		{"GET", "/api/v1/nodes/", Attributes{Verb: VerbList, ResourceRequest: true, Version: "v1", Resource: "nodes"}},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		got := RequestAttributes(r)
		c.want.Path = r.URL.Path
		if got != c.want {
			t.Errorf("%s %s:\n got %+v\nwant %+v", c.method, c.target, got, c.want)
		}
	}
}

// TestRequestAttributesUnclean: a path with dot segments, doubled slashes
// or an encoded slash is no resource request, so that only the admin's rule
// matches it, whatever the router makes of it.
func TestRequestAttributesUnclean(t *testing.T) {
	for _, target := range []string{
		"/api/v1/namespaces/team/pods/../../other/secrets",
		"/api/v1/namespaces/team/pods/./web",
		"/api/v1/namespaces//pods",
		"/api/v1/namespaces/team%2Fpods%2Fx/pods/web/exec",
		"/api/v1/namespaces/team/pods/a%2fb/log",
		"/v1/join/../cluster/tokens",
	} {
		r := httptest.NewRequest("GET", target, nil)
		a := RequestAttributes(r)
		if a.ResourceRequest || a.Path != r.URL.EscapedPath() {
			t.Errorf("%s: %+v", target, a)
		}
		for name, id := range ruleIdentities {
			if err := Authorize(id, a); (err == nil) != (name == "admin") {
				t.Errorf("%s as %s: %v", target, name, err)
			}
		}
	}
}
