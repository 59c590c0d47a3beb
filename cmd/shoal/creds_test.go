package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain keeps the tests away from the machine's credentials: no config
// file in $HOME, no agent data dir, no SHOAL_* variables from the shell.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-cli-test-")
	if err != nil {
		panic(err)
	}
	for k, v := range map[string]string{
		envConfig:  filepath.Join(dir, "no-config.json"),
		envDataDir: filepath.Join(dir, "no-data-dir"),
		"HOME":     dir,
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{envAddr, envToken, envCAFile} {
		os.Unsetenv(k)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// layer is one source of credentials in TestResolveOrder, each with its
// own server, token and CA so the test can tell which one won.
type layer struct{ server, token, ca string }

// TestResolveOrder: flags > env > config file > data dir, each value on
// its own.
func TestResolveOrder(t *testing.T) {
	flags := layer{"https://10.0.0.1:7070", "tok-flag", "ca-flag"}
	env := layer{"https://10.0.0.2:7070", "tok-env", "ca-env"}
	file := layer{"https://10.0.0.3:7070", "tok-file", "ca-file"}
	data := layer{"", "tok-data", "ca-data"} // a data dir names no server
	type set struct{ flags, env, file, data bool }
	cases := []struct {
		name       string
		has        set
		fileCAPath bool // the config file names a caFile rather than inline ca
		want       layer
	}{
		{"all", set{true, true, true, true}, false, flags},
		{"env over file and data dir", set{false, true, true, true}, false, env},
		{"file over data dir", set{false, false, true, true}, false, file},
		{"file with caFile", set{false, false, true, true}, true, file},
		{"data dir alone", set{false, false, false, true}, false, layer{defaultServer, data.token, data.ca}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv(envConfig, filepath.Join(dir, "config.json"))
			t.Setenv(envDataDir, filepath.Join(dir, "data"))
			var fl credFlags
			if tc.has.flags {
				fl = credFlags{servers: []string{flags.server}, token: flags.token, caFile: writeFile(t, dir, "flag-ca.pem", flags.ca, 0o644)}
			}
			if tc.has.env {
				t.Setenv(envAddr, env.server)
				t.Setenv(envToken, env.token)
				t.Setenv(envCAFile, writeFile(t, dir, "env-ca.pem", env.ca, 0o644))
			}
			if tc.has.file {
				body := `{"server": "` + file.server + `", "token": "` + file.token + `", "ca": "` + file.ca + `"}`
				if tc.fileCAPath {
					writeFile(t, dir, "file-ca.pem", file.ca, 0o644)
					body = `{"server": "` + file.server + `", "token": "` + file.token + `", "caFile": "file-ca.pem"}`
				}
				writeFile(t, dir, "config.json", body, 0o600)
			}
			if tc.has.data {
				writeFile(t, dir, "data/admin.token", data.token+"\n", 0o600)
				writeFile(t, dir, "data/tls/ca.crt", data.ca, 0o644)
			}
			c, err := resolveCreds(fl)
			if err != nil {
				t.Fatal(err)
			}
			got := layer{strings.Join(c.servers, ","), c.token, string(c.caPEM)}
			if got != tc.want {
				t.Errorf("got %+v, want %+v (from %s, %s, %s)", got, tc.want, c.serverFrom, c.tokenFrom, c.caFrom)
			}
		})
	}

	// Each value on its own: a server from the flags, the token from the
	// environment, the CA from the data dir.
	dir := t.TempDir()
	t.Setenv(envConfig, filepath.Join(dir, "config.json"))
	t.Setenv(envDataDir, filepath.Join(dir, "data"))
	t.Setenv(envToken, "tok-env")
	writeFile(t, dir, "data/admin.token", "tok-data", 0o600)
	writeFile(t, dir, "data/tls/ca.crt", "ca-data", 0o644)
	c, err := resolveCreds(credFlags{servers: []string{"https://10.0.0.9:7070"}})
	if err != nil || c.token != "tok-env" || string(c.caPEM) != "ca-data" || c.servers[0] != "https://10.0.0.9:7070" {
		t.Errorf("mixed sources: %+v %v", c, err)
	}
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// TestConfigFileMode: a config file others may read is refused, naming the
// fix; 0600 and 0400 are fine.
func TestConfigFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	t.Setenv(envConfig, path)
	for mode, ok := range map[os.FileMode]bool{0o600: true, 0o400: true, 0o640: false, 0o644: false, 0o604: false, 0o620: false} {
		writeFile(t, dir, "config.json", `{"server": "https://10.0.0.3:7070", "token": "t", "ca": "x"}`, mode)
		_, err := resolveCreds(credFlags{})
		switch {
		case ok && err != nil:
			t.Errorf("mode %04o: %v", mode, err)
		case !ok && (err == nil || !strings.Contains(err.Error(), "chmod 600 "+path)):
			t.Errorf("mode %04o: %v, want a refusal saying chmod 600", mode, err)
		}
	}
	// The file is not read when flags and environment say everything.
	writeFile(t, dir, "config.json", `{}`, 0o644)
	t.Setenv(envToken, "t")
	t.Setenv(envCAFile, writeFile(t, dir, "ca.pem", "x", 0o644))
	if _, err := resolveCreds(credFlags{servers: []string{"https://10.0.0.1:7070"}}); err != nil {
		t.Errorf("flags and env complete: %v", err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envConfig, filepath.Join(dir, "config.json"))
	for body, want := range map[string]string{
		`{"server": "https://a:1", "tokn": "x"}`:                  `unknown field "tokn"`,
		`{"server": "ftp://a:1"}`:                                 `server: address 1 of 1`,
		`{"server": "https://a:1", "ca": "x", "caFile": "y.pem"}`: "ca or caFile, not both",
		`not json`: "want JSON",
		`{"server": "https://a:1", "token": "two words", "ca": "x"}`: "token has a space",
	} {
		writeFile(t, dir, "config.json", body, 0o600)
		if _, err := resolveCreds(credFlags{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// TestResolveHTTPAndMissingCA: plain http needs no CA and gets no token;
// https without a CA says how to get one; a mix is refused.
func TestResolveHTTPAndMissingCA(t *testing.T) {
	t.Setenv(envToken, "secret-token")
	c, err := resolveCreds(credFlags{servers: []string{"http://127.0.0.1:7070"}})
	if err != nil || c.token != "" || c.caPEM != nil {
		t.Errorf("http: %+v %v", c, err)
	}
	_, err = resolveCreds(credFlags{servers: []string{"https://127.0.0.1:7070"}})
	if err == nil || !strings.Contains(err.Error(), "shoal login") || !strings.Contains(err.Error(), "--ca-file") || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("https without a CA: %v", err)
	}
	_, err = resolveCreds(credFlags{servers: []string{"https://127.0.0.1:7070", "http://127.0.0.1:7071"}})
	if err == nil || !strings.Contains(err.Error(), "mixes http:// and https://") {
		t.Errorf("mixed: %v", err)
	}
	t.Setenv(envCAFile, "/nonexistent/ca.pem")
	_, err = resolveCreds(credFlags{servers: []string{"https://127.0.0.1:7070"}})
	if err == nil || !strings.Contains(err.Error(), "SHOAL_CA_FILE=/nonexistent/ca.pem") {
		t.Errorf("unreadable CA file: %v", err)
	}
}
