package agent

import (
	"strings"
	"testing"
)

func TestConfigHostPathAllow(t *testing.T) {
	for _, tc := range []struct {
		allow []string
		ok    bool
	}{
		{nil, true},
		{[]string{"/data", "/srv/logs"}, true},
		{[]string{"/"}, false},
		{[]string{"/etc"}, false},
		{[]string{"/var/lib"}, false},
		{[]string{"/opt"}, false},            // contains the data dir
		{[]string{"/opt/shoal/pods"}, false}, // inside the data dir
		{[]string{"/run/k3s"}, false},        // contains the containerd socket
		{[]string{"/run/k3s-other"}, true},   // a neighbour
		{[]string{"data"}, false},            // relative
		{[]string{"/data/../etc"}, false},    // ..
	} {
		c := DefaultConfig()
		c.NodeName, c.DataDir = "n1", "/opt/shoal"
		c.Host.ContainerdSocket = "/run/k3s/containerd.sock"
		c.HostPathAllow = tc.allow
		err := c.Validate()
		if tc.ok && err != nil {
			t.Errorf("%q: %v", tc.allow, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "host-path-allow")) {
			t.Errorf("%q: %v, want an error naming host-path-allow", tc.allow, err)
		}
	}
}
