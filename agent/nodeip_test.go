package agent

import (
	"strings"
	"testing"
)

func TestNodeIPIsTheReportedAndRoutedAddress(t *testing.T) {
	a := &Agent{apiAdv: "127.0.0.1:7070"}
	if got := a.hostIP(); got != "127.0.0.1" {
		t.Fatalf("without NodeIP: hostIP = %q, want the API's advertised IP", got)
	}
	a.cfg.NodeIP = "10.250.0.2"
	if got := a.hostIP(); got != "10.250.0.2" {
		t.Fatalf("with NodeIP: hostIP = %q, want 10.250.0.2", got)
	}
}

func TestNodeIPValidated(t *testing.T) {
	for _, tc := range []struct{ ip, err string }{
		{"", ""}, {"10.250.0.1", ""}, {"fd00::1", ""},
		{"0.0.0.0", "node-ip"}, {"host.local", "node-ip"}, {"10.0.0.1:80", "node-ip"},
	} {
		c := DefaultConfig()
		c.NodeName = "n1"
		c.NodeIP = tc.ip
		err := c.Validate()
		if tc.err == "" && err != nil {
			t.Errorf("NodeIP %q: %v", tc.ip, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("NodeIP %q: err %v, want one naming %s", tc.ip, err, tc.err)
		}
	}
}

func TestRaftLogStoreValidated(t *testing.T) {
	for _, tc := range []struct{ kind, err string }{
		{"", ""}, {"bolt", ""}, {"wal", ""}, {"rocks", "raft-log-store"}, {"WAL", "raft-log-store"},
	} {
		c := DefaultConfig()
		c.NodeName = "n1"
		c.RaftLogStore = tc.kind
		err := c.Validate()
		if tc.err == "" && err != nil {
			t.Errorf("RaftLogStore %q: %v", tc.kind, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("RaftLogStore %q: err %v, want one naming %s", tc.kind, err, tc.err)
		}
	}
}
