// Package integration holds the multi-node test harness and scenarios
// (network namespaces, one agent and one containerd per host, a local OCI
// registry), benchmark programs, and the demo script. Production code never
// imports it.
package integration
