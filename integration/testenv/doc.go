// Package testenv starts and cleans up the real pieces that root tests need:
// a private containerd daemon, a registry on loopback, images built from Go
// source, and network namespaces. The dataplane and integration tests and the
// demo use it; production code must not import it.
//
// Everything it starts is stopped and removed at test cleanup, by PID and by
// path, even when the test fails. Functions that need root say so; call
// RequireRoot first to skip cleanly elsewhere. It waits on conditions with a
// deadline (WaitFor), never on a fixed sleep.
//
// The package stays light to compile: it talks to containerd only through the
// socket and the ctr binary, never through the containerd Go client.
package testenv
