package agent

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/api"
)

// TestRevokedNodeIsRefused: once an admin revokes a joined agent, the
// voter refuses its certificate in new TLS handshakes (its own and other
// agents' still pass), and it cannot renew.
func TestRevokedNodeIsRefused(t *testing.T) {
	h := newHarness(t, fastTimings)
	b0 := bootstrapSecure(t, h, 0)
	var toks identity.TokensResponse
	adminCall(t, b0, http.MethodGet, identity.PathTokens, nil, &toks)
	w1 := h.build(joinConfig(h, "w1", b0, toks.Worker))
	if err := w1.Start(); err != nil {
		t.Fatal(err)
	}
	h.run(w1, nil)
	handshake := func(ta *testAgent) error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", b0.Addr(), ta.tls.ClientConfig())
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3: the server's verdict on the client certificate arrives
		// with the first read.
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		buf := make([]byte, 64)
		_, err = c.Read(buf)
		return err
	}
	if err := handshake(w1); err != nil {
		t.Fatalf("w1 before its revocation: %v", err)
	}
	var resp identity.RevokeResponse
	adminCall(t, b0, http.MethodPost, identity.PathRevoke, identity.RevokeRequest{Node: "w1"}, &resp)
	waitUntil(t, 10*time.Second, "the voter refuses w1", func() string {
		if err := handshake(w1); err == nil {
			return "w1's handshake passed"
		}
		return ""
	})
	if err := handshake(b0); err != nil {
		t.Errorf("the voter's own certificate after w1's revocation: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := api.NewClient("https://"+b0.Addr(), api.WithTLSConfig(mustTLSFromFile(t, b0)), api.WithBearerToken(adminToken(t, b0)))
	if _, err := c.Get(ctx, "Namespace", "", "default"); err != nil {
		t.Errorf("an admin token after w1's revocation: %v", err)
	}
}
