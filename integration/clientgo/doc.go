// Package clientgo checks Shoal's Kubernetes API with k8s.io/client-go, the
// library operators and controllers are written with, and with the real
// kubectl.
//
// Against an in-process apiserver.Server over a store, its writes applied
// directly (no Raft; server_test.go): typed clients for the supported
// kinds and a SharedInformer that lists (paginated) and watches (with
// bookmarks) as client-go's reflector does.
//
// Against a real cluster (cluster_test.go: three `shoal agent` processes
// that form one secure cluster by themselves, plus a non-voter, pods off,
// each on its own loopback address): Pod informers through a follower
// and through a non-voter that must converge to the server's list after
// the leader is killed mid-writes (failover_test.go), a controller built
// on client-go's rate-limited workqueue that keeps reconciling across the
// failover (controller_test.go), and kubectl's apply, edit, get -o wide,
// get -w and create against a voter and a non-voter (kubectl_test.go).
// The cluster tests build the shoal binary once (or run $SHOAL_BIN) and
// skip under -short.
//
// It is a module of its own so that the main module does not depend on
// client-go; it uses the main module through a replace directive.
package clientgo
