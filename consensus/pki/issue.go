package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"time"
)

// Role says whether a node certificate may hold a Raft vote.
type Role string

// The roles a node certificate can carry.
const (
	RoleVoter  Role = "voter"
	RoleWorker Role = "worker"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleVoter || r == RoleWorker }

// roleOUPrefix marks the Subject OU that records a node's role.
const roleOUPrefix = "shoal:"

// CheckNodeName returns an error unless name is a DNS-1123 label: 1 to
// MaxNodeNameLen characters of a-z, 0-9 and '-', starting and ending with a
// letter or digit.
func CheckNodeName(name string) error {
	if name == "" {
		return fmt.Errorf("pki: node name: empty")
	}
	if len(name) > MaxNodeNameLen {
		return fmt.Errorf("pki: node name: %d characters, at most %d", len(name), MaxNodeNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(name)-1) {
			return fmt.Errorf("pki: node name: %q is not a DNS-1123 label (a-z, 0-9, '-', alphanumeric at both ends)", name)
		}
	}
	return nil
}

func checkIPs(ips []net.IP) error {
	if len(ips) > MaxIPs {
		return fmt.Errorf("pki: ips: %d addresses, at most %d", len(ips), MaxIPs)
	}
	for i, ip := range ips {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return fmt.Errorf("pki: ips[%d]: not an IP address", i)
		}
	}
	return nil
}

func checkPublicKey(pub crypto.PublicKey) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("pki: public key: %T, want an ECDSA P-256 key", pub)
	}
	if k.Curve != elliptic.P256() {
		return fmt.Errorf("pki: public key: curve %s, want P-256", k.Curve.Params().Name)
	}
	return nil
}

// NewCSR makes a PEM certificate request for node, signed by key, naming
// ips. The CA decides the role; the request does not carry one.
func NewCSR(key *ecdsa.PrivateKey, node string, ips []net.IP) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("pki: key: nil")
	}
	if err := CheckNodeName(node); err != nil {
		return nil, err
	}
	if err := checkIPs(ips); err != nil {
		return nil, err
	}
	if err := checkPublicKey(&key.PublicKey); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: node},
		IPAddresses: ips,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR reads one PEM "CERTIFICATE REQUEST" of at most MaxCSRBytes,
// checks its signature, that its Common Name is a valid node name, that its
// key is ECDSA P-256, that it names at most MaxIPs IPs and no other kind of
// name.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	if len(pemBytes) > MaxCSRBytes {
		return nil, fmt.Errorf("pki: csr: %d bytes, at most %d", len(pemBytes), MaxCSRBytes)
	}
	der, err := onePEM(pemBytes, "CERTIFICATE REQUEST", MaxCSRBytes)
	if err != nil {
		return nil, fmt.Errorf("pki: csr: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("pki: csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: csr: signature: %w", err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("pki: csr: %w", err)
	}
	if err := CheckNodeName(csr.Subject.CommonName); err != nil {
		return nil, fmt.Errorf("pki: csr: subject CN: %w", err)
	}
	if err := checkIPs(csr.IPAddresses); err != nil {
		return nil, fmt.Errorf("pki: csr: %w", err)
	}
	if len(csr.DNSNames)+len(csr.EmailAddresses)+len(csr.URIs) != 0 {
		return nil, fmt.Errorf("pki: csr: only IP addresses may be requested as alternative names")
	}
	return csr, nil
}

// NodeRequest is what the CA signs: a node's name, role, IPs and public key.
// The caller fills it from a ParseCSR result and from the join token's role,
// never from anything the requester says about its role.
type NodeRequest struct {
	Node      string
	Role      Role
	IPs       []net.IP
	PublicKey crypto.PublicKey
}

// Validate checks the request's fields.
func (r NodeRequest) Validate() error {
	if err := CheckNodeName(r.Node); err != nil {
		return err
	}
	if !r.Role.Valid() {
		return fmt.Errorf("pki: role: %q, want %q or %q", r.Role, RoleVoter, RoleWorker)
	}
	if err := checkIPs(r.IPs); err != nil {
		return err
	}
	return checkPublicKey(r.PublicKey)
}

// Issue signs a node certificate (PEM) valid from now (less ClockSkew) for
// ttl (MinCertTTL to MaxCertTTL, cut to the CA's own expiry). CN is the node
// name, the role is the Subject OU "shoal:<role>", the IPs are SANs, and it
// is good for both server and client authentication.
func (ca *CA) Issue(req NodeRequest, now time.Time, ttl time.Duration) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if ttl < MinCertTTL || ttl > MaxCertTTL {
		return nil, fmt.Errorf("pki: ttl: %s, want %s to %s", ttl, MinCertTTL, MaxCertTTL)
	}
	notAfter := now.Add(ttl)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("pki: CA certificate expired at %s", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         req.Node,
			Organization:       []string{"shoal"},
			OrganizationalUnit: []string{roleOUPrefix + string(req.Role)},
		},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           req.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: issue certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Peer is the identity a node certificate carries.
type Peer struct {
	Node                string
	Role                Role
	Serial              string
	NotBefore, NotAfter time.Time
}

// PeerOf reads the identity Issue wrote into cert. It does not verify the
// chain (the TLS configs do); it refuses a certificate that is not a shoal
// node certificate with ErrNotShoalCert.
func PeerOf(cert *x509.Certificate) (Peer, error) {
	if cert == nil {
		return Peer{}, fmt.Errorf("%w: no certificate", ErrNotShoalCert)
	}
	if cert.IsCA {
		return Peer{}, fmt.Errorf("%w: a CA certificate", ErrNotShoalCert)
	}
	if err := CheckNodeName(cert.Subject.CommonName); err != nil {
		return Peer{}, fmt.Errorf("%w: subject CN: %v", ErrNotShoalCert, err)
	}
	if len(cert.Subject.OrganizationalUnit) != 1 {
		return Peer{}, fmt.Errorf("%w: %d subject OUs, want exactly one role", ErrNotShoalCert, len(cert.Subject.OrganizationalUnit))
	}
	ou := cert.Subject.OrganizationalUnit[0]
	role := Role(ou[min(len(ou), len(roleOUPrefix)):])
	if len(ou) <= len(roleOUPrefix) || ou[:len(roleOUPrefix)] != roleOUPrefix || !role.Valid() {
		return Peer{}, fmt.Errorf("%w: subject OU %q is not a shoal role", ErrNotShoalCert, ou)
	}
	return Peer{
		Node:      cert.Subject.CommonName,
		Role:      role,
		Serial:    serialString(cert.SerialNumber),
		NotBefore: cert.NotBefore,
		NotAfter:  cert.NotAfter,
	}, nil
}
