package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// bootstrapSecure starts one agent that makes a new cluster's identity
// (certificates of certTTL, 0 for the default) and waits until its record
// is in the store.
func bootstrapSecure(t *testing.T, h *harness, certTTL time.Duration) *testAgent {
	t.Helper()
	cfg := h.config("b0", "z0")
	cfg.Insecure = false
	cfg.Bootstrap = true
	cfg.CertTTL = certTTL
	ta := h.build(cfg)
	if err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(ta, nil)
	waitUntil(t, 20*time.Second, "the identity record in the store", func() string {
		if _, err := ta.Store().Get(recordKey); err != nil {
			return err.Error()
		}
		return ""
	})
	return ta
}

// adminCall sends an admin request to ta's identity endpoints and decodes
// the answer into out.
func adminCall(t *testing.T, ta *testAgent, method, path string, body, out any) {
	t.Helper()
	tc, tok := mustTLSFromFile(t, ta), adminToken(t, ta)
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "https://"+ta.Addr()+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpsClient(tc).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// joinConfig is a secure agent's configuration that joins through b0 with
// tok.
func joinConfig(h *harness, name string, b0 *testAgent, tok string) Config {
	cfg := h.config(name, "z1")
	cfg.Insecure = false
	cfg.Token = tok
	cfg.JoinAPI = []string{b0.Addr()}
	cfg.JoinTimeout = 20 * time.Second
	return cfg
}

// An agent joins with the worker token: it gets a worker certificate from
// the cluster's CA and serves the API (its writes forwarded over mutual
// TLS); a wrong token, and the token rotated since, cannot join.
func TestJoinWithToken(t *testing.T) {
	h := newHarness(t, fastTimings)
	b0 := bootstrapSecure(t, h, 0)
	var toks identity.TokensResponse
	adminCall(t, b0, http.MethodGet, identity.PathTokens, nil, &toks)

	cfg := joinConfig(h, "w1", b0, toks.Worker)
	start := time.Now()
	w1 := h.build(cfg)
	joined := time.Since(start)
	if err := w1.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(w1, nil)
	if p := w1.tls.Peer(); p.Role != pki.RoleWorker || p.Node != "w1" {
		t.Fatalf("joined with the worker token: certificate %+v", p)
	}
	if !w1.tls.CACert().Equal(b0.tls.CACert()) {
		t.Fatal("the joined agent trusts another CA")
	}
	ctx := context.Background()
	c := api.NewClient("https://"+w1.Addr(), api.WithTLSConfig(mustTLSFromFile(t, b0)), api.WithBearerToken(adminToken(t, b0)),
		api.WithRequestTimeout(5*time.Second))
	waitUntil(t, 30*time.Second, "w1 Ready", func() string {
		obj, err := c.Get(ctx, "Node", "", "w1")
		if err != nil {
			return err.Error()
		}
		if r := api.FindCondition(obj.(*api.Node).Status.Conditions, api.NodeReady); r == nil || r.Status != api.ConditionTrue {
			return "not ready"
		}
		return ""
	})
	// Figure (issue 10): a join with a token, from start to Ready.
	t.Logf("join with a worker token: certificate after %v, Node Ready after %v (fast test timings)", joined.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	waitUntil(t, 20*time.Second, "a write through the joined agent", func() string {
		if _, err := c.Create(ctx, configMap("via-w1")); err != nil && !api.IsAlreadyExists(err) {
			return err.Error()
		}
		return ""
	})
	waitUntil(t, 20*time.Second, "w1 in the cluster", func() string {
		if w1.ClusterID() != b0.ClusterID() {
			return fmt.Sprintf("cluster %q, want %q", w1.ClusterID(), b0.ClusterID())
		}
		return ""
	})

	// A wrong secret under the right fingerprint.
	bad, _ := pki.NewJoinToken(toks.CAFingerprint)
	if _, err := New(joinConfig(h, "x1", b0, bad.String())); err == nil {
		t.Fatal("joined with a wrong token")
	} else {
		t.Logf("wrong token: %v", err)
	}
	// The worker token, rotated.
	var rotated identity.TokensResponse
	adminCall(t, b0, http.MethodPost, identity.PathTokensRotate, identity.RotateRequest{Role: "worker"}, &rotated)
	if rotated.Worker == toks.Worker {
		t.Fatal("the rotation kept the token")
	}
	if _, err := New(joinConfig(h, "x2", b0, toks.Worker)); err == nil {
		t.Fatal("joined with a rotated token")
	} else {
		t.Logf("rotated token: %v", err)
	}
	// A token pinning another CA.
	other, _ := pki.NewJoinToken(strings.Repeat("a", 52))
	if _, err := New(joinConfig(h, "x3", b0, other.String())); err == nil {
		t.Fatal("joined with a token that pins another CA")
	}
}

func adminToken(t *testing.T, ta *testAgent) string {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(ta.cfg.DataDir, identity.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(tok))
}

func mustTLSFromFile(t *testing.T, ta *testAgent) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(ta.cfg.DataDir, identity.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := api.TLSConfigFromCA(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// Two agents join with the voter token and are promoted (promotion and
// Raft over mutual TLS with the certificates they were given); with
// certificates of a minute, every agent's certificate is renewed while the
// cluster runs, and writes still flow through each agent afterwards.
func TestJoinedVotersAndRenewal(t *testing.T) {
	h := newHarness(t, fastTimings)
	b0 := bootstrapSecure(t, h, pki.MinCertTTL)
	var toks identity.TokensResponse
	adminCall(t, b0, http.MethodGet, identity.PathTokens, nil, &toks)
	tas := []*testAgent{b0}
	for _, name := range []string{"v1", "v2"} {
		ta := h.build(joinConfig(h, name, b0, toks.Voter))
		if err := ta.Start(); err != nil {
			t.Fatal(err)
		}
		h.run(ta, nil)
		if p := ta.tls.Peer(); p.Role != pki.RoleVoter {
			t.Fatalf("%s joined with the voter token: role %s", name, p.Role)
		}
		tas = append(tas, ta)
	}
	waitUntil(t, 60*time.Second, "3 voters", func() string { return settled(tas, 3) })
	serials := map[string]string{}
	for _, ta := range tas[1:] {
		serials[ta.cfg.NodeName] = ta.tls.Peer().Serial
	}
	// A certificate of a minute (backdated by pki.ClockSkew) is renewed
	// at two thirds of its life: about 20s after it was issued.
	waitUntil(t, 90*time.Second, "the joined agents' certificates renewed", func() string {
		for _, ta := range tas[1:] {
			if ta.tls.Peer().Serial == serials[ta.cfg.NodeName] {
				return ta.cfg.NodeName + " still has its first certificate"
			}
		}
		return ""
	})
	ctx := context.Background()
	for _, ta := range tas {
		c := api.NewClient("https://"+ta.Addr(), api.WithTLSConfig(mustTLSFromFile(t, b0)), api.WithBearerToken(adminToken(t, b0)),
			api.WithRequestTimeout(5*time.Second))
		name := "after-renewal-" + ta.cfg.NodeName
		waitUntil(t, 20*time.Second, "a write through "+ta.cfg.NodeName, func() string {
			if _, err := c.Create(ctx, configMap(name)); err != nil && !api.IsAlreadyExists(err) {
				return err.Error()
			}
			return ""
		})
	}
	waitUntil(t, 30*time.Second, "still 3 voters", func() string { return settled(tas, 3) })
	// The renewed certificate is on disk for the next start.
	for _, ta := range tas[1:] {
		l, err := identity.Load(ta.cfg.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := l.Peer()
		if p.Serial == serials[ta.cfg.NodeName] {
			t.Errorf("%s: the renewed certificate was not saved", ta.cfg.NodeName)
		}
	}
}

// Three agents started at once with --bootstrap-expect 3 and the same
// bootstrap token (shoal token generate) form one secure cluster: the
// lowest-named makes the identity, the others fetch their voter
// certificates from it, and the voter manager seats all three.
func TestBootstrapToken(t *testing.T) {
	h := newHarness(t, fastTimings)
	tok, err := pki.NewBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	tas := startWithBootstrapToken(t, h, h.configs(3, "t"), tok, 3)
	waitUntil(t, 60*time.Second, "3 voters", func() string { return settled(tas, 3) })
	for _, ta := range tas {
		if p := ta.tls.Peer(); p.Role != pki.RoleVoter || !ta.tls.CACert().Equal(tas[0].tls.CACert()) {
			t.Errorf("%s: role %s, CA shared %v", ta.cfg.NodeName, p.Role, ta.tls.CACert().Equal(tas[0].tls.CACert()))
		}
	}
	if !strings.Contains(tas[0].logs.String(), "bootstrap token: making the cluster identity") {
		t.Error("t0, the lowest name, did not make the identity")
	}
	// A different bootstrap token cannot get in: its gossip key differs,
	// and the members' record holds another secret.
	other, _ := pki.NewBootstrapToken()
	cfg := h.config("t9", "z0")
	cfg.Insecure, cfg.Token, cfg.BootstrapExpect = false, other.String(), 3
	cfg.JoinTimeout = 3 * time.Second
	if _, err := h.tryBuild(cfg); err == nil {
		t.Fatal("an agent with another bootstrap token got an identity")
	}
}

// TestBootstrapTokenMoreAgentsThanExpected: five agents with one bootstrap
// token and --bootstrap-expect 3, started at once, each --join all the
// others, form one cluster with one CA. The agent that makes the identity
// must stay a member of the first gossip until its own gossip takes over:
// had it left, four agents in no cluster would remain and the lowest of
// them would make a second identity.
func TestBootstrapTokenMoreAgentsThanExpected(t *testing.T) {
	h := newHarness(t, fastTimings)
	tok, err := pki.NewBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	tas := startWithBootstrapToken(t, h, h.configs(5, "m"), tok, 3)
	made := 0
	for _, ta := range tas {
		if strings.Contains(ta.logs.String(), "bootstrap token: making the cluster identity") {
			made++
		}
		if !ta.tls.CACert().Equal(tas[0].tls.CACert()) {
			t.Errorf("%s trusts another CA than %s", ta.cfg.NodeName, tas[0].cfg.NodeName)
		}
	}
	if made != 1 {
		t.Fatalf("%d agents made a cluster identity, want 1", made)
	}
	waitUntil(t, 60*time.Second, "one cluster, 3 voters", func() string { return settled(tas, 3) })
}

// startWithBootstrapToken builds and starts the agents of cfgs at once,
// secure, sharing the bootstrap token tok, with --bootstrap-expect expect.
func startWithBootstrapToken(t *testing.T, h *harness, cfgs []Config, tok pki.JoinToken, expect int) []*testAgent {
	t.Helper()
	var wg sync.WaitGroup
	tas := make([]*testAgent, len(cfgs))
	for i := range cfgs {
		cfgs[i].Insecure = false
		cfgs[i].Token = tok.String()
		cfgs[i].BootstrapExpect = expect
		cfgs[i].JoinTimeout = time.Minute
		wg.Add(1)
		go func() {
			defer wg.Done()
			ta, err := h.tryBuild(cfgs[i])
			if err != nil {
				t.Errorf("%s: %v", cfgs[i].NodeName, err)
				return
			}
			if err := ta.Start(); err != nil {
				t.Errorf("%s: start: %v", cfgs[i].NodeName, err)
				return
			}
			h.run(ta, nil)
			tas[i] = ta
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return tas
}
