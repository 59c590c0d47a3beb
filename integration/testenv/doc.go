// Package testenv is test support for the dataplane and integration tests: a
// private containerd daemon, a registry on loopback, images built from Go
// source, and network namespaces. Production code never imports it.
//
// Everything it starts is stopped and removed at test cleanup, by PID and by
// path, even when the test fails. Functions that need root say so; call
// RequireRoot first to skip cleanly elsewhere.
//
// The package stays light to compile: it talks to containerd only through the
// socket and the ctr binary, never through the containerd Go client.
package testenv
