package apiserver

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/shoal-dev/shoal/api"
)

// OpenAPI documents, for kubectl explain and kubectl apply's validation:
//
//   - /openapi/v3 is the index of one document per group/version;
//     /openapi/v3/api/v1 and /openapi/v3/apis/apps/v1 are those documents
//     (paths of every served operation and the kinds' schemas). kubectl ≥
//     1.27 reads these.
//   - /openapi/v2 is one Swagger 2.0 document of every kind, in JSON, or
//     in the protobuf form client-go and kubectl < 1.27 ask for
//     (openapi_proto.go).
//
// The documents depend only on the Go types, so they are built once.
//
// Every write operation declares the fieldValidation query parameter:
// kubectl then leaves validation to the server instead of validating
// against the schema itself. The server decodes every body strictly (an
// unknown or duplicated field is a 400 naming it) whatever the parameter
// asks, which is fieldValidation=Strict, kubectl's default.

// writeQueryParams are the query parameters every write operation declares:
// only those the Server honours, for kubectl asks the document before
// relying on one (a dryRun declared but ignored would make kubectl apply
// --dry-run=server write; the write handlers honour it, see dryrun.go).
var writeQueryParams = []string{"fieldValidation", "dryRun"}

// openAPIDocs are the encoded documents.
type openAPIDocs struct {
	v2      []byte
	v3Index []byte
	v3      map[string][]byte // by "api/v1", "apis/apps/v1"
}

var (
	openAPIOnce sync.Once
	openAPI     openAPIDocs
)

func loadOpenAPI() *openAPIDocs {
	openAPIOnce.Do(func() { openAPI = buildOpenAPI() })
	return &openAPI
}

const openAPITitle = "Shoal"

func buildOpenAPI() openAPIDocs {
	docs := openAPIDocs{v3: map[string][]byte{}}
	b2 := newSchemaBuilder(false)
	b2.addKinds(func(api.KindInfo) bool { return true })
	paths2 := map[string]any{}
	for _, k := range api.Kinds() {
		addPathsV2(paths2, b2, k)
	}
	v2 := map[string]any{
		"swagger":     "2.0",
		"info":        map[string]any{"title": openAPITitle, "version": "v" + KubernetesMajor + "." + KubernetesMinor + ".0"},
		"paths":       paths2,
		"definitions": b2.defs,
	}
	docs.v2 = mustEncode(v2)

	index := map[string]any{}
	seen := map[string]bool{}
	for _, k := range api.Kinds() {
		gv := strings.TrimPrefix(strings.TrimSuffix(apiPrefix(k.Group, k.Version), "/"), "/")
		if seen[gv] {
			continue
		}
		seen[gv] = true
		b3 := newSchemaBuilder(true)
		b3.addKinds(func(o api.KindInfo) bool { return o.Group == k.Group && o.Version == k.Version })
		paths := map[string]any{}
		for _, o := range api.Kinds() {
			if o.Group == k.Group && o.Version == k.Version {
				addPaths(paths, b3, o)
			}
		}
		doc := mustEncode(map[string]any{
			"openapi":    "3.0.0",
			"info":       map[string]any{"title": openAPITitle, "version": k.APIVersion()},
			"paths":      paths,
			"components": map[string]any{"schemas": b3.defs},
		})
		docs.v3[gv] = doc
		sum := sha512.Sum512(doc)
		index[gv] = map[string]any{"serverRelativeURL": "/openapi/v3/" + gv + "?hash=" + strings.ToUpper(hex.EncodeToString(sum[:]))}
	}
	docs.v3Index = mustEncode(map[string]any{"paths": index})
	return docs
}

func mustEncode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("apiserver: encoding a static document: " + err.Error())
	}
	return b
}

// addPaths describes the operations served on a kind's collection and
// objects, after ResourceVerbs.
func addPaths(paths map[string]any, b *schemaBuilder, k api.KindInfo) {
	objRef := b.ref(reflectTypeOf(k))
	gvk := gvkExtension(k)
	prefix := strings.TrimSuffix(apiPrefix(k.Group, k.Version), "/")
	coll := prefix + "/" + k.Resource
	var params []any
	if k.Namespaced {
		coll = prefix + "/namespaces/{namespace}/" + k.Resource
		params = append(params, pathParam("namespace"))
	}
	item := coll + "/{name}"
	itemParams := append(slices.Clip(params), pathParam("name"))
	op := func(action, id string, body bool, extra ...any) map[string]any {
		o := map[string]any{
			"operationId":                     id + k.Kind,
			"x-kubernetes-action":             action,
			"x-kubernetes-group-version-kind": gvk,
			"responses": map[string]any{"200": map[string]any{
				"description": "OK",
				"content":     map[string]any{"application/json": map[string]any{"schema": objRef}},
			}},
		}
		var ps []any
		ps = append(ps, extra...)
		if body {
			for _, q := range writeQueryParams {
				ps = append(ps, queryParam(q))
			}
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": objRef},
				"application/yaml": map[string]any{"schema": objRef},
			}}
		}
		if len(ps) > 0 {
			o["parameters"] = ps
		}
		return o
	}
	collOps := map[string]any{"parameters": params}
	itemOps := map[string]any{"parameters": itemParams}
	for _, v := range ResourceVerbs {
		switch v {
		case VerbList:
			collOps["get"] = op("list", "list", false, queryParam("labelSelector"), queryParam("fieldSelector"), queryParam("watch"))
		case VerbCreate:
			collOps["post"] = op("post", "create", true)
		case VerbGet:
			itemOps["get"] = op("get", "read", false)
		case VerbUpdate:
			itemOps["put"] = op("put", "replace", true)
		case VerbPatch:
			p := op("patch", "patch", true)
			p["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/merge-patch+json":           map[string]any{"schema": map[string]any{"type": "object"}},
				"application/json-patch+json":            map[string]any{"schema": map[string]any{"type": "array"}},
				"application/strategic-merge-patch+json": map[string]any{"schema": map[string]any{"type": "object"}},
				"application/apply-patch+yaml":           map[string]any{"schema": map[string]any{"type": "object"}},
			}}
			itemOps["patch"] = p
		case VerbDelete:
			itemOps["delete"] = op("delete", "delete", false)
		}
	}
	paths[coll] = collOps
	paths[item] = itemOps
}

func pathParam(name string) map[string]any {
	return map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
}

func queryParam(name string) map[string]any {
	return map[string]any{"name": name, "in": "query", "schema": map[string]any{"type": "string"}}
}

// acceptsJSON reports whether an Accept header admits a JSON answer: no
// header, */*, application/*, or application/json.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*", "application/json":
			return true
		}
	}
	return false
}

// writeOpenAPI sends an encoded document, or 406 when the client accepts
// no JSON.
func (s *Server) writeOpenAPI(w http.ResponseWriter, r *http.Request, doc []byte) {
	if !s.discoveryGET(w, r) {
		return
	}
	if !acceptsJSON(r.Header.Get("Accept")) {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotAcceptable, api.StatusReason("NotAcceptable"), nil,
			"only application/json is served at %s (asked for %q)", r.URL.Path, r.Header.Get("Accept")))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(doc)
	}
}

func (s *Server) serveOpenAPIV3Index(w http.ResponseWriter, r *http.Request) {
	s.writeOpenAPI(w, r, loadOpenAPI().v3Index)
}

func (s *Server) serveOpenAPIV3(w http.ResponseWriter, r *http.Request) {
	doc, ok := loadOpenAPI().v3[r.PathValue("path")]
	if !ok {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"the server could not find the requested resource %q", r.URL.Path))
		return
	}
	s.writeOpenAPI(w, r, doc)
}
