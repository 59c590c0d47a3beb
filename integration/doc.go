// Package integration tests Shoal on real host machinery: agents with their
// own containerd, CNI and nftables, in network namespaces the tests make (the
// three-host cluster of `shoal agent` processes in cluster_test.go, the node
// loop on the real dataplane in node_test.go). Those tests need root and skip
// without it.
//
// Beside the tests: the shared harnesses in package testenv (containerd,
// registry, images, credentials, namespaces) and package hosts (simulated
// hosts: a namespace on a switch, a containerd and an agent each, and
// provision.sh, which a Vagrant VM runs too), the benchmark programs under
// bench, the demos (demo.sh with cmd/demohosts, three hosts; demo-dev.sh
// with cmd/demohost, one), the Vagrant environment (vagrant) and the
// example manifests.
//
// It must not be imported by production code, and its tests must not program
// the machine's root network namespace: every link, route and rule they make
// lives in a namespace they created (package hosts checks that the root one
// is unchanged).
package integration
