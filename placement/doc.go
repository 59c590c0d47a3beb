// Package placement holds Shoal's pure decisions: the scheduler (filters and
// scorers that explain each rejection) and the reconcile functions of the
// controllers (ReplicaSet, Deployment, DaemonSet, StatefulSet, node loss,
// Endpoints, IP and pod CIDR allocation).
//
// Input is a read-only view of the store and the current time; output is a
// plan of objects to create, update or delete. The package does no I/O,
// never calls time.Now and starts no goroutines; the agent's leader loop
// feeds it and applies its plans through Raft.
//
// It imports only package api and the standard library.
package placement
