package benchproc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// EtcdTLS names the PEM files a client of a TLS etcd cluster presents and
// trusts (etcdctl's --cacert, --cert, --key).
type EtcdTLS struct {
	CA   string // the throwaway CA that signed every certificate
	Cert string // the client certificate (ExtKeyUsage client auth)
	Key  string // its private key
}

// etcdCerts is what writeEtcdCerts wrote to a cluster's directory.
type etcdCerts struct {
	ca      string
	members map[string][2]string // member name: its certificate and key files
	client  EtcdTLS
}

// writeEtcdCerts generates, in dir, a throwaway ECDSA P-256 CA, one
// certificate per member (IP SAN 127.0.0.1, server and client auth: a
// member serves clients and peers and dials its peers with it, as
// kubeadm's etcd server and peer certificates do) and one client
// certificate, and writes them as PEM files.
func writeEtcdCerts(dir string, members []string) (*etcdCerts, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "shoal-bench-etcd-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, caCert, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	c := &etcdCerts{ca: filepath.Join(dir, "ca.crt"), members: map[string][2]string{}}
	if err := writePEM(c.ca, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	leaf := func(name string, usage []x509.ExtKeyUsage, ips []net.IP) ([2]string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return [2]string{}, err
		}
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: name},
			NotBefore:   now.Add(-time.Hour),
			NotAfter:    now.Add(7 * 24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: usage,
			IPAddresses: ips,
		}
		der, _, err := sign(tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return [2]string{}, err
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return [2]string{}, err
		}
		files := [2]string{filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")}
		if err := writePEM(files[0], "CERTIFICATE", der); err != nil {
			return [2]string{}, err
		}
		return files, writePEM(files[1], "EC PRIVATE KEY", keyDER)
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, m := range members {
		f, err := leaf(m, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, loopback)
		if err != nil {
			return nil, err
		}
		c.members[m] = f
	}
	f, err := leaf("etcdload-client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
	if err != nil {
		return nil, err
	}
	c.client = EtcdTLS{CA: c.ca, Cert: f[0], Key: f[1]}
	return c, nil
}

// sign creates the certificate tmpl for pub signed by parent's key priv,
// with a random serial number, and returns it DER-encoded and parsed.
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return der, cert, nil
}

func writePEM(file, typ string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
