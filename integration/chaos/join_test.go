package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// TestJoinWithToken adds agents to a running secure cluster (three agents
// bound to non-loopback addresses, each in its own namespace) the way a
// user adds a host: with the worker join token the admin reads from
// GET /v1/cluster/tokens, which pins the CA's fingerprint. The agent with
// that token gets a worker certificate (no KEK on disk) and its Node
// becomes Ready; an agent whose token has the right pin but a wrong
// secret is refused: it exits with an error and never becomes a Node.
func TestJoinWithToken(t *testing.T) {
	requireTools(t)
	bin := BuildShoal(t, t.TempDir())
	c := NewCluster(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var jt testenv.JoinTokens
	var err error
	testenv.WaitFor(t, 30*time.Second, "the join tokens from GET /v1/cluster/tokens", func() bool {
		jt, err = c.Creds.JoinTokens(ctx, c.HTTP, c.Agents[0].API())
		return err == nil
	})
	if !strings.Contains(jt.Worker, jt.CAFingerprint) || jt.Worker == jt.Voter {
		t.Fatalf("the worker token %q does not pin the CA fingerprint %q, or equals the voter token", redact(jt.Worker), jt.CAFingerprint)
	}

	// Same pin, another secret: the cluster refuses the certificate request.
	bad := c.Add(wrongSecret(jt.Worker))
	good := c.Add(jt.Worker)
	started := time.Now()
	var ready time.Duration
	testenv.WaitFor(t, 120*time.Second, "node "+good.Name+" Ready", func() bool {
		ok, _ := c.node(ctx, good.Name)
		if ok && ready == 0 {
			ready = time.Since(started)
		}
		return ok
	})
	t.Logf("join figure: %s with the worker token, process start to Node Ready: %v", good.Name, ready.Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(good.dataDir, "tls", "node.crt")); err != nil {
		t.Errorf("%s has no node certificate: %v", good.Name, err)
	}
	if _, err := os.Stat(filepath.Join(good.dataDir, "tls", "kek")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s joined with the worker token but holds a KEK (stat: %v)", good.Name, err)
	}

	testenv.WaitFor(t, 90*time.Second, bad.Name+" (wrong token secret) exits", func() bool { return !bad.Running() })
	if code := bad.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("%s with a wrong token exited with code 0", bad.Name)
	}
	if _, code := c.node(ctx, bad.Name); code != http.StatusNotFound {
		t.Errorf("GET the Node of %s (wrong token): HTTP %d, want 404", bad.Name, code)
	}
	t.Logf("%s with a wrong token, log tail:\n%s", bad.Name, testenv.Tail(bad.logPath, 5))
}

// wrongSecret is tok with its secret (the last dash-separated part)
// replaced by another of the same length and alphabet.
func wrongSecret(tok string) string {
	i := strings.LastIndex(tok, "-")
	secret := tok[i+1:]
	other := strings.Repeat("a", len(secret))
	if other == secret {
		other = strings.Repeat("b", len(secret))
	}
	return tok[:i+1] + other
}

// redact keeps a token's prefix only, for messages.
func redact(tok string) string {
	if len(tok) > 20 {
		return tok[:20] + "…"
	}
	return tok
}

// node reads Node name through the first agent: whether its Ready
// condition is True, and the HTTP status (0: no answer).
func (c *Cluster) node(ctx context.Context, name string) (ready bool, code int) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, c.URL(c.Agents[0])+"/api/v1/nodes/"+name, nil)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return false, 0
	}
	defer resp.Body.Close()
	var n api.Node
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&n) != nil {
		return false, resp.StatusCode
	}
	cd := api.FindCondition(n.Status.Conditions, api.NodeReady)
	return cd != nil && cd.Status == api.ConditionTrue, resp.StatusCode
}
