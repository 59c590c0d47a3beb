package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLISeveralServers: with a dead agent listed first, in SHOAL_ADDR or
// --server (-s), the CLI reads and writes through the next one.
func TestCLISeveralServers(t *testing.T) {
	live := startAgent(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() // the agent runs --insecure: http is explicit
	ln.Close()

	manifest := filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: via-list\ndata:\n  k: v\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOAL_ADDR", dead+","+live)
	mustShoal(t, "apply", "-f", manifest)
	if out := mustShoal(t, "get", "configmap", "via-list"); !strings.Contains(out, "via-list") {
		t.Errorf("get via SHOAL_ADDR: %q", out)
	}
	t.Setenv("SHOAL_ADDR", "")
	if out := mustShoal(t, "get", "configmap", "via-list", "--server", dead+", "+live); !strings.Contains(out, "via-list") {
		t.Errorf("get via --server: %q", out)
	}
	if out := mustShoal(t, "get", "configmap", "via-list", "-s", dead+","+live); !strings.Contains(out, "via-list") {
		t.Errorf("get via -s: %q", out)
	}
}

func TestCLIBadServerList(t *testing.T) {
	t.Setenv("SHOAL_ADDR", "127.0.0.1:1,ftp://x:1")
	code, _, errOut := shoal(t, "get", "pods")
	if code != 2 || !strings.Contains(errOut, "SHOAL_ADDR: address 2 of 2") {
		t.Errorf("bad SHOAL_ADDR: exit %d, %q", code, errOut)
	}
	t.Setenv("SHOAL_ADDR", "")
	code, _, errOut = shoal(t, "get", "pods", "--server", "http://a:1/api")
	if code != 2 || !strings.Contains(errOut, "-server") || !strings.Contains(errOut, "without a path") {
		t.Errorf("bad --server: exit %d, %q", code, errOut)
	}
}
