package integration

// kubectl 1.20 (Debian's kubernetes-client) speaks SPDY only for exec,
// attach and port-forward: TestKubectlStreamsRoot runs its stream cases
// with it too. It is installed beside kubectl 1.32, not over it (the
// package would replace /usr/bin/kubectl): .ci/run extracts it with
// dpkg-deb -x into /opt/kubectl-1.20; SHOAL_KUBECTL120 names another path.
// Missing, its cases are skipped.

import "os"

var kubectl120Bin = func() string {
	if p := os.Getenv("SHOAL_KUBECTL120"); p != "" {
		return p
	}
	return "/opt/kubectl-1.20/usr/bin/kubectl"
}()
