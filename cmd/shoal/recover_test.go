package main

import (
	"strings"
	"testing"
)

// TestCLIRecover: `shoal recover` refuses a data dir without Raft state and
// a bad address, naming the problem. (The recovery itself is tested in
// agent: TestRecoverQuorumLoss.)
func TestCLIRecover(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := shoal(t, "recover", "--data-dir", dir, "--node-name", "n1", "--raft-addr", "127.0.0.1:7071")
	if code != 1 || !strings.Contains(errOut, "no raft state") {
		t.Errorf("empty data dir: exit %d, %s", code, errOut)
	}
	code, _, errOut = shoal(t, "recover", "--data-dir", dir, "--node-name", "n1", "--raft-addr", "nowhere")
	if code != 1 || !strings.Contains(errOut, "raft-addr") {
		t.Errorf("bad address: exit %d, %s", code, errOut)
	}
	code, _, errOut = shoal(t, "recover", "--data-dir", dir, "--node-name", "n1", "--raft-addr", "127.0.0.1:7071", "--raft-log-store", "rocks")
	if code != 1 || !strings.Contains(errOut, "raft-log-store") {
		t.Errorf("bad log store: exit %d, %s", code, errOut)
	}
	code, _, _ = shoal(t, "recover", "extra")
	if code != 1 {
		t.Errorf("extra argument: exit %d", code)
	}
}
