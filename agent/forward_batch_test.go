package agent

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// Writes a follower forwards go to the leader on a stream
// (apiserver/forward_stream.go), each still authorised on the leader as the
// user who sent it, or, for an agent's own writes, under NodeRestriction;
// and only agents may send streams or batches.
func TestForwardedWritesKeepTheirAuthority(t *testing.T) {
	// Every forwarded write on a stream (the default) or, if streams
	// were refused, in a batch, even one at a time.
	forwardBatchAlways = true
	t.Cleanup(func() { forwardBatchAlways = false }) // after the agents stop
	h, tas := secureAgents(t, 3)
	ctx := context.Background()
	lead := leaderOf(tas)
	if lead == nil {
		t.Fatal("no single leader")
	}
	var follower *testAgent
	for _, ta := range tas {
		if ta != lead {
			follower = ta
			break
		}
	}
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "team"}}
	api.SetTypeMeta(ns)
	if _, err := lead.client().Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	inTeam := configMap("mine")
	inTeam.Namespace = "team"

	// A write-role user through the follower: its namespace yes, others no.
	writer := follower.apiClientFor(h.ca, h.ca.token(t, "write", "team"))
	waitUntil(t, 10*time.Second, "write in team via the follower", func() string {
		if _, err := writer.Create(ctx, inTeam); err != nil && !api.IsAlreadyExists(err) {
			return err.Error()
		}
		return ""
	})
	if _, err := writer.Create(ctx, configMap("not-mine")); api.ReasonForError(err) != apiserver.ReasonForbidden {
		t.Errorf("write role outside its namespace via the follower: %v, want 403", err)
	}

	// The follower's own certificate, no token: NodeRestriction holds.
	src := h.ca.source(t, follower.cfg.NodeName, pki.RoleVoter)
	asAgent := api.NewClient("https://"+follower.Addr(), api.WithRequestTimeout(5*time.Second),
		api.WithHTTPClient(httpsClient(src.ClientConfig())))
	if _, err := asAgent.Create(ctx, configMap("by-agent")); api.ReasonForError(err) != apiserver.ReasonForbidden {
		t.Errorf("an agent certificate creating a ConfigMap via the follower: %v, want 403", err)
	}
	// Another Node it may not create: the leader checks the body's name
	// (admitNode) against the certificate of the agent that sent it.
	other := &api.Node{ObjectMeta: api.ObjectMeta{Name: "not-" + follower.cfg.NodeName}}
	api.SetTypeMeta(other)
	if _, err := asAgent.Create(ctx, other); api.ReasonForError(err) != apiserver.ReasonForbidden {
		t.Errorf("an agent certificate creating another Node via the follower: %v, want 403", err)
	}
	// Its own Node it may update: read it, write it back.
	waitUntil(t, 10*time.Second, "the follower updates its own Node", func() string {
		obj, err := asAgent.Get(ctx, "Node", "", follower.cfg.NodeName)
		if err != nil {
			return err.Error()
		}
		if _, err := asAgent.Update(ctx, obj); err != nil {
			return err.Error()
		}
		return ""
	})

	// A user, even an admin, may send neither a batch nor a stream.
	for _, path := range []string{apiserver.ForwardBatchPath, apiserver.ForwardStreamPath} {
		req, _ := http.NewRequest(http.MethodPost, "https://"+lead.Addr()+path, strings.NewReader(""))
		req.Header.Set("Authorization", "Bearer "+h.ca.token(t, "admin"))
		resp, err := httpsClient(h.ca.caOnly()).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("an admin token sending to %s: %s, want 403", path, resp.Status)
		}
	}
}
