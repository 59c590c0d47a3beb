package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/consensus/pki"
)

func TestCAFingerprint(t *testing.T) {
	// sha256("abc") in lower-case base32 without padding, computed apart.
	if got, want := pki.Fingerprint([]byte("abc")), "xj4bnp4pahh6uqkbidpf3lrceoyagyndsylxvhfucd7wd4qacwwq"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := checkFingerprint(strings.ToUpper(pki.Fingerprint([]byte("abc")))); err != nil {
		t.Errorf("upper case: %v", err)
	}
	for in, want := range map[string]string{"abc": "want 52 characters", strings.Repeat("a", 51) + "1": "character 52"} {
		if _, err := checkFingerprint(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// loginEnv points the config file at a fresh temp dir and returns its path.
func loginEnv(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "home", ".config", "shoal", "config.json")
	t.Setenv(envConfig, path)
	return path
}

// TestLoginPinsTheCA: without a fingerprint login shows it and refuses; a
// CA whose fingerprint differs is refused; the right one is saved with the
// token, and later commands need no flag.
func TestLoginPinsTheCA(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	agent := startFakeAgent(t, ca, ca)
	path := loginEnv(t)
	fp := pki.Fingerprint(ca.cert.Raw)

	code, _, errOut := shoal(t, "login", "-s", agent.url, "--token", goodToken)
	if code != 1 || !strings.Contains(errOut, fp) || !strings.Contains(errOut, "--ca-fingerprint "+fp) {
		t.Errorf("no fingerprint: exit %d, %q", code, errOut)
	}
	other := pki.Fingerprint(newTestCA(t, "cluster-b").cert.Raw)
	code, _, errOut = shoal(t, "login", "-s", agent.url, "--token", goodToken, "--ca-fingerprint", other)
	if code != 1 || !strings.Contains(errOut, "refusing") || !strings.Contains(errOut, fp) {
		t.Errorf("wrong fingerprint: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused login wrote %s: %v", path, err)
	}
	for _, a := range agent.authHeaders() {
		if a != "" {
			t.Errorf("the token went out before the CA was pinned: %q", a)
		}
	}

	code, _, errOut = shoal(t, "login", "-s", agent.url, "--token", "shoal.bad", "--ca-fingerprint", fp)
	if code != 1 || !strings.Contains(errOut, "401 Unauthorized") {
		t.Errorf("bad token: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a login with a bad token wrote %s", path)
	}

	out := mustShoal(t, "login", "-s", agent.url, "--token", goodToken, "--ca-fingerprint", fp)
	if !strings.Contains(out, "Logged in") || !strings.Contains(out, path) {
		t.Errorf("login: %q", out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", st, err)
	}
	if dst, err := os.Stat(filepath.Dir(path)); err != nil || dst.Mode().Perm() != 0o700 {
		t.Errorf("config dir: %v %v", dst, err)
	}
	var saved fileConfig
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &saved); err != nil || saved.Server != agent.url || saved.Token != goodToken || saved.CA != string(ca.pem) {
		t.Errorf("saved %+v %v", saved, err)
	}

	// Later commands find everything in the file.
	if out := mustShoal(t, "members"); !strings.Contains(out, "127.0.0.1:7946") {
		t.Errorf("members after login: %q", out)
	}
	if a := agent.authHeaders(); a[len(a)-1] != "Bearer "+goodToken {
		t.Errorf("members sent %q", a[len(a)-1])
	}

	out = mustShoal(t, "logout")
	if _, err := os.Stat(path); !os.IsNotExist(err) || !strings.Contains(out, "Removed") {
		t.Errorf("logout: %q, %v", out, err)
	}
	if out := mustShoal(t, "logout"); !strings.Contains(out, "Not logged in") {
		t.Errorf("second logout: %q", out)
	}
}

// TestLoginCAFileAndLimitedToken: --ca-file pins the CA with no fetch; a
// token that is valid but may not list members (403) is accepted; an
// agent with a certificate from another CA is refused.
func TestLoginCAFileAndLimitedToken(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	agent := startFakeAgent(t, ca, ca)
	path := loginEnv(t)
	caFile := writeFile(t, t.TempDir(), "ca.pem", string(ca.pem), 0o644)

	out := mustShoal(t, "login", "-s", agent.url, "--token", limitedToken, "--ca-file", caFile)
	if !strings.Contains(out, "may not list") {
		t.Errorf("limited token: %q", out)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}

	impostor := startFakeAgent(t, ca, newTestCA(t, "impostor"))
	code, _, errOut := shoal(t, "login", "-s", impostor.url, "--token", goodToken, "--ca-file", caFile)
	if code != 1 || !strings.Contains(errOut, "not from the cluster CA") {
		t.Errorf("impostor: exit %d, %q", code, errOut)
	}
	if a := impostor.authHeaders(); len(a) != 0 {
		t.Errorf("the impostor got %d requests", len(a))
	}

	for _, args := range [][]string{
		{"login", "--token", goodToken, "--ca-file", caFile},                                           // no server
		{"login", "-s", agent.url, "--ca-file", caFile},                                                // no token
		{"login", "-s", agent.url, "--token", goodToken, "--ca-file", caFile, "--ca-fingerprint", "x"}, // both
		{"login", "-s", "http://127.0.0.1:1", "--token", goodToken},                                    // plain http
	} {
		if code, _, errOut := shoal(t, args...); code != 1 || errOut == "" {
			t.Errorf("%q: exit %d, %q", args, code, errOut)
		}
	}
}

// TestCLIDataDirAndUnauthorized: with no flag, env or config file the CLI
// uses the local agent's data dir; a bad token gets the 401 hint.
func TestCLIDataDirAndUnauthorized(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	agent := startFakeAgent(t, ca, ca)
	data := t.TempDir()
	t.Setenv(envDataDir, data)
	writeFile(t, data, "admin.token", goodToken+"\n", 0o600)
	writeFile(t, data, "tls/ca.crt", string(ca.pem), 0o644)
	if out := mustShoal(t, "members", "-s", agent.url); !strings.Contains(out, "127.0.0.1:7946") {
		t.Errorf("members: %q", out)
	}
	code, _, errOut := shoal(t, "members", "-s", agent.url, "--token", "shoal.wrong")
	if code != 1 || !strings.Contains(errOut, "401 Unauthorized: no or bad token — run `shoal login` or set SHOAL_TOKEN") || strings.Contains(errOut, "shoal.wrong") {
		t.Errorf("bad token: exit %d, %q", code, errOut)
	}
	// A bare host:port is https.
	host := strings.TrimPrefix(agent.url, "https://")
	if out := mustShoal(t, "members", "-s", host); !strings.Contains(out, "127.0.0.1:7946") {
		t.Errorf("members via host:port: %q", out)
	}
}

// TestCLISchemeHints: a scheme that does not match the agent's gets a hint.
func TestCLISchemeHints(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	secure := startFakeAgent(t, ca, ca)
	plainURL := "http" + strings.TrimPrefix(secure.url, "https")
	code, _, errOut := shoal(t, "members", "-s", plainURL)
	if code != 1 || !strings.Contains(errOut, "the agent serves https") {
		t.Errorf("http to https: exit %d %q", code, errOut)
	}
	insecure := fakeMembersServer(t) // plain http
	t.Setenv(envCAFile, writeFile(t, t.TempDir(), "ca.pem", string(ca.pem), 0o644))
	code, _, errOut = shoal(t, "members", "-s", "https"+strings.TrimPrefix(insecure, "http"))
	if code != 1 || !strings.Contains(errOut, "the agent serves plain http") {
		t.Errorf("https to http: exit %d %q", code, errOut)
	}
}

// TestLoginPinsOnlyTheMatchingCert: an agent that bundles its own CA after
// the genuine one gets nothing from the bundle: only the certificate whose
// fingerprint matched is trusted, so its certificate is refused.
func TestLoginPinsOnlyTheMatchingCert(t *testing.T) {
	genuine, impostor := newTestCA(t, "cluster-a"), newTestCA(t, "impostor")
	agent := startFakeAgent(t, genuine, impostor) // serves a leaf of the impostor CA
	agent.mu.Lock()
	agent.servedCA = append(append([]byte(nil), genuine.pem...), impostor.pem...)
	agent.mu.Unlock()
	path := loginEnv(t)
	code, _, errOut := shoal(t, "login", "-s", agent.url, "--token", goodToken, "--ca-fingerprint", pki.Fingerprint(genuine.cert.Raw))
	if code != 1 || !strings.Contains(errOut, "not from the cluster CA") {
		t.Errorf("bundled impostor CA: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("config written: %v", err)
	}
	for _, a := range agent.authHeaders() {
		if a != "" {
			t.Errorf("the impostor got the token")
		}
	}
}
