// Package integration tests Shoal on real host machinery: agents with their
// own containerd, CNI and nftables, in network namespaces the tests make (the
// three-host cluster of `shoal agent` processes in cluster_test.go, the node
// loop on the real dataplane in node_test.go). Those tests need root and skip
// without it.
//
// Beside the tests: the shared harness in package testenv, the benchmark
// programs under bench, the demo script (demo.sh, with cmd/demohost) and the
// example manifests.
//
// It must not be imported by production code, and its tests must not program
// the machine's root network namespace: every link, route and rule they make
// lives in a namespace they created (the three-host test checks that the root
// one is unchanged).
package integration
