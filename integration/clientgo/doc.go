// Package clientgo checks Shoal's Kubernetes API with k8s.io/client-go, the
// library operators and controllers are written with: typed clients for
// the supported kinds and a SharedInformer that lists (paginated) and
// watches (with bookmarks) as client-go's reflector does.
//
// It is a module of its own so that the main module does not depend on
// client-go; it uses the main module through a replace directive. The
// server under test is an in-process apiserver.Server over a store, its
// writes applied directly (no Raft): what is tested is the HTTP API.
package clientgo
