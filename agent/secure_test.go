package agent

// Tests of the security model (issue 10) on the secure harness: every link
// between agents runs TLS from the cluster CA.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// secureAgents starts a settled secure cluster of n agents (bootstrap-expect
// n, 3 voters or 1).
func secureAgents(t *testing.T, n int) (*harness, []*testAgent) {
	h := newSecureHarness(t, fastTimings)
	cfgs := h.configs(n, "s")
	for j := range cfgs {
		cfgs[j].BootstrapExpect = n
	}
	tas := h.start(cfgs...)
	want := min(n, 3)
	waitUntil(t, 30*time.Second, "settled", func() string { return settled(tas, want) })
	return h, tas
}

// Over TLS on every link: the cluster forms (Raft), writes through every
// agent reach the leader (forwarding), non-voters learn the leader (probes),
// and every agent registers its Node (its own client).
func TestSecureClusterWorks(t *testing.T) {
	_, tas := secureAgents(t, 4)
	ctx := context.Background()
	for _, ta := range tas {
		name := "via-" + ta.cfg.NodeName
		waitUntil(t, 10*time.Second, "write through "+ta.cfg.NodeName, func() string {
			if _, err := ta.client().Create(ctx, configMap(name)); err != nil && !api.IsAlreadyExists(err) {
				return err.Error()
			}
			return ""
		})
	}
	c := tas[3].client()
	for _, ta := range tas {
		waitUntil(t, 10*time.Second, "node "+ta.cfg.NodeName+" ready", func() string {
			if r := nodeReady(ctx, tas[3], ta.cfg.NodeName); r != api.ConditionTrue {
				return fmt.Sprintf("ready %q", r)
			}
			return ""
		})
	}
	if _, _, err := c.List(ctx, "ConfigMap", "default", api.ListOptions{}); err != nil {
		t.Fatalf("list: %v", err)
	}
}

// raftHandshake opens a TLS connection to a voter's Raft port with src's
// Raft configuration and says whether the voter kept it open: "" when it
// waits for an RPC (accepted), else why it was refused.
func raftHandshake(t *testing.T, addr string, src TLSSource) string {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, src.RaftConfig())
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	// In TLS 1.3 the server judges the client's certificate after the
	// client's handshake returns: a refusal arrives as an alert on read.
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	return fmt.Sprintf("read: %v", err)
}

// A certificate from another CA is refused on the API, on Raft and by the
// forwarder; a worker certificate of the cluster's own CA cannot open a
// Raft connection.
func TestForeignCertificatesRefused(t *testing.T) {
	h, tas := secureAgents(t, 3)
	ctx := context.Background()
	lead := leaderOf(tas)
	other := newTestCA(t)
	foreign := other.source(t, lead.cfg.NodeName, pki.RoleVoter) // even naming the leader

	// API: the handshake fails either way (the agent refuses the client's
	// certificate; the client does not trust the agent's).
	hc := httpsClient(foreign.ClientConfig())
	resp, err := hc.Get("https://" + lead.Addr() + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET /healthz with a foreign certificate: HTTP %d, want a refused handshake", resp.StatusCode)
	}
	// Raft: a voter certificate of this CA is accepted, a foreign one and
	// a worker one are refused.
	raftAddr := lead.raftAdv
	if why := raftHandshake(t, raftAddr, h.ca.source(t, "s1", pki.RoleVoter)); why != "" {
		t.Fatalf("raft with a voter certificate of the cluster CA: %s", why)
	}
	if why := raftHandshake(t, raftAddr, foreign); why == "" {
		t.Error("raft accepted a certificate from another CA")
	}
	if why := raftHandshake(t, raftAddr, h.ca.source(t, "w1", pki.RoleWorker)); why == "" {
		t.Error("raft accepted a worker certificate")
	}
	// Forwarding: an agent holding a foreign certificate (it joined
	// gossip, which is not encrypted in this test) cannot get a write to
	// the leader.
	cfg := h.config("rogue", "z0")
	cfg.TLS = other.source(t, "rogue", pki.RoleVoter)
	rogue := h.build(cfg)
	if err := rogue.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(rogue, nil)
	waitUntil(t, 10*time.Second, "the rogue sees the leader in gossip", func() string {
		if rogue.memberAPI(lead.cfg.NodeName) == "" {
			return "not yet"
		}
		return ""
	})
	// (The machine is shared and loaded: let the cluster settle first, so
	// that a refusal is the certificate's doing, not an election's.)
	waitUntil(t, 30*time.Second, "settled", func() string { return settled(tas, 3) })
	_, err = rogue.client().Create(ctx, configMap("from-rogue"))
	if err == nil {
		t.Fatal("a write forwarded by an agent with a foreign certificate was accepted")
	}
	t.Logf("the rogue's write: %v", err)
	waitUntil(t, 30*time.Second, "the leader answers", func() string {
		_, err := lead.client().Get(ctx, "ConfigMap", "default", "from-rogue")
		switch {
		case api.IsNotFound(err):
			return ""
		case err == nil:
			t.Fatal("the rogue's write reached the store")
		}
		return err.Error()
	})
}

// A forged demotion (no certificate, or the certificate of an agent that
// is not the leader) is refused with 403, and even the leader's request
// is refused while the Raft configuration still holds the voter: its log
// stays intact.
func TestForgedDemotionRefused(t *testing.T) {
	h, tas := secureAgents(t, 3)
	lead := leaderOf(tas)
	var target, bystander *testAgent
	for _, ta := range followers(tas) {
		if target == nil {
			target = ta
		} else {
			bystander = ta
		}
	}
	cid := target.ClusterID()
	body := fmt.Sprintf(`{"cluster":%q,"leader":%q}`, cid, lead.cfg.NodeName)
	post := func(src TLSSource) int {
		hc := httpsClient(h.ca.caOnly())
		if src != nil {
			hc = httpsClient(src.ClientConfig())
		}
		resp, err := hc.Post("https://"+target.Addr()+"/v1/cluster/demote", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(nil); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("demotion without a certificate: HTTP %d, want 401 or 403", code)
	}
	if code := post(h.ca.source(t, bystander.cfg.NodeName, pki.RoleVoter)); code != http.StatusForbidden {
		t.Errorf("demotion with a non-leader agent's certificate: HTTP %d, want 403", code)
	}
	// The leader's own certificate, but the voter was not removed.
	if code := post(lead.cfg.TLS); code/100 == 2 {
		t.Errorf("demotion of a voter still in the configuration: HTTP %d, want a refusal", code)
	}
	if target.Node() == nil {
		t.Fatal("the target stopped raft")
	}
	if _, err := os.Stat(filepath.Join(target.cfg.DataDir, "raft", "raft.db")); err != nil {
		t.Fatalf("the target's raft log is gone: %v", err)
	}
	waitUntil(t, 10*time.Second, "still settled", func() string { return settled(tas, 3) })
}

// The API wants credentials: none or a token from another CA gets 401, an
// admin token of the cluster's CA gets through.
func TestAPIWantsCredentials(t *testing.T) {
	h, tas := secureAgents(t, 1)
	ta := tas[0]
	ctx := context.Background()
	for name, tok := range map[string]string{"no token": "", "another CA's token": newTestCA(t).token(t, "admin")} {
		_, err := ta.apiClientFor(h.ca, tok).Get(ctx, "Namespace", "", "default")
		var se *api.StatusError
		if !errors.As(err, &se) || se.Status().Code != http.StatusUnauthorized {
			t.Errorf("%s: %v, want 401", name, err)
		}
	}
	if _, err := ta.apiClientFor(h.ca, h.ca.token(t, "admin")).Get(ctx, "Namespace", "", "default"); err != nil {
		t.Fatalf("admin token: %v", err)
	}
	// Plain http to a secure agent does not get an answer from the API.
	if resp, err := http.Get("http://" + ta.Addr() + "/api/v1/namespaces"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain http was served")
		}
	}
}

// --pprof on a secure agent answers admin tokens only.
func TestPprofNeedsAdmin(t *testing.T) {
	h := newSecureHarness(t, fastTimings)
	cfg := h.config("p0", "z0")
	cfg.BootstrapExpect = 1
	cfg.Pprof = true
	tas := h.start(cfg)
	waitUntil(t, 20*time.Second, "settled", func() string { return settled(tas, 1) })
	get := func(hc *http.Client, tok string) int {
		req, _ := http.NewRequest(http.MethodGet, "https://"+tas[0].Addr()+"/debug/pprof/", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(httpsClient(h.ca.caOnly()), ""); code != http.StatusUnauthorized {
		t.Errorf("pprof without credentials: HTTP %d, want 401", code)
	}
	if code := get(httpsClient(tas[0].cfg.TLS.ClientConfig()), ""); code != http.StatusForbidden {
		t.Errorf("pprof with an agent certificate: HTTP %d, want 403", code)
	}
	if code := get(httpsClient(h.ca.caOnly()), h.ca.token(t, "read-only")); code != http.StatusForbidden {
		t.Errorf("pprof with a read-only token: HTTP %d, want 403", code)
	}
	if code := get(httpsClient(h.ca.caOnly()), h.ca.token(t, "admin")); code != http.StatusOK {
		t.Errorf("pprof with an admin token: HTTP %d, want 200", code)
	}
}
