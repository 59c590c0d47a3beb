// Package api defines Shoal's objects and what every other package needs to
// agree on about them: their Go types (a subset of Kubernetes' core/v1 and
// apps/v1 shapes), how they are decoded, defaulted, validated and named,
// and the Go client of the HTTP API that serves them.
//
// It must not import any other package of Shoal's (every package imports
// it), and it does no I/O except through Client, the HTTP client: decoding,
// defaulting and validation are pure functions of their input.
//
// The manifest pipeline:
//
//	bytes ──DecodeManifests/DecodeObject/DecodeInto──▶ Object
//	      ──SetDefaults──▶ Object ──Validate/ValidateUpdate──▶ FieldErrors
//	Object ──EncodeYAML/EncodeJSON──▶ bytes
//
// Decoding is strict: a field the types do not have, or a value of the
// wrong JSON type, is an error naming the field by its path
// (spec.template.spec.containers[0].imagePullPolcy: unknown field). YAML
// streams, JSON streams and `kind: List` are accepted; the limits
// MaxManifestBytes, MaxDocuments and MaxNestingDepth bound the work hostile
// input can cause. In a multi-document input each error is prefixed with
// the document's number and object: `document 2 (Deployment "web"): ...`.
//
// SetDefaults fills what a manifest may omit, as Kubernetes does, and is
// idempotent. Validate checks every rule of a kind and returns all the
// problems, sorted by path; ValidateUpdate adds the rules about fields that
// may not change. Neither does I/O or looks at other objects.
//
// The server side of a create fills what the server owns with
// PrepareCreate, a uid from NewUID and, for metadata.generateName, a name
// from GenerateName (both random, from crypto/rand); the caller draws them
// once so that every replica of a replicated write stores the same values.
//
// Where things are: the types in meta.go, core.go, apps.go and quantity.go,
// with the kind registry in registry.go; decoding in decode.go (entry
// points), decode_split.go (cutting input into documents), decode_walk.go
// (strict type checks) and decode_fast.go, encoding in encode.go;
// defaults.go; validation in validate.go (shared machinery and limits) and
// one validate_*.go per kind family; names.go; label and field selectors in
// selector.go and fieldselector.go; Status errors in status.go and field
// errors in errors.go; the table columns of `shoal get` and of the API's
// server-side tables in table.go; the client in client.go (REST), client_apply.go,
// client_cluster.go and client_pods.go.
package api
