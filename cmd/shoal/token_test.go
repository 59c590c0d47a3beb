package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// adminEnv points the CLI at agent with the admin token and its CA, through
// the environment.
func adminEnv(t *testing.T, agent *fakeAgent) {
	t.Helper()
	t.Setenv(envAddr, agent.url)
	t.Setenv(envToken, goodToken)
	t.Setenv(envCAFile, writeFile(t, t.TempDir(), "ca.pem", string(agent.ca.pem), 0o644))
}

func TestTokenShowAndRotate(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	agent := startFakeAgent(t, ca, ca)
	adminEnv(t, agent)
	out := mustShoal(t, "token", "show")
	for _, want := range []string{"CA fingerprint: " + pki.Fingerprint(ca.cert.Raw), "Voter token:    SHOAL-1-voter\n", "Worker token:   SHOAL-1-worker\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("show: %q lacks %q", out, want)
		}
	}
	var shown api.JoinTokens
	if err := json.Unmarshal([]byte(mustShoal(t, "token", "show", "-o", "json")), &shown); err != nil || shown.Worker != "SHOAL-1-worker" || shown.CAFingerprint != pki.Fingerprint(ca.cert.Raw) {
		t.Errorf("show -o json: %+v %v", shown, err)
	}
	out = mustShoal(t, "token", "rotate", "worker")
	if !strings.Contains(out, "Rotated the worker token") || !strings.Contains(out, "SHOAL-1-worker-rotated") {
		t.Errorf("rotate: %q", out)
	}
	agent.mu.Lock()
	rotated := agent.rotated
	agent.mu.Unlock()
	if !reflect.DeepEqual(rotated, []string{"worker"}) {
		t.Errorf("rotated %q", rotated)
	}
	for _, args := range [][]string{{"token", "rotate"}, {"token", "rotate", "admin"}, {"token", "show", "extra"}, {"token", "show", "-o", "yaml"}} {
		if code, _, errOut := shoal(t, args...); code != 1 || errOut == "" {
			t.Errorf("%q: exit %d %q", args, code, errOut)
		}
	}
	if code, _, errOut := shoal(t, "token", "generat"); code != 2 || !strings.Contains(errOut, `unknown subcommand "generat"`) {
		t.Errorf("unknown subcommand: exit %d %q", code, errOut)
	}
	// A read-only or write token gets the server's 403.
	t.Setenv(envToken, limitedToken)
	if code, _, errOut := shoal(t, "token", "show", "-s", agent.url); code != 1 || !strings.Contains(errOut, "403 Forbidden") {
		t.Errorf("limited token: exit %d %q", code, errOut)
	}
}

func TestTokenCreate(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	agent := startFakeAgent(t, ca, ca)
	adminEnv(t, agent)
	out := mustShoal(t, "token", "create", "--name", "ci", "--role", "write", "--namespace", "team-a, team-b", "--ttl", "24h")
	if out != "shoal.new-token\n" {
		t.Errorf("create printed %q", out)
	}
	mustShoal(t, "token", "create", "--name", "ops", "--role", "admin")
	agent.mu.Lock()
	created := agent.created
	agent.mu.Unlock()
	want := []map[string]any{
		{"name": "ci", "role": "write", "namespaces": []any{"team-a", "team-b"}, "ttl": "24h"},
		{"name": "ops", "role": "admin", "ttl": "720h"},
	}
	if !reflect.DeepEqual(created, want) {
		t.Errorf("bodies %v, want %v", created, want)
	}
}

func TestTokenRequestErrors(t *testing.T) {
	for _, tc := range []struct{ name, role, ns, ttl, want string }{
		{"", "admin", "", "1h", "--name: required"},
		{"Bad_Name", "admin", "", "1h", "--name"},
		{"ci", "", "", "1h", "--role: required"},
		{"ci", "root", "", "1h", `--role: "root"`},
		{"ci", "write", "ok,Not_OK", "1h", `--namespace: "Not_OK"`},
		{"ci", "admin", "a", "1h", "admin token covers every namespace"},
		{"ci", "write", "a", "soon", "--ttl"},
		{"ci", "write", "a", "-1h", "must be positive"},
		{"ci", "write", "a", "100000h", "longer than"},
	} {
		if _, err := tokenRequest(tc.name, tc.role, tc.ns, tc.ttl); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

func TestRevoke(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	agent := startFakeAgent(t, ca, ca)
	adminEnv(t, agent)
	out := mustShoal(t, "revoke", "w1")
	if !strings.Contains(out, "Revoked node w1 at 2026-11-30T02:00:00Z") {
		t.Errorf("revoke: %q", out)
	}
	agent.mu.Lock()
	revoked := agent.revoked
	agent.mu.Unlock()
	if !reflect.DeepEqual(revoked, []string{"w1"}) {
		t.Errorf("revoked %q", revoked)
	}
	for _, args := range [][]string{{"revoke"}, {"revoke", "a", "b"}} {
		if code, _, errOut := shoal(t, args...); code != 1 || errOut == "" {
			t.Errorf("%q: exit %d %q", args, code, errOut)
		}
	}
}
