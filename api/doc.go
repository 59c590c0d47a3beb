// Package api holds what every other Shoal package shares: the object
// types (a subset of Kubernetes' core/v1 and apps/v1 shapes), the kind
// registry, label and field selectors, API status errors and the Go
// client, and the manifest pipeline:
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
// The package imports no other package of Shoal's.
package api
