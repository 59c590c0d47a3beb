// Package placement holds Shoal's pure decisions: the scheduler (filters and
// scorers that explain each rejection) and the reconcile functions of the
// controllers (ReplicaSet, Deployment, DaemonSet, StatefulSet, node
// readiness and node loss, Endpoints, garbage collection, ClusterIP,
// NodePort and pod CIDR allocation).
//
// Input is a read-only view of the store and the current time; output is a
// plan of objects to create, update or delete. The package must not do I/O,
// call time.Now or start goroutines; the agent's leader loop feeds it and
// applies its plans through Raft. Each reconcile function reads as a few
// named steps over one call's working state (see deploymentReconcile).
//
// It imports only package api and the standard library. README.md describes
// the scheduler's pipeline.
package placement
