package testenv

// What a harness needs to talk to a secure cluster of real `shoal agent`
// processes (issue 10): a bootstrap token made with `shoal token
// generate` for every initial agent, then the cluster CA and the first
// admin API token, which the agent that bootstrapped writes into its data
// dir (DATA_DIR/tls/ca.crt, DATA_DIR/admin.token), and the join tokens an
// agent added later uses. Insecure clusters (--insecure, loopback only)
// use a nil *Credentials: every method then gives the plain-HTTP form.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Files in an agent's data dir (the issue 10 contract).
const (
	AdminTokenFile = "admin.token"
	CAFile         = "tls/ca.crt"
)

// Credentials are a cluster's CA and an admin bearer token, as a client
// holds them.
type Credentials struct {
	DataDir string // the data dir they were read from
	CAFile  string // DataDir/tls/ca.crt
	CAPEM   []byte
	Token   string
	tls     *tls.Config
}

// ReadCredentials reads the CA and admin token from the first of dataDirs
// that holds an admin.token (only the agent that bootstrapped has one).
func ReadCredentials(dataDirs ...string) (*Credentials, error) {
	for _, d := range dataDirs {
		tok, err := os.ReadFile(filepath.Join(d, AdminTokenFile))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		caFile := filepath.Join(d, CAFile)
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%s has an admin token but no CA: %w", d, err)
		}
		tc, err := api.TLSConfigFromCA(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", caFile, err)
		}
		token := strings.TrimSpace(string(tok))
		if token == "" {
			return nil, fmt.Errorf("%s is empty", filepath.Join(d, AdminTokenFile))
		}
		return &Credentials{DataDir: d, CAFile: caFile, CAPEM: ca, Token: token, tls: tc}, nil
	}
	return nil, fmt.Errorf("no %s in any of %s", AdminTokenFile, strings.Join(dataDirs, ", "))
}

// WaitCredentials waits (up to timeout) until one of dataDirs holds the
// bootstrap's admin token and CA, and returns them.
func WaitCredentials(t testing.TB, timeout time.Duration, dataDirs ...string) *Credentials {
	t.Helper()
	var c *Credentials
	var last error
	if !waitUntil(timeout, func() bool {
		c, last = ReadCredentials(dataDirs...)
		return last == nil
	}) {
		t.Fatalf("timed out after %v waiting for the bootstrap's credentials: %v", timeout, last)
	}
	return c
}

// Scheme is "https", or "http" for an insecure cluster (nil c).
func (c *Credentials) Scheme() string {
	if c == nil {
		return "http"
	}
	return "https"
}

// URL is the base URL of the API at addr (host:port).
func (c *Credentials) URL(addr string) string { return c.Scheme() + "://" + addr }

// TLSConfig verifies agents against the cluster CA; nil for an insecure
// cluster. Each call returns a copy.
func (c *Credentials) TLSConfig() *tls.Config {
	if c == nil {
		return nil
	}
	return c.tls.Clone()
}

// Transport makes base speak to the cluster: TLS verified against the CA
// and the admin token on every request. base is changed and wrapped; for
// a nil c it is returned as it is.
func (c *Credentials) Transport(base *http.Transport) http.RoundTripper {
	if c == nil {
		return base
	}
	base.TLSClientConfig = c.TLSConfig()
	return &bearer{token: c.Token, next: base}
}

// HTTPClient is an http.Client for raw API calls (a transport like
// api.NewClient's, timeout as given; 0 for watches).
func (c *Credentials) HTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: c.Transport(tr), Timeout: timeout}
}

// Client is an api.Client for the agents at addrs (host:port each).
func (c *Credentials) Client(addrs []string, opts ...api.ClientOption) *api.Client {
	urls := make([]string, len(addrs))
	for i, a := range addrs {
		urls[i] = c.URL(a)
	}
	if c != nil {
		opts = append([]api.ClientOption{api.WithTLSConfig(c.TLSConfig()), api.WithBearerToken(c.Token)}, opts...)
	}
	return api.NewClient(strings.Join(urls, ","), opts...)
}

// Env is what a `shoal` CLI invocation against addr needs in its
// environment: SHOAL_ADDR, and SHOAL_TOKEN and SHOAL_CA_FILE unless the
// cluster is insecure.
func (c *Credentials) Env(addr string) []string {
	env := []string{"SHOAL_ADDR=" + c.URL(addr)}
	if c != nil {
		env = append(env, "SHOAL_TOKEN="+c.Token, "SHOAL_CA_FILE="+c.CAFile)
	}
	return env
}

// JoinTokens are the cluster's current join tokens (GET /v1/cluster/tokens).
type JoinTokens struct {
	Voter         string `json:"voter"`
	Worker        string `json:"worker"`
	CAFingerprint string `json:"caFingerprint"`
}

// JoinTokens asks the agent at addr for the join tokens (admin only),
// through hc (which must carry these credentials, as Transport makes it),
// or through an HTTPClient of c's own if hc is nil.
func (c *Credentials) JoinTokens(ctx context.Context, hc *http.Client, addr string) (JoinTokens, error) {
	var jt JoinTokens
	if c == nil {
		return jt, errors.New("an insecure cluster has no join tokens")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(addr)+"/v1/cluster/tokens", nil)
	if err != nil {
		return jt, err
	}
	if hc == nil {
		hc = c.HTTPClient(10 * time.Second)
		defer hc.CloseIdleConnections()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return jt, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return jt, err
	}
	if resp.StatusCode != http.StatusOK {
		return jt, fmt.Errorf("GET /v1/cluster/tokens at %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &jt); err != nil {
		return jt, fmt.Errorf("GET /v1/cluster/tokens at %s: %w", addr, err)
	}
	if jt.Voter == "" || jt.Worker == "" {
		return jt, fmt.Errorf("GET /v1/cluster/tokens at %s: a token is missing: %s", addr, strings.TrimSpace(string(body)))
	}
	return jt, nil
}

// bearer adds the token to every request it sends.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (b *bearer) CloseIdleConnections() {
	if c, ok := b.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

var tokenPattern = regexp.MustCompile(`SHOAL-1-[a-z0-9-]+`)

// NewBootstrapToken runs `bin token generate` (the shoal binary) and
// returns the bootstrap token it prints: one per cluster, given with
// --token to every agent started with --bootstrap-expect.
func NewBootstrapToken(bin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "token", "generate").Output()
	if err != nil {
		return "", fmt.Errorf("%s token generate: %w", bin, err)
	}
	tok := tokenPattern.FindString(string(out))
	if tok == "" {
		return "", fmt.Errorf("%s token generate printed no SHOAL-1- token", bin)
	}
	return tok, nil
}

// BootstrapToken is NewBootstrapToken failing the test on error.
func BootstrapToken(t testing.TB, bin string) string {
	t.Helper()
	tok, err := NewBootstrapToken(bin)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
