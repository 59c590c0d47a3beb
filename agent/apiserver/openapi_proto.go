package apiserver

import (
	"net/http"
	"strings"
	"sync"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// openAPIV2Protobuf is the media type of the protobuf form of /openapi/v2
// (gnostic's OpenAPI v2 Document), the only one kubectl before 1.27 asks
// for: its apply validates against it, explain and diff read it.
const openAPIV2Protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

// openAPIV2Proto encodes the JSON /openapi/v2 document as protobuf, once.
var openAPIV2Proto = sync.OnceValues(func() ([]byte, error) {
	doc, err := openapi_v2.ParseDocument(loadOpenAPI().v2)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
})

// addPathsV2 describes, in the /openapi/v2 document, the PATCH of a kind's
// objects with the query parameters it honours: kubectl < 1.27 reads
// there whether a kind takes dryRun (kubectl diff). The other operations
// are described in the /openapi/v3 documents only.
func addPathsV2(paths map[string]any, b *schemaBuilder, k api.KindInfo) {
	prefix := strings.TrimSuffix(apiPrefix(k.Group, k.Version), "/")
	item := prefix + "/" + k.Resource + "/{name}"
	params := []any{map[string]any{"name": "name", "in": "path", "required": true, "type": "string"}}
	if k.Namespaced {
		item = prefix + "/namespaces/{namespace}/" + k.Resource + "/{name}"
		params = append(params, map[string]any{"name": "namespace", "in": "path", "required": true, "type": "string"})
	}
	ops := []any{map[string]any{"name": "body", "in": "body", "required": true, "schema": map[string]any{"type": "object"}}}
	for _, q := range writeQueryParams {
		ops = append(ops, map[string]any{"name": q, "in": "query", "type": "string", "uniqueItems": true})
	}
	paths[item] = map[string]any{
		"parameters": params,
		"patch": map[string]any{
			"operationId":                     "patch" + k.Kind,
			"x-kubernetes-action":             "patch",
			"x-kubernetes-group-version-kind": gvkExtension(k),
			"consumes": []string{"application/json-patch+json", "application/merge-patch+json",
				"application/strategic-merge-patch+json", "application/apply-patch+yaml"},
			"produces":   []string{"application/json", "application/yaml"},
			"parameters": ops,
			"responses":  map[string]any{"200": map[string]any{"description": "OK", "schema": b.ref(reflectTypeOf(k))}},
		},
	}
}

// acceptsOpenAPIProto reports whether an Accept header names the protobuf
// form of /openapi/v2.
func acceptsOpenAPIProto(accept string) bool {
	// Not mime.ParseMediaType: "@" is not allowed in a media type's
	// name, yet it is in this one.
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), openAPIV2Protobuf) {
			return true
		}
	}
	return false
}

// serveOpenAPIV2 sends /openapi/v2 as JSON, or as protobuf to clients
// that accept only that.
func (s *Server) serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	accept := r.Header.Get("Accept")
	if acceptsJSON(accept) || !acceptsOpenAPIProto(accept) {
		s.writeOpenAPI(w, r, loadOpenAPI().v2)
		return
	}
	if !s.discoveryGET(w, r) {
		return
	}
	doc, err := openAPIV2Proto()
	if err != nil {
		s.WriteError(w, r, api.NewInternalError(err))
		return
	}
	// Not the media type asked: clients parse the answer's with
	// mime.ParseMediaType, which refuses its "@".
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(doc)
	}
}
