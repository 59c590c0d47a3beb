package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Holder keeps the cluster CA and this node's current certificate and key,
// and makes the TLS configs of every agent link. It is safe for concurrent
// use: each handshake reads the current pair atomically, so Update rotates
// the certificate without a restart and without touching open connections.
type Holder struct {
	ca    *x509.Certificate
	pool  *x509.CertPool
	cur   atomic.Pointer[leaf]
	check atomic.Pointer[func(Peer) error]
}

// leaf is one immutable node certificate with its key.
type leaf struct {
	pair tls.Certificate
	peer Peer
}

// NewHolder reads the CA certificate and the node's certificate and key
// (all PEM). The node certificate must be signed by the CA and be a shoal
// node certificate; it may be expired (NotAfter tells the caller to renew).
func NewHolder(caPEM, certPEM, keyPEM []byte) (*Holder, error) {
	ca, err := ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: holder: CA certificate: %w", err)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		return nil, fmt.Errorf("pki: holder: CA certificate: not a CA certificate")
	}
	h := &Holder{ca: ca, pool: x509.NewCertPool()}
	h.pool.AddCert(ca)
	l, err := h.load(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	h.cur.Store(l)
	return h, nil
}

// Update replaces the node certificate and key (same CA, same node name);
// handshakes that start afterwards present the new certificate.
func (h *Holder) Update(certPEM, keyPEM []byte) error {
	l, err := h.load(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if old := h.cur.Load(); l.peer.Node != old.peer.Node {
		return fmt.Errorf("pki: holder: certificate: node %q, the holder is %q", l.peer.Node, old.peer.Node)
	}
	h.cur.Store(l)
	return nil
}

func (h *Holder) load(certPEM, keyPEM []byte) (*leaf, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: holder: node certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(h.ca); err != nil {
		return nil, fmt.Errorf("pki: holder: node certificate: not signed by the CA: %w", err)
	}
	peer, err := PeerOf(cert)
	if err != nil {
		return nil, fmt.Errorf("pki: holder: node certificate: %w", err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: holder: node key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: holder: node key: does not match the node certificate")
	}
	return &leaf{pair: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, peer: peer}, nil
}

// Peer is this node's own identity, from the current certificate.
func (h *Holder) Peer() Peer { return h.cur.Load().peer }

// SetPeerCheck installs a last check on every verified peer of every config
// (nil removes it): an error refuses the handshake. The agent uses it to
// refuse, at once, the certificate of a node removed from the cluster or a
// revoked serial, instead of waiting for the certificate to expire. It runs
// inside handshakes, so it must be fast and never block (read a snapshot).
func (h *Holder) SetPeerCheck(f func(Peer) error) {
	if f == nil {
		h.check.Store(nil)
		return
	}
	h.check.Store(&f)
}

// NotAfter is when the current certificate expires.
func (h *Holder) NotAfter() time.Time { return h.cur.Load().peer.NotAfter }

// CACert is the cluster CA certificate.
func (h *Holder) CACert() *x509.Certificate { return h.ca }

func (h *Holder) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return &h.cur.Load().pair, nil
}

func (h *Holder) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return &h.cur.Load().pair, nil
}

// verifyPeer checks that certs[0] chains to the CA now, is good for every
// usage in usages, is a shoal node certificate and, if voter, carries the
// voter role.
func (h *Holder) verifyPeer(certs []*x509.Certificate, usages []x509.ExtKeyUsage, voter bool) (Peer, error) {
	if len(certs) == 0 {
		return Peer{}, errors.New("pki: peer presented no certificate")
	}
	if len(certs) > 1 {
		return Peer{}, fmt.Errorf("pki: peer presented %d certificates, want only its node certificate", len(certs))
	}
	// One chain verification; each usage asked for must then be in the leaf
	// (the CA sets no extended key usage, so it constrains nothing).
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: h.pool, KeyUsages: usages[:1]}); err != nil {
		return Peer{}, fmt.Errorf("pki: peer certificate: %w", err)
	}
	for _, u := range usages[1:] {
		if !slices.Contains(certs[0].ExtKeyUsage, u) && !slices.Contains(certs[0].ExtKeyUsage, x509.ExtKeyUsageAny) {
			return Peer{}, fmt.Errorf("pki: peer certificate: not valid for %s", usageName(u))
		}
	}
	p, err := PeerOf(certs[0])
	if err != nil {
		return Peer{}, err
	}
	if voter && p.Role != RoleVoter {
		return Peer{}, fmt.Errorf("%w: %q is a %s", ErrNotVoter, p.Node, p.Role)
	}
	if f := h.check.Load(); f != nil {
		if err := (*f)(p); err != nil {
			return Peer{}, fmt.Errorf("%w: %q: %v", ErrPeerRefused, p.Node, err)
		}
	}
	return p, nil
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "server authentication"
	case x509.ExtKeyUsageClientAuth:
		return "client authentication"
	}
	return fmt.Sprintf("extended key usage %d", u)
}

// ServerConfig is for a TLS 1.3 server presenting the node certificate. A
// client certificate, when given, must chain to the CA and be good for
// client authentication; requireClientCert refuses clients without one.
func (h *Holder) ServerConfig(requireClientCert bool) *tls.Config {
	auth := tls.RequestClientCert
	if requireClientCert {
		auth = tls.RequireAnyClientCert
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		GetCertificate:         h.getCertificate,
		ClientAuth:             auth,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 && !requireClientCert {
				return nil
			}
			_, err := h.verifyPeer(cs.PeerCertificates, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, false)
			return err
		},
	}
}

// ClientConfig is for a TLS 1.3 client presenting the node certificate and
// accepting only a server whose certificate chains to the CA and is good for
// server authentication. Host names are not checked: peers are pinned by the
// CA and addressed by IP.
func (h *Holder) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: h.getClientCertificate,
		// Verification is done by VerifyConnection against the cluster CA
		// only; the standard check would also demand a matching host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := h.verifyPeer(cs.PeerCertificates, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, false)
			return err
		},
	}
}

// RaftConfig serves both ends of a Raft connection (listener and dialer):
// TLS 1.3, mutual, and the peer's certificate must chain to the CA, be good
// for both server and client authentication and carry the voter role, so a
// worker can neither dial a voter nor answer as one.
func (h *Holder) RaftConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		GetCertificate:         h.getCertificate,
		GetClientCertificate:   h.getClientCertificate,
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		InsecureSkipVerify:     true, // VerifyConnection checks chain and role
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := h.verifyPeer(cs.PeerCertificates, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, true)
			return err
		},
	}
}

// PeerFromState is the identity of the peer of a connection made with one of
// a Holder's configs (which verify every certificate a peer presents), if it
// presented a shoal node certificate.
func PeerFromState(cs *tls.ConnectionState) (Peer, bool) {
	if cs == nil || !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return Peer{}, false
	}
	leaf := cs.PeerCertificates[0]
	if len(cs.VerifiedChains) > 0 {
		leaf = cs.VerifiedChains[0][0]
	}
	p, err := PeerOf(leaf)
	if err != nil {
		return Peer{}, false
	}
	return p, true
}
