package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// Join's timings.
const (
	joinRequestTimeout = 10 * time.Second
	joinMinBackoff     = 250 * time.Millisecond
	joinMaxBackoff     = 5 * time.Second
)

// PermanentError is an answer that asking again will not change: a wrong or
// rotated token (401), a CA whose fingerprint is not the token's pin, a
// server that cannot prove it knows a bootstrap token's secret, a request
// the server refuses as invalid. Join returns it at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// Join obtains this node's identity from a running cluster with a join
// token: it makes a key, asks the agents at apiAddrs (host:port, or
// https://host:port) in turn for the CA, checks it against the token (the
// pinned fingerprint, or for a bootstrap token the server's proof that it
// knows the secret), then posts a certificate request over TLS verified
// against that CA. Failures that may pass (an unreachable agent, no leader
// yet, 5xx, 429) are retried across the addresses with back-off until ctx
// ends; a *PermanentError is returned at once.
func Join(ctx context.Context, apiAddrs []string, tok pki.JoinToken, node string, ips []net.IP) (*Local, error) {
	if len(apiAddrs) == 0 {
		return nil, errors.New("join: no API address to ask (--join-api)")
	}
	if tok.Secret == "" {
		return nil, errors.New("join: token: no secret")
	}
	if err := validNodeName(node); err != nil {
		return nil, fmt.Errorf("join: node: %w", err)
	}
	if len(ips) > MaxIPs {
		return nil, fmt.Errorf("join: %d addresses, more than the %d allowed", len(ips), MaxIPs)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.MarshalKeyPEM(key)
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, node, ips)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(JoinRequest{Token: tok.String(), Node: node, CSR: string(csr), IPs: ipStrings(ips)})
	if err != nil {
		return nil, err
	}
	backoff := joinMinBackoff
	var last error
	for attempt := 0; ; attempt++ {
		for _, addr := range apiAddrs {
			resp, err := joinOnce(ctx, baseURL(addr), tok, body)
			if err == nil {
				return localOf(resp, keyPEM, node)
			}
			var pe *PermanentError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("join: %w", err)
			}
			last = err
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("join: gave up (%v); last error: %w", ctx.Err(), last)
		}
		t := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("join: gave up (%v); last error: %w", ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, joinMaxBackoff)
	}
}

// baseURL makes https://host:port of an API address.
func baseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	return "https://" + addr
}

// jitter returns d plus up to a quarter of it, at random.
func jitter(d time.Duration) time.Duration {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d/4)+1))
	if err != nil {
		return d
	}
	return d + time.Duration(n.Int64())
}

// joinOnce asks one agent: the CA, checked against the token, then the
// certificate over TLS verified against it.
func joinOnce(ctx context.Context, base string, tok pki.JoinToken, body []byte) (*JoinResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, joinRequestTimeout)
	defer cancel()
	caURL := base + PathJoinCA
	var nonce []byte
	if tok.Fingerprint == "" {
		nonce = make([]byte, nonceBytes)
		rand.Read(nonce)
		caURL += "?nonce=" + url.QueryEscape(hex.EncodeToString(nonce))
	}
	// The CA is fetched without verification: the token vouches for it.
	insecure := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	var ca CAResponse
	if err := call(ctx, clientFor(insecure), http.MethodGet, caURL, nil, &ca); err != nil {
		return nil, err
	}
	caCert, err := pki.ParseCertPEM([]byte(ca.CA))
	if err != nil {
		return nil, fmt.Errorf("the agent at %s sent a CA that does not parse: %v", base, err)
	}
	fp := pki.Fingerprint(caCert.Raw)
	if tok.Fingerprint != "" {
		if fp != tok.Fingerprint {
			return nil, permanent("the agent at %s presents CA fingerprint %s, the token pins %s", base, fp, tok.Fingerprint)
		}
	} else if !pki.VerifyBootstrapProof(tok.Secret, nonce, caCert.Raw, ca.Proof) {
		return nil, permanent("the agent at %s does not prove that it knows the bootstrap token's secret: it is not the cluster this token bootstraps", base)
	}
	var resp JoinResponse
	if err := call(ctx, clientFor(pinnedTLS(caCert)), http.MethodPost, base+PathJoin, body, &resp); err != nil {
		return nil, err
	}
	if resp.CA != ca.CA {
		return nil, fmt.Errorf("the agent at %s answered the join with another CA than it presented", base)
	}
	return &resp, nil
}

// pinnedTLS verifies that the server's certificate chains to ca, with no
// host-name check: agents are addressed by IP and pinned by their CA.
func pinnedTLS(ca *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by the chain check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

func clientFor(cfg *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableKeepAlives:   true,
	}
	return &http.Client{Transport: tr, Timeout: joinRequestTimeout}
}

// call sends one request and decodes a 200's JSON into out; other answers
// become errors, permanent for those that asking again cannot change.
func call(ctx context.Context, c *http.Client, method, url string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return permanent("%s %s: %v", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBodySize))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: the answer does not decode: %w", method, url, err)
		}
		return nil
	}
	msg := strings.TrimSpace(string(b))
	var st api.Status
	if json.Unmarshal(b, &st) == nil && st.Message != "" {
		msg = st.Message
	}
	err = fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, truncateMsg(msg))
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return &PermanentError{Err: err}
	}
	return err
}

func truncateMsg(s string) string {
	if len(s) > 512 {
		return s[:512] + "..."
	}
	return s
}

// localOf checks a join's answer and makes the Local to save.
func localOf(resp *JoinResponse, keyPEM []byte, node string) (*Local, error) {
	l := &Local{CACert: []byte(resp.CA), NodeCert: []byte(resp.Cert), NodeKey: keyPEM, GossipKey: resp.GossipKey, GossipKeys: resp.GossipKeys, KEK: resp.KEK}
	if len(l.KEK) == 0 {
		l.KEK = nil
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("join: the answer: %w", err)
	}
	p, err := l.Peer()
	if err != nil {
		return nil, fmt.Errorf("join: the answer: %w", err)
	}
	if p.Node != node {
		return nil, fmt.Errorf("join: the certificate names node %q, not %q", p.Node, node)
	}
	if (p.Role == pki.RoleVoter) != (l.KEK != nil) {
		return nil, fmt.Errorf("join: a %s certificate came with%s a KEK", p.Role, map[bool]string{true: "", false: "out"}[l.KEK != nil])
	}
	return l, nil
}
