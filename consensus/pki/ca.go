package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// CA is a cluster certificate authority: its certificate (parsed and PEM) and
// its private key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
}

// b32 is the lower-case, unpadded base32 used by fingerprints and secrets.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// FingerprintLen is the length of Fingerprint's result.
const FingerprintLen = 52

// NewCA makes a cluster CA: a fresh ECDSA P-256 key and a self-signed
// certificate valid from now (less ClockSkew) for CALifetime, named after
// clusterID.
func NewCA(clusterID string, now time.Time) (*CA, error) {
	if err := checkClusterID(clusterID); err != nil {
		return nil, err
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "shoal-ca " + clusterID, Organization: []string{"shoal"}},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Key: key}, nil
}

func checkClusterID(id string) error {
	if id == "" {
		return fmt.Errorf("pki: clusterID: empty")
	}
	if len(id) > MaxClusterIDLen {
		return fmt.Errorf("pki: clusterID: %d bytes, at most %d", len(id), MaxClusterIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("pki: clusterID: byte %d is not printable ASCII", i)
		}
	}
	return nil
}

// ParseCA reads a CA from its PEM certificate and PEM private key, checking
// that the certificate is a CA certificate and that the key matches it.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("pki: CA certificate: not a CA certificate")
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("pki: CA certificate: not self-signed: %w", err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: CA key: does not match the CA certificate")
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), Key: key}, nil
}

// KeyPEM returns the CA's private key as PEM (to be sealed before storing).
func (ca *CA) KeyPEM() ([]byte, error) {
	k, ok := ca.Key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: CA key: %T is not an ECDSA key", ca.Key)
	}
	return MarshalKeyPEM(k)
}

// Fingerprint returns the CA certificate's fingerprint (see Fingerprint).
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert.Raw) }

// Fingerprint is the SHA-256 of a DER certificate in lower-case base32
// without padding: FingerprintLen (52) characters.
func Fingerprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return b32.EncodeToString(sum[:])
}

// ParseCertPEM reads exactly one PEM "CERTIFICATE" block (at most
// MaxCertBytes; nothing but white space may follow it).
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	der, err := onePEM(b, "CERTIFICATE", MaxCertBytes)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: certificate: %w", err)
	}
	return cert, nil
}

// NewKey makes an ECDSA P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	return k, nil
}

// MarshalKeyPEM encodes an ECDSA key as a PEM "EC PRIVATE KEY" block.
func MarshalKeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	if k == nil {
		return nil, fmt.Errorf("pki: key: nil")
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM reads an ECDSA P-256 key from a PEM "EC PRIVATE KEY" or
// PKCS#8 "PRIVATE KEY" block.
func ParseKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	block, err := onePEMBlock(b, MaxCertBytes)
	if err != nil {
		return nil, err
	}
	var k *ecdsa.PrivateKey
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var any any
		any, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		if err == nil {
			var ok bool
			if k, ok = any.(*ecdsa.PrivateKey); !ok {
				return nil, fmt.Errorf("pki: key: %T is not an ECDSA key", any)
			}
		}
	default:
		return nil, fmt.Errorf("pki: key: PEM block type %q, want EC PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	if k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pki: key: curve %s, want P-256", k.Curve.Params().Name)
	}
	return k, nil
}

// onePEM decodes exactly one PEM block of type typ from b.
func onePEM(b []byte, typ string, max int) ([]byte, error) {
	block, err := onePEMBlock(b, max)
	if err != nil {
		return nil, err
	}
	if block.Type != typ {
		return nil, fmt.Errorf("pki: PEM block type %q, want %q", block.Type, typ)
	}
	return block.Bytes, nil
}

func onePEMBlock(b []byte, max int) (*pem.Block, error) {
	if len(b) > max {
		return nil, fmt.Errorf("pki: PEM: %d bytes, at most %d", len(b), max)
	}
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("pki: PEM: no PEM block found")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("pki: PEM: trailing data after the %s block", block.Type)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("pki: PEM: unexpected headers in the %s block", block.Type)
	}
	return block, nil
}

// randomSerial is a random positive 128-bit certificate serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// serialString renders a serial number as lower-case hex.
func serialString(n *big.Int) string { return strings.ToLower(n.Text(16)) }
