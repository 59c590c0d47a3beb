package agent

// This agent's cluster identity (issue 10), kept in the data dir:
//
//	DATA_DIR/tls/ca.crt      0644  the cluster CA certificate
//	DATA_DIR/tls/node.crt    0644  this node's certificate (CN = node, role)
//	DATA_DIR/tls/node.key    0600  its key
//	DATA_DIR/tls/gossip.key  0600  base64 of the gossip key
//	DATA_DIR/tls/kek         0600  base64 of the key that seals the CA key (voters)
//	DATA_DIR/admin.token     0600  the first admin API token (bootstrapping agent)
//
// --bootstrap and -dev make it (a new CA, this node's voter certificate,
// a gossip key, the join tokens and the first admin token); later starts
// read it back. Joining with a token, renewal and the cluster record in the
// store are agent/identity's; until that package is wired here, an agent
// without an identity on disk can only bootstrap.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// Identity files, relative to the data dir.
const (
	caCertFile     = "tls/ca.crt"
	nodeCertFile   = "tls/node.crt"
	nodeKeyFile    = "tls/node.key"
	gossipKeyFile  = "tls/gossip.key"
	kekFile        = "tls/kek"
	adminTokenFile = "admin.token"
	// maxIdentityFile bounds every identity file read.
	maxIdentityFile = 64 << 10
	// bootstrapCertTTL is the life of the bootstrapping agent's own
	// certificate.
	bootstrapCertTTL = 365 * 24 * time.Hour
)

// localIdentity is what an agent keeps on disk.
type localIdentity struct {
	caPEM, certPEM, keyPEM []byte
	gossipKey, kek         []byte
	adminToken             string // only on the agent that bootstrapped
}

// errNoIdentity: the data dir holds no tls/ca.crt.
var errNoIdentity = errors.New("no identity in the data dir")

// loadIdentity reads the identity in dataDir; errNoIdentity if there is
// none yet.
func loadIdentity(dataDir string) (*localIdentity, error) {
	read := func(name string, required bool) ([]byte, error) {
		p := filepath.Join(dataDir, name)
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) && !required {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxIdentityFile+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxIdentityFile {
			return nil, fmt.Errorf("%s: larger than %d bytes", p, maxIdentityFile)
		}
		return b, nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, caCertFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, errNoIdentity
	}
	l := &localIdentity{}
	var err error
	if l.caPEM, err = read(caCertFile, true); err != nil {
		return nil, err
	}
	if l.certPEM, err = read(nodeCertFile, true); err != nil {
		return nil, err
	}
	if l.keyPEM, err = read(nodeKeyFile, true); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		name     string
		dst      *[]byte
		required bool
	}{{gossipKeyFile, &l.gossipKey, true}, {kekFile, &l.kek, false}} {
		b, err := read(k.name, k.required)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		if *k.dst, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err != nil {
			return nil, fmt.Errorf("%s: not base64: %v", k.name, err)
		}
	}
	tok, err := read(adminTokenFile, false)
	if err != nil {
		return nil, err
	}
	l.adminToken = strings.TrimSpace(string(tok))
	return l, nil
}

// save writes l into dataDir, each file atomically with its mode.
func (l *localIdentity) save(dataDir string) error {
	if err := os.MkdirAll(filepath.Join(dataDir, "tls"), 0o755); err != nil {
		return err
	}
	enc := func(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b) + "\n") }
	type idFile struct {
		name string
		data []byte
		mode fs.FileMode
	}
	files := []idFile{{nodeKeyFile, l.keyPEM, 0o600}, {nodeCertFile, l.certPEM, 0o644}, {gossipKeyFile, enc(l.gossipKey), 0o600}}
	if l.kek != nil {
		files = append(files, idFile{kekFile, enc(l.kek), 0o600})
	}
	if l.adminToken != "" {
		files = append(files, idFile{adminTokenFile, []byte(l.adminToken + "\n"), 0o600})
	}
	// ca.crt last: its presence says the identity is complete.
	files = append(files, idFile{caCertFile, l.caPEM, 0o644})
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dataDir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes data to path through a synced temporary file.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// bootstrapInfo is what a bootstrap prints.
type bootstrapInfo struct {
	fingerprint, voterToken, workerToken string
}

// bootstrapIdentity makes a new cluster identity: CA, this node's voter
// certificate, gossip key, KEK, join tokens, first admin token.
func bootstrapIdentity(clusterID, node string, ips []net.IP, now time.Time) (*localIdentity, bootstrapInfo, error) {
	var info bootstrapInfo
	ca, err := pki.NewCA(clusterID, now)
	if err != nil {
		return nil, info, err
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, info, err
	}
	keyPEM, err := pki.MarshalKeyPEM(key)
	if err != nil {
		return nil, info, err
	}
	certPEM, err := ca.Issue(pki.NodeRequest{Node: node, Role: pki.RoleVoter, IPs: ips, PublicKey: key.Public()}, now, bootstrapCertTTL)
	if err != nil {
		return nil, info, err
	}
	kek, err := pki.NewKEK()
	if err != nil {
		return nil, info, err
	}
	gossipKey := make([]byte, 32)
	if _, err := rand.Read(gossipKey); err != nil {
		return nil, info, err
	}
	voter, err := pki.NewJoinToken(ca.Fingerprint())
	if err != nil {
		return nil, info, err
	}
	worker, err := pki.NewJoinToken(ca.Fingerprint())
	if err != nil {
		return nil, info, err
	}
	var id [16]byte
	rand.Read(id[:])
	admin, err := ca.SignToken(pki.Claims{ID: hex.EncodeToString(id[:]), Name: "bootstrap-admin", Role: "admin",
		IssuedAt: now, ExpiresAt: ca.Cert.NotAfter})
	if err != nil {
		return nil, info, err
	}
	info = bootstrapInfo{fingerprint: ca.Fingerprint(), voterToken: voter.String(), workerToken: worker.String()}
	return &localIdentity{caPEM: ca.CertPEM, certPEM: certPEM, keyPEM: keyPEM, gossipKey: gossipKey, kek: kek, adminToken: admin}, info, nil
}

// certIPs are the addresses this agent's certificate names: the
// advertised, node and bind IPs that are specific, else the private IP
// gossip would pick. (Peers are pinned by the CA, not by address: these
// are informative.)
func (c Config) certIPs() []net.IP {
	var out []net.IP
	add := func(s string) {
		ip := net.ParseIP(s)
		if ip == nil || ip.IsUnspecified() {
			return
		}
		for _, o := range out {
			if o.Equal(ip) {
				return
			}
		}
		out = append(out, ip)
	}
	add(c.Advertise)
	add(c.NodeIP)
	for _, a := range []string{c.HTTPAddr, c.GossipAddr} {
		host, _, _ := net.SplitHostPort(a)
		add(host)
	}
	if len(out) == 0 {
		if ip, err := sockaddr.GetPrivateIP(); err == nil {
			add(ip)
		}
	}
	return out
}

// loadOrMakeIdentity reads this agent's identity from the data dir, or
// makes a new cluster's when bootstrapping, and returns its TLS holder.
func (a *Agent) loadOrMakeIdentity(bootstrap, hasState bool, clusterID string) (*pki.Holder, error) {
	dir := a.cfg.DataDir
	l, err := loadIdentity(dir)
	switch {
	case err == nil:
		if a.cfg.Token != "" {
			a.log.Info("--token ignored: this agent already has an identity in the data dir", "dir", filepath.Join(dir, "tls"))
		}
	case !errors.Is(err, errNoIdentity):
		return nil, fmt.Errorf("identity: %w", err)
	case bootstrap:
		if clusterID == "" {
			clusterID = a.clusterID
		}
		var info bootstrapInfo
		l, info, err = bootstrapIdentity(clusterID, a.cfg.NodeName, a.cfg.certIPs(), time.Now())
		if err != nil {
			return nil, fmt.Errorf("bootstrap: making the cluster identity: %w", err)
		}
		if err := l.save(dir); err != nil {
			return nil, fmt.Errorf("bootstrap: saving the cluster identity: %w", err)
		}
		a.announceBootstrap(info, l.adminToken)
	case a.cfg.Token != "":
		return nil, errors.New("token: joining a cluster with a token is not wired in this build yet (agent/identity): start the first agent with --bootstrap and the others with --insecure on loopback only")
	case hasState:
		return nil, fmt.Errorf("this data dir holds Raft state but no identity (DATA_DIR/%s): it was made by an agent without security; start it with --insecure (loopback only) or with an empty --data-dir", caCertFile)
	default:
		return nil, errNoCredentials
	}
	h, err := pki.NewHolder(l.caPEM, l.certPEM, l.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("identity in %s: %w", filepath.Join(dir, "tls"), err)
	}
	if p := h.Peer(); p.Node != a.cfg.NodeName {
		return nil, fmt.Errorf("node-name: %q, but the certificate in %s is node %q's: keep the name, or use another --data-dir", a.cfg.NodeName, filepath.Join(dir, nodeCertFile), p.Node)
	}
	if a.gossipKey == nil {
		a.gossipKey = l.gossipKey
	}
	a.kek = l.kek
	return h, nil
}

// announceBootstrap logs what a new cluster's operator needs, and prints it
// on Config.Out (stdout of `shoal agent`): where the admin token is (-dev:
// the token itself), the join tokens and the CA fingerprint.
func (a *Agent) announceBootstrap(info bootstrapInfo, adminToken string) {
	tokenPath := filepath.Join(a.cfg.DataDir, adminTokenFile)
	a.log.Info("bootstrap: made the cluster identity", "ca_fingerprint", info.fingerprint,
		"admin_token_file", tokenPath, "voter_join_token", info.voterToken, "worker_join_token", info.workerToken)
	if a.cfg.Out == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Shoal: a new cluster was bootstrapped.\n")
	fmt.Fprintf(&b, "  CA fingerprint:    %s\n", info.fingerprint)
	fmt.Fprintf(&b, "  admin API token:   in %s (0600; the shoal CLI on this host reads it as root)\n", tokenPath)
	if a.cfg.Dev {
		fmt.Fprintf(&b, "                     %s\n", adminToken)
	}
	fmt.Fprintf(&b, "  voter join token:  %s\n", info.voterToken)
	fmt.Fprintf(&b, "  worker join token: %s\n", info.workerToken)
	fmt.Fprintf(&b, "Add a host: shoal agent --join THIS_HOST:%s --token VOTER_OR_WORKER_TOKEN\n", gossipPort(a.cfg.GossipAddr))
	io.WriteString(a.cfg.Out, b.String())
}

func gossipPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return "7946"
	}
	return port
}
