package testenv

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCredentialsFromTheBootstrapDataDir(t *testing.T) {
	var gotAuth string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
	}))
	defer srv.Close()

	// Two agents' data dirs; only the second bootstrapped.
	worker, boot := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(boot, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(boot, CAFile), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCredentials(worker, boot); err == nil || !strings.Contains(err.Error(), AdminTokenFile) {
		t.Fatalf("no admin token yet: got %v, want an error naming %s", err, AdminTokenFile)
	}
	if err := os.WriteFile(filepath.Join(boot, AdminTokenFile), []byte("shoal.tok.sig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCredentials(worker, boot)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != boot || c.Token != "shoal.tok.sig" || c.CAFile != filepath.Join(boot, CAFile) {
		t.Fatalf("got %+v", c)
	}

	hc := c.HTTPClient(5 * time.Second)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(srv.URL)
	if err != nil {
		// Without the CA in the TLS config, the test server's certificate
		// would be refused (unknown authority).
		t.Fatalf("a server whose certificate the CA signed: %v", err)
	}
	resp.Body.Close()
	if gotAuth != "Bearer shoal.tok.sig" {
		t.Errorf("Authorization %q, want the admin token as a bearer", gotAuth)
	}

	addr := strings.TrimPrefix(srv.URL, "https://")
	if env := c.Env(addr); !slices.Equal(env, []string{"SHOAL_ADDR=https://" + addr, "SHOAL_TOKEN=shoal.tok.sig", "SHOAL_CA_FILE=" + c.CAFile}) {
		t.Errorf("Env: %q", env)
	}
	var insecure *Credentials
	if got := insecure.URL("127.0.0.1:1"); got != "http://127.0.0.1:1" {
		t.Errorf("insecure URL %q", got)
	}
	if env := insecure.Env("127.0.0.1:1"); !slices.Equal(env, []string{"SHOAL_ADDR=http://127.0.0.1:1"}) {
		t.Errorf("insecure Env: %q", env)
	}
}

func TestBootstrapTokenFromTheCLI(t *testing.T) {
	// A stand-in for `shoal token generate` printing a token among words.
	bin := filepath.Join(t.TempDir(), "shoal")
	script := "#!/bin/sh\n[ \"$1 $2\" = \"token generate\" ] || exit 2\necho 'bootstrap token:'\necho '  SHOAL-1-abcdefghijklmnopqrstuvwxyz'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := BootstrapToken(t, bin); got != "SHOAL-1-abcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("got %q", got)
	}
}
