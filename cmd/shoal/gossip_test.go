package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// startFakeGossipAgent answers the gossip key endpoints as a leader would:
// a rotation goes install, use, remove, none over successive reads; a
// second rotation during one is refused with 409.
func startFakeGossipAgent(t *testing.T, ca *testCA) string {
	t.Helper()
	var mu sync.Mutex
	phases := []string{"install", "use", "remove", ""}
	at := len(phases) - 1
	reply := func(w http.ResponseWriter) {
		keys := []map[string]any{{"id": "aaaaaaaa", "primary": true}}
		if phases[at] != "" && phases[at] != "remove" {
			keys = append(keys, map[string]any{"id": "bbbbbbbb"})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"phase": phases[at], "keys": keys, "expect": "aaaaaaaa.cccccccc",
			"members": []map[string]any{{"name": "h1", "alive": true, "keyring": "aaaaaaaa.cccccccc", "state": "current"}, {"name": "h4", "alive": true, "state": "revoked"}}})
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+goodToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"needs admin","reason":"Forbidden","code":403}`)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/cluster/gossip":
			if at < len(phases)-1 {
				at++
			}
			reply(w)
		case "POST /v1/cluster/gossip/rotate":
			if phases[at] != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(409)
				io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"a gossip key rotation is in progress","reason":"Conflict","code":409}`)
				return
			}
			at = 0
			reply(w)
		default:
			http.NotFound(w, r)
		}
	})
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, "node-a")}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestGossipRotateAndStatus(t *testing.T) {
	ca := newTestCA(t, "cluster-a")
	url := startFakeGossipAgent(t, ca)
	t.Setenv(envAddr, url)
	t.Setenv(envToken, goodToken)
	t.Setenv(envCAFile, writeFile(t, t.TempDir(), "ca.pem", string(ca.pem), 0o644))

	out := mustShoal(t, "gossip", "rotate")
	for _, want := range []string{"Started a gossip key rotation", "Rotation phase: install", "aaaaaaaa (primary), bbbbbbbb", "h4      revoked"} {
		if !strings.Contains(out, want) {
			t.Errorf("rotate: %q lacks %q", out, want)
		}
	}
	if code, _, errOut := shoal(t, "gossip", "rotate"); code != 1 || !strings.Contains(errOut, "in progress") {
		t.Errorf("a second rotation: exit %d %q", code, errOut)
	}
	var st struct{ Phase string }
	if err := json.Unmarshal([]byte(mustShoal(t, "gossip", "status", "-o", "json")), &st); err != nil || st.Phase != "use" {
		t.Errorf("status -o json: %+v %v", st, err)
	}
	mustShoal(t, "gossip", "status") // remove
	mustShoal(t, "gossip", "status") // none
	out = mustShoal(t, "gossip", "rotate", "--wait", "--timeout", "30s")
	if !strings.Contains(out, "phase: use") || !strings.Contains(out, "phase: none (done)") || !strings.Contains(out, "Rotation phase: none") {
		t.Errorf("rotate --wait: %q", out)
	}
	for _, args := range [][]string{{"gossip", "status", "extra"}, {"gossip", "status", "-o", "yaml"}, {"gossip", "rotate", "--timeout", "0s"}, {"gossip", "rotate", "--timeout", "2h"}} {
		if code, _, errOut := shoal(t, args...); code != 1 || errOut == "" {
			t.Errorf("%q: exit %d %q", args, code, errOut)
		}
	}
	if code, _, errOut := shoal(t, "gossip", "rotat"); code != 2 || !strings.Contains(errOut, `unknown subcommand "rotat"`) {
		t.Errorf("unknown subcommand: exit %d %q", code, errOut)
	}
	t.Setenv(envToken, limitedToken)
	if code, _, errOut := shoal(t, "gossip", "rotate"); code != 1 || !strings.Contains(errOut, "403") {
		t.Errorf("non-admin token: exit %d %q", code, errOut)
	}
}
