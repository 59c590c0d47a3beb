package apiserver

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// seen is what the echo handler behind the middleware reports.
type seen struct {
	Identity  *Identity `json:"identity"`
	Forwarded string    `json:"forwarded"`
	Other     string    `json:"other"`
}

// echoHandler answers with the identity the middleware passed on and the
// X-Shoal-* headers it let through.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		if id, ok := IdentityFrom(r.Context()); ok {
			s.Identity = &id
		}
		s.Forwarded = r.Header.Get(ForwardedHeader)
		s.Other = r.Header.Get("x-shoal-other")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
}

func TestAuthHandlerTLS(t *testing.T) {
	f := newTLSFixture(t, echoHandler())
	n1 := f.ca.leaf(t, "n1", "worker")
	foreign := newTestCA(t, "another CA").leaf(t, "n1", "voter")
	anon, agent := f.client(nil), f.client(&n1)
	shoalHdr := map[string]string{ForwardedHeader: "n9", "X-Shoal-Other": "x"}

	t.Run("no credentials is 401", func(t *testing.T) {
		r := mustCode(t, f.do(anon, "GET", "/api/v1/namespaces/default/pods", "", "", nil), http.StatusUnauthorized)
		st := r.status(t)
		if st.Reason != ReasonUnauthorized || !strings.Contains(st.Message, `list pods in namespace "default"`) {
			t.Errorf("status %+v", st)
		}
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
			t.Errorf("WWW-Authenticate %q", got)
		}
	})
	t.Run("a bad token is 401, even with an agent certificate", func(t *testing.T) {
		for _, c := range []*http.Client{anon, agent} {
			r := mustCode(t, f.do(c, "GET", "/api/v1/pods", "forged", "", nil), http.StatusUnauthorized)
			if st := r.status(t); st.Reason != ReasonUnauthorized || strings.Contains(st.Message, "forged") {
				t.Errorf("status %+v (must not echo the token)", st)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, "invalid_token") {
				t.Errorf("WWW-Authenticate %q", got)
			}
		}
		mustCode(t, f.do(anon, "GET", "/api/v1/pods", "", "", map[string]string{"Authorization": "Basic cm9vdDpyb290"}), http.StatusUnauthorized)
	})
	t.Run("a certificate of another CA is refused", func(t *testing.T) {
		// Go's client offers only a certificate the server says it
		// accepts: anonymous, then.
		r := mustCode(t, f.do(f.client(&foreign), "GET", "/api/v1/pods", "", "", shoalHdr), http.StatusUnauthorized)
		if st := r.status(t); st.Reason != ReasonUnauthorized {
			t.Errorf("status %+v", st)
		}
		// Forced on the server, it fails the handshake.
		forced := f.client(nil)
		forced.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &foreign, nil
		}
		req, _ := http.NewRequest("GET", f.ts.URL+"/api/v1/pods", nil)
		if resp, err := forced.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("HTTP %d, want a failed handshake", resp.StatusCode)
		}
	})
	t.Run("X-Shoal headers of a token user without agent certificate are stripped", func(t *testing.T) {
		s := decode[seen](t, mustCode(t, f.do(anon, "GET", "/api/v1/pods", "admin-token", "", shoalHdr), 200))
		if s.Forwarded != "" || s.Other != "" {
			t.Errorf("X-Shoal headers passed: %+v", s)
		}
		if s.Identity == nil || s.Identity.User != "root" || s.Identity.Node != "" {
			t.Errorf("identity %+v", s.Identity)
		}
	})
	t.Run("an agent forwarding a user's request keeps the user and its headers", func(t *testing.T) {
		s := decode[seen](t, mustCode(t, f.do(agent, "GET", "/api/v1/pods", "ro-token", "", shoalHdr), 200))
		if s.Forwarded != "n9" || s.Other != "x" {
			t.Errorf("X-Shoal headers from an agent were stripped: %+v", s)
		}
		if s.Identity == nil || s.Identity.User != "viewer" || s.Identity.Node != "" {
			t.Errorf("identity %+v, want the token's user", s.Identity)
		}
		// ...and the user's rights, not the agent's.
		mustCode(t, f.do(agent, "PUT", "/api/v1/nodes/n1", "ro-token", "{}", shoalHdr), http.StatusForbidden)
	})
	t.Run("an agent certificate alone is the node", func(t *testing.T) {
		s := decode[seen](t, mustCode(t, f.do(agent, "GET", "/api/v1/nodes", "", "", shoalHdr), 200))
		if s.Identity == nil || s.Identity.Node != "n1" || s.Forwarded != "n9" {
			t.Errorf("seen %+v", s)
		}
		mustCode(t, f.do(agent, "POST", "/api/v1/namespaces/default/pods", "", "{}", nil), http.StatusForbidden)
	})
	t.Run("a token never makes an agent", func(t *testing.T) {
		s := decode[seen](t, mustCode(t, f.do(anon, "GET", "/api/v1/pods", "node-token", "", nil), 200))
		if s.Identity == nil || s.Identity.Node != "" || s.Identity.User != "odd" {
			t.Errorf("identity %+v", s.Identity)
		}
		mustCode(t, f.do(anon, "PUT", "/api/v1/nodes/n1", "node-token", "{}", nil), http.StatusForbidden)
	})
	t.Run("forbidden is 403 naming who and what", func(t *testing.T) {
		st := mustCode(t, f.do(anon, "POST", "/api/v1/namespaces/default/pods", "ro-token", "{}", nil), http.StatusForbidden).status(t)
		for _, want := range []string{`user "viewer"`, "create pods", `namespace "default"`} {
			if st.Reason != ReasonForbidden || !strings.Contains(st.Message, want) {
				t.Errorf("status %+v does not say %q", st, want)
			}
		}
		mustCode(t, f.do(anon, "POST", "/api/v1/namespaces/default/pods/web/exec", "ro-token", "", nil), http.StatusForbidden)
		// kubectl's WebSocket upgrades are GETs: still no reader's, nor an
		// agent certificate's.
		for _, sub := range []string{"exec", "attach", "portforward"} {
			mustCode(t, f.do(anon, "GET", "/api/v1/namespaces/default/pods/web/"+sub, "ro-token", "", nil), http.StatusForbidden)
			mustCode(t, f.do(agent, "GET", "/api/v1/namespaces/default/pods/web/"+sub, "", "", nil), http.StatusForbidden)
		}
		mustCode(t, f.do(anon, "GET", "/api/v1/namespaces/default/pods/web/log", "ro-token", "", nil), 200)
		mustCode(t, f.do(anon, "POST", "/api/v1/namespaces/default/pods", "dev-token", "{}", nil), 200)
		mustCode(t, f.do(anon, "POST", "/api/v1/namespaces/kube/pods", "dev-token", "{}", nil), http.StatusForbidden)
	})
	t.Run("public paths need nothing, and still lose X-Shoal headers", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/version", "/v1/join", "/v1/join/ca"} {
			s := decode[seen](t, mustCode(t, f.do(anon, "GET", p, "", "", shoalHdr), 200))
			if s.Forwarded != "" || s.Identity != nil {
				t.Errorf("%s: seen %+v", p, s)
			}
		}
		mustCode(t, f.do(anon, "GET", "/v1/joinx", "", "", nil), http.StatusUnauthorized)
		mustCode(t, f.do(anon, "GET", "/v1/join/../cluster/tokens", "", "", nil), http.StatusUnauthorized)
		mustCode(t, f.do(anon, "GET", "/v1/join%2F..%2Fcluster%2Ftokens", "", "", nil), http.StatusUnauthorized)
		mustCode(t, f.do(anon, "GET", "/healthzz", "", "", nil), http.StatusUnauthorized)
	})
}

// TestAuthHandlerInsecure: without an Authenticator everything passes as
// an admin, agents' headers included (there is no TLS to tell agents).
func TestAuthHandlerInsecure(t *testing.T) {
	ts := httptest.NewServer(NewAuthHandler(echoHandler(), AuthConfig{}))
	t.Cleanup(ts.Close)
	req, _ := http.NewRequest("DELETE", ts.URL+"/v1/cluster/raft/voters/n1", nil)
	req.Header.Set(ForwardedHeader, "n2")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP %d, %v", resp.StatusCode, err)
	}
	if s.Identity == nil || s.Identity.Role != RoleAdmin || s.Forwarded != "n2" {
		t.Errorf("seen %+v", s)
	}
}

// TestAuthHandlerPlainHTTP: over plain HTTP no client is an agent, so
// only tokens count and X-Shoal headers go.
func TestAuthHandlerPlainHTTP(t *testing.T) {
	ts := httptest.NewServer(NewAuthHandler(echoHandler(), AuthConfig{Auth: fakeAuth{tokens: testTokens}, Public: []string{}}))
	t.Cleanup(ts.Close)
	for _, c := range []struct {
		path, token string
		code        int
	}{
		{"/healthz", "", http.StatusUnauthorized}, // Public is empty, not the default
		{"/healthz", "admin-token", 200},
		{"/api/v1/pods", "ro-token", 200},
	} {
		req, _ := http.NewRequest("GET", ts.URL+c.path, nil)
		req.Header.Set(ForwardedHeader, "n2")
		if c.token != "" {
			req.Header.Set("Authorization", "bearer "+c.token)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var s seen
		json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if resp.StatusCode != c.code || s.Forwarded != "" {
			t.Errorf("%s with %q: HTTP %d (want %d), seen %+v", c.path, c.token, resp.StatusCode, c.code, s)
		}
	}
}
