package api

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
)

// Credentials of the client: the bearer token it presents and the cluster
// CA it verifies agents against.

// WithBearerToken makes the client send "Authorization: Bearer tok" on
// every request, watches and streams included. The token is never logged
// nor put in an error. The client sends it whatever the scheme: a caller
// that talks to an agent over plain http (one run with --insecure) should
// not pass a token at all, as the CLI does.
func WithBearerToken(tok string) ClientOption { return func(c *Client) { c.token = tok } }

// WithTLSConfig makes the client verify agents with cfg (see
// TLSConfigFromCA). With WithHTTPClient, it applies to a copy of that
// client's *http.Transport; the caller's client is left unchanged.
func WithTLSConfig(cfg *tls.Config) ClientOption { return func(c *Client) { c.tls = cfg } }

// applyTLS puts c.tls on the transport, once every option has run.
func (c *Client) applyTLS() {
	if c.tls == nil {
		return
	}
	hc := *c.http
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		if hc.Transport != nil {
			// A transport we cannot configure: requests fail rather
			// than go out unverified.
			c.tlsErr = fmt.Errorf("WithTLSConfig: the HTTP client's transport is a %T, not an *http.Transport", hc.Transport)
			return
		}
		tr = http.DefaultTransport.(*http.Transport)
	}
	tr = tr.Clone()
	tr.TLSClientConfig = c.tls.Clone()
	hc.Transport = tr
	c.http = &hc
}

// TLSConfigFromCA returns a client TLS configuration that trusts only the
// cluster CA in caPEM (one or more PEM certificates).
//
// Host names are not checked: agents are addressed by IP, and a node
// certificate names its node, not the address a user typed. What pins the
// server is its chain: VerifyConnection accepts only a certificate for
// server authentication signed by that CA, whatever ServerName says.
func TLSConfigFromCA(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("CA: no PEM CERTIFICATE block found")
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		// The standard verification also checks the host name, which
		// does not apply here; VerifyConnection does the chain check.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyChain(pool, cs.PeerCertificates)
		},
	}, nil
}

// verifyChain checks that the leaf of certs chains to a CA in roots and may
// serve TLS.
func verifyChain(roots *x509.CertPool, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("the agent presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("the agent's certificate (CN %q) is not from the cluster CA: %w", certs[0].Subject.CommonName, err)
	}
	return nil
}

// Messages of 401 and 403 answers.
const (
	reasonUnauthorized StatusReason = "Unauthorized"
	reasonForbidden    StatusReason = "Forbidden"
	unauthorizedHint                = "401 Unauthorized: no or bad token — run `shoal login` or set SHOAL_TOKEN"
)

// explainAuth rewrites the message of a 401 or 403 answer so that it says
// what to do; the server's own words follow.
func explainAuth(e *StatusError) {
	st := &e.ErrStatus
	switch st.Code {
	case http.StatusUnauthorized:
		if st.Reason == "" || st.Reason == ReasonInternalError {
			st.Reason = reasonUnauthorized
		}
		st.Message = joinMessage(unauthorizedHint, st.Message)
	case http.StatusForbidden:
		if st.Reason == "" || st.Reason == ReasonInternalError {
			st.Reason = reasonForbidden
		}
		st.Message = joinMessage("403 Forbidden: the token's role does not allow this", st.Message)
	}
}

func joinMessage(hint, server string) string {
	if server == "" {
		return hint
	}
	return hint + " (agent: " + server + ")"
}

// String names the client's agents, so that printing a Client never shows
// its token.
func (c *Client) String() string {
	return fmt.Sprintf("api.Client%v", c.bases)
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }
