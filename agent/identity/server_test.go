package identity

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

func TestAdminEndpointsNeedAnAdminToken(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	var tr TokensResponse
	if code := tc.adminCall(t, http.MethodGet, PathTokens, nil, "", &tr); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code := tc.adminCall(t, http.MethodGet, PathTokens, nil, "shoal.junk.junk", &tr); code != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", code)
	}
	var ro APITokenResponse
	if code := tc.adminCall(t, http.MethodPost, PathTokensAPI, APITokenRequest{Name: "viewer", Role: RoleReadOnly, TTL: "1h"}, tc.admin, &ro); code != http.StatusOK {
		t.Fatalf("issuing a read-only token: %d", code)
	}
	caCert, _ := pki.ParseCertPEM(tc.local.CACert)
	c, err := pki.VerifyToken(caCert, ro.Token, time.Now())
	if err != nil || c.Role != RoleReadOnly || c.Name != "viewer" || c.ExpiresAt.Sub(c.IssuedAt) != time.Hour {
		t.Fatalf("issued token claims %+v, %v", c, err)
	}
	for _, p := range []struct{ method, path string }{{http.MethodGet, PathTokens}, {http.MethodPost, PathTokensRotate}, {http.MethodPost, PathTokensAPI}} {
		if code := tc.adminCall(t, p.method, p.path, RotateRequest{Role: "worker"}, ro.Token, nil); code != http.StatusForbidden {
			t.Errorf("%s %s with a read-only token: %d, want 403", p.method, p.path, code)
		}
	}
	// Another cluster's admin token is refused.
	other := newTestCluster(t, clusterOpts{})
	if code := tc.adminCall(t, http.MethodGet, PathTokens, nil, other.admin, &tr); code != http.StatusUnauthorized {
		t.Errorf("another cluster's admin token: %d, want 401", code)
	}
}

func TestAPITokenRequestValidation(t *testing.T) {
	caEnd := time.Now().Add(10 * 365 * 24 * time.Hour)
	for _, c := range []struct {
		req  APITokenRequest
		want string
	}{
		{APITokenRequest{Role: RoleAdmin}, "name"},
		{APITokenRequest{Name: "a b", Role: RoleAdmin}, "name"},
		{APITokenRequest{Name: "a", Role: "root"}, "role"},
		{APITokenRequest{Name: "a", Role: RoleAdmin, Namespaces: []string{"x"}}, "namespaces"},
		{APITokenRequest{Name: "a", Role: RoleWrite}, "namespaces"},
		{APITokenRequest{Name: "a", Role: RoleWrite, Namespaces: []string{"Bad"}}, "namespaces[0]"},
		{APITokenRequest{Name: "a", Role: RoleReadOnly, TTL: "soon"}, "ttl"},
		{APITokenRequest{Name: "a", Role: RoleReadOnly, TTL: "-1h"}, "ttl"},
	} {
		if _, err := claimsOf(c.req, time.Now(), caEnd); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("claimsOf(%+v) = %v; want an error naming %s", c.req, err, c.want)
		}
	}
	now := time.Now()
	cl, err := claimsOf(APITokenRequest{Name: "ci", Role: RoleWrite, Namespaces: []string{"apps"}}, now, caEnd)
	if err != nil || !cl.ExpiresAt.Equal(caEnd) {
		t.Errorf("no ttl: %+v, %v; want expiry with the CA", cl, err)
	}
}

// postJoin sends a join body straight to the handler, from src.
func postJoin(s *Server, src string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, PathJoin, bytes.NewReader(body))
	r.RemoteAddr = src + ":4000"
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestFailedJoinsAreRateLimitedPerSource(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tc := newTestCluster(t, clusterOpts{cfg: ServerConfig{Now: clock, FailureLimit: 3, FailureWindow: time.Minute}})
	bad, _ := json.Marshal(JoinRequest{Token: "SHOAL-1-" + strings.Repeat("a", 26), Node: "x", CSR: "junk"})
	for i := range 3 {
		if w := postJoin(tc.server, "192.0.2.1", bad); w.Code == http.StatusTooManyRequests || w.Code == http.StatusOK {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	w := postJoin(tc.server, "192.0.2.1", bad)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("4th failure from one source: %d, want 429 with Retry-After", w.Code)
	}
	var st api.Status
	json.Unmarshal(w.Body.Bytes(), &st)
	if st.Kind != "Status" || st.Code != http.StatusTooManyRequests {
		t.Errorf("429 body %+v, want a Status", st)
	}
	// Another source is not affected, and the window ends.
	if w := postJoin(tc.server, "192.0.2.2", bad); w.Code == http.StatusTooManyRequests {
		t.Errorf("another source got 429")
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if w := postJoin(tc.server, "192.0.2.1", bad); w.Code == http.StatusTooManyRequests {
		t.Errorf("429 after the window ended")
	}
}

func TestJoinRequestErrorsNameTheField(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{cfg: ServerConfig{FailureLimit: 1000}})
	voter, _ := tc.tokens(t)
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "n2", nil)
	for _, c := range []struct {
		name string
		body string
		code int
		want string
	}{
		{"not json", "{", 400, "body"},
		{"unknown field", `{"token":"x","role":"voter"}`, 400, "role"},
		{"bad token", `{"token":"SHOAL-2-x","node":"n2"}`, 401, "token"},
		{"bad node", mustJSON(JoinRequest{Token: voter.String(), Node: "N_2", CSR: string(csr)}), 400, "node"},
		{"bad ip", mustJSON(JoinRequest{Token: voter.String(), Node: "n2", CSR: string(csr), IPs: []string{"1.2.3"}}), 400, "ips[0]"},
		{"bad csr", mustJSON(JoinRequest{Token: voter.String(), Node: "n2", CSR: "junk"}), 400, "csr"},
		{"csr for another node", mustJSON(JoinRequest{Token: voter.String(), Node: "n3", CSR: string(csr)}), 400, "csr"},
		{"too large", `{"token":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, "body"},
	} {
		w := postJoin(tc.server, "192.0.2.9", []byte(c.body))
		var st api.Status
		json.Unmarshal(w.Body.Bytes(), &st)
		if w.Code != c.code || !strings.Contains(st.Message, c.want) {
			t.Errorf("%s: %d %q; want %d naming %s", c.name, w.Code, st.Message, c.code, c.want)
		}
	}
	if w := postJoin(tc.server, "192.0.2.9", []byte(mustJSON(JoinRequest{Token: voter.String(), Node: "n2", CSR: string(csr)}))); w.Code != http.StatusOK {
		t.Errorf("a good request after the bad ones: %d %s", w.Code, w.Body)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestServerConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{}, "Cluster"},
		{ServerConfig{Cluster: &fakeCluster{}, CertTTL: time.Second}, "CertTTL"},
		{ServerConfig{Cluster: &fakeCluster{}, FailureLimit: -1}, "FailureLimit"},
		{ServerConfig{Cluster: &fakeCluster{}, FailureWindow: -1}, "FailureWindow"},
	} {
		if _, err := NewServer(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewServer(%+v) = %v; want an error naming %s", c.cfg, err, c.want)
		}
	}
}

func TestConcurrentRotationsAllSucceed(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	const n = 6
	codes := make(chan int, n)
	results := make(chan TokensResponse, n)
	for i := range n {
		role := []string{"voter", "worker"}[i%2]
		go func() {
			var tr TokensResponse
			codes <- tc.adminCall(t, http.MethodPost, PathTokensRotate, RotateRequest{Role: role}, tc.admin, &tr)
			results <- tr
		}()
	}
	for range n {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("a rotation concurrent with others: %d, want 200", code)
		}
		<-results
	}
	// Whatever the order, the record holds one voter and one worker token
	// that work.
	voter, worker := tc.tokens(t)
	for _, tok := range []pki.JoinToken{voter, worker} {
		if _, err := Join(ctxTimeout(t, 30*time.Second), []string{tc.addr}, tok, "n9", testIPs); err != nil {
			t.Errorf("Join with the final token: %v", err)
		}
	}
}

func TestSourceOfNamesTheThrottledClient(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{cfg: ServerConfig{
		FailureLimit: 1,
		SourceOf:     func(r *http.Request) string { return r.Header.Get("X-Test-Client") },
	}})
	bad := []byte(`{"token":"x"}`)
	send := func(client string) int {
		r := httptest.NewRequest(http.MethodPost, PathJoin, bytes.NewReader(bad))
		r.Header.Set("X-Test-Client", client)
		w := httptest.NewRecorder()
		tc.server.ServeHTTP(w, r)
		return w.Code
	}
	send("a")
	if code := send("a"); code != http.StatusTooManyRequests {
		t.Errorf("client a's second failure: %d, want 429", code)
	}
	if code := send("b"); code == http.StatusTooManyRequests {
		t.Errorf("client b, relayed by the same agent, was throttled for a's failures")
	}
}

func TestUnknownRoutesAnswerStatus(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	for _, c := range []struct {
		method, path string
		code         int
	}{{http.MethodGet, PathJoin, 405}, {http.MethodDelete, PathTokens, 405}, {http.MethodGet, "/v1/elsewhere", 404}} {
		w := httptest.NewRecorder()
		tc.server.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		var st api.Status
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || w.Code != c.code || st.Kind != "Status" {
			t.Errorf("%s %s: %d %s; want %d with a Status", c.method, c.path, w.Code, w.Body, c.code)
		}
	}
}
