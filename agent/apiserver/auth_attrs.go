package apiserver

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Verbs of resource requests, named as Kubernetes names them.
const (
	VerbGet              = "get"
	VerbList             = "list"
	VerbWatch            = "watch"
	VerbCreate           = "create"
	VerbUpdate           = "update"
	VerbPatch            = "patch"
	VerbDelete           = "delete"
	VerbDeleteCollection = "deletecollection"
)

// Attributes are what a request asks to do, as Authorize sees it: a
// resource request (/api/..., /apis/...) names a verb, a resource, maybe a
// namespace, a name and a subresource; any other request names its path
// and its method as the verb.
type Attributes struct {
	// Verb: for a resource request one of the Verb constants (or the
	// method in lower case for a method the API does not serve); else the
	// method in lower case, HEAD counting as "get".
	Verb string
	// ResourceRequest reports whether the path names a resource.
	ResourceRequest bool
	// Group ("" for the core group) and Version of a resource request.
	Group, Version string
	// Resource is the plural resource ("pods").
	Resource string
	// Subresource is "status", "log", "exec", "scale", ... or "".
	Subresource string
	// Namespace is "" for a cluster-scoped resource, or a list or watch
	// across all namespaces.
	Namespace string
	// Name is "" for a collection.
	Name string
	// Path is the request's path.
	Path string
}

// IsRead reports whether the verb only reads.
func (a Attributes) IsRead() bool {
	switch a.Verb {
	case VerbGet, VerbList, VerbWatch:
		return true
	}
	return false
}

// Describe says what the request asks in a few words, for messages:
// `create pods "web" in namespace "default"`, `post /v1/cluster/demote`.
func (a Attributes) Describe() string {
	if !a.ResourceRequest {
		return a.Verb + " " + a.Path
	}
	var b strings.Builder
	b.WriteString(a.Verb)
	b.WriteString(" ")
	b.WriteString(a.Resource)
	if a.Group != "" {
		b.WriteString("." + a.Group)
	}
	if a.Subresource != "" {
		b.WriteString("/" + a.Subresource)
	}
	if a.Name != "" {
		fmt.Fprintf(&b, " %q", a.Name)
	}
	if a.Namespace != "" {
		fmt.Fprintf(&b, " in namespace %q", a.Namespace)
	}
	return b.String()
}

// RequestAttributes reads a request's Attributes from its method, path and
// watch parameter. It parses paths exactly as the Server resolves them
// (resolve): /api/{version}/..., /apis/{group}/{version}/..., then
// [namespaces/{ns}/]{resource}[/{name}[/{subresource}]]; namespaces/{ns}
// and namespaces/{ns}/status are the cluster-scoped Namespace itself. A
// path it cannot read as a resource is a non-resource request.
//
// A path that is not clean (dot segments, doubled slashes) or holds an
// encoded slash is never a resource request, and its Path is the escaped
// path: no rule but the admin's matches it. net/http's ServeMux redirects
// the first kind to the clean path; the second has no legitimate use.
func RequestAttributes(r *http.Request) Attributes {
	p := r.URL.Path
	a := Attributes{Path: p, Verb: strings.ToLower(r.Method)}
	if r.Method == http.MethodHead {
		a.Verb = VerbGet
	}
	if !isCleanPath(r.URL) {
		a.Path = r.URL.EscapedPath()
		return a
	}
	var rest string
	switch {
	case strings.HasPrefix(p, "/api/"):
		v, tail, ok := strings.Cut(p[len("/api/"):], "/")
		if !ok || v == "" || tail == "" {
			return a
		}
		a.Version, rest = v, tail
	case strings.HasPrefix(p, "/apis/"):
		segs := strings.SplitN(p[len("/apis/"):], "/", 3)
		if len(segs) < 3 || segs[0] == "" || segs[1] == "" || segs[2] == "" {
			return a
		}
		a.Group, a.Version, rest = segs[0], segs[1], segs[2]
	default:
		return a
	}
	segs := strings.Split(rest, "/")
	namespaced := len(segs) >= 3 && segs[0] == "namespaces" && !(len(segs) == 3 && segs[2] == "status")
	if namespaced {
		a.Namespace = segs[1]
		segs = segs[2:]
	}
	a.ResourceRequest = true
	a.Resource = segs[0]
	if len(segs) > 1 {
		a.Name = segs[1]
	}
	if len(segs) > 2 {
		// Deeper paths are not served (the Server answers 404); the rest
		// is kept so that no rule mistakes them for the object itself.
		a.Subresource = strings.Join(segs[2:], "/")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a.Verb = VerbGet
		if a.Name == "" {
			a.Verb = VerbList
			if w, err := strconv.ParseBool(r.URL.Query().Get("watch")); err == nil && w {
				a.Verb = VerbWatch
			}
		}
	case http.MethodPost:
		a.Verb = VerbCreate
	case http.MethodPut:
		a.Verb = VerbUpdate
	case http.MethodPatch:
		a.Verb = VerbPatch
	case http.MethodDelete:
		a.Verb = VerbDelete
		if a.Name == "" {
			a.Verb = VerbDeleteCollection
		}
	}
	return a
}

// isCleanPath reports whether u's path has no dot segment, no empty segment
// but a final one, and no encoded slash.
func isCleanPath(u *url.URL) bool {
	p := u.Path
	if c := path.Clean(p); c != p && c+"/" != p {
		return false
	}
	return !strings.Contains(strings.ToLower(u.EscapedPath()), "%2f")
}
