package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"

	"github.com/shoal-dev/shoal/consensus/gossip"
)

// fakeMembersServer answers /v1/cluster/members as an agent would.
func fakeMembersServer(t *testing.T) string {
	t.Helper()
	since := time.Now().Add(-90 * time.Second)
	ms := []gossip.Member{
		{Name: "host-3", Addr: "10.0.0.3", Port: 7946, State: gossip.Dead, Since: since,
			Meta: gossip.Meta{APIAddr: "10.0.0.3:7070", RaftAddr: "10.0.0.3:7071", Zone: "zone-b", Role: gossip.RoleNonvoter, ClusterID: "c1"}},
		{Name: "host-1", Addr: "10.0.0.1", Port: 7946, State: gossip.Alive, Since: since,
			Meta: gossip.Meta{APIAddr: "10.0.0.1:7070", RaftAddr: "10.0.0.1:7071", Zone: "zone-a", Role: gossip.RoleVoter, ClusterID: "c1", Version: "v0.1"}},
		{Name: "host-20", Addr: "10.0.0.20", Port: 7946, State: gossip.Alive, Since: since},
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/cluster/members" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(apiserver.MembersView(ms))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestMembersTable(t *testing.T) {
	addr := fakeMembersServer(t)
	out := mustShoal(t, "members", "--server", addr)
	want := "" +
		"NAME      ADDRESS          ZONE     STATUS   ROLE\n" +
		"host-1    10.0.0.1:7946    zone-a   alive    voter\n" +
		"host-20   10.0.0.20:7946   -        alive    none\n" +
		"host-3    10.0.0.3:7946    zone-b   dead     nonvoter\n"
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}

	wide := mustShoal(t, "members", "-o", "wide", "--server", addr)
	lines := strings.Split(strings.TrimSpace(wide), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "RAFT") ||
		!strings.Contains(lines[1], "10.0.0.1:7071") || !strings.Contains(lines[1], "1m30s") {
		t.Fatalf("wide:\n%s", wide)
	}
}

func TestMembersJSON(t *testing.T) {
	addr := fakeMembersServer(t)
	out := mustShoal(t, "members", "-o", "json", "--server", addr)
	var body struct {
		Members []struct {
			Name, Status, Role, APIAddr string
		}
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(body.Members) != 3 || body.Members[0].Name != "host-1" || body.Members[0].APIAddr != "10.0.0.1:7070" ||
		body.Members[2].Status != "dead" {
		t.Fatalf("%+v", body)
	}
}

func TestMembersErrors(t *testing.T) {
	addr := fakeMembersServer(t)
	if code, _, errOut := shoal(t, "members", "-o", "yaml", "--server", addr); code == 0 || !strings.Contains(errOut, "unsupported output") {
		t.Errorf("-o yaml: exit %d, %s", code, errOut)
	}
	if code, _, _ := shoal(t, "members", "extra", "--server", addr); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	// An agent without the endpoint: the error reaches the user.
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	if code, _, errOut := shoal(t, "members", "--server", ts.URL); code != 1 || errOut == "" {
		t.Errorf("no endpoint: exit %d, %q", code, errOut)
	}
}
