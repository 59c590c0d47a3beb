// Package benchproc holds what the benchmark programs under
// integration/bench share to run server processes on loopback: a free
// port, a bounded poll, a graceful stop, and a three-member etcd cluster
// started with its default settings, in plaintext or with TLS as
// Kubernetes runs it (the anchors the benchmarks compare Shoal with).
package benchproc
