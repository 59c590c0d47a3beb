package agent

// This agent's cluster identity (issue 10), on disk as agent/identity keeps
// it (DATA_DIR/tls/{ca.crt,node.crt,node.key,gossip.key,kek},
// DATA_DIR/admin.token). --bootstrap and -dev make it, and the leader then
// writes the cluster record (Secret shoal-system/shoal-cluster-identity)
// into the store; --token joins an existing cluster (pinned tokens: before
// gossip starts); a restart reads it back. identityserve.go serves the
// join, renewal and token endpoints and renews this agent's certificate.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// DefaultJoinTimeout bounds how long a first start waits for a certificate
// from the cluster it joins with --token.
const DefaultJoinTimeout = 2 * time.Minute

// loadOrMakeIdentity reads this agent's identity from the data dir, makes
// a new cluster's when bootstrapping, or joins with the token, and returns
// its TLS holder.
func (a *Agent) loadOrMakeIdentity(bootstrap, hasState bool, clusterID string) (*pki.Holder, error) {
	dir := a.cfg.DataDir
	l, err := identity.Load(dir)
	switch {
	case err == nil:
		// A bootstrap whose record the store may not hold yet (stopped
		// before its leadership wrote it): the leader writes it on start.
		rec, perr := identity.LoadPendingRecord(dir)
		if perr != nil {
			return nil, fmt.Errorf("identity: %w", perr)
		}
		a.pendingRecord = rec
		if a.cfg.Token != "" {
			a.log.Info("--token ignored: this agent already has an identity in the data dir", "dir", filepath.Join(dir, identity.TLSDir))
		}
	case !errors.Is(err, identity.ErrNoIdentity):
		return nil, fmt.Errorf("identity: %w", err)
	case bootstrap:
		if clusterID == "" {
			clusterID = a.clusterID
		}
		var rec identity.Record
		l, rec, _, err = identity.Bootstrap(clusterID, nil, a.cfg.NodeName, a.cfg.certIPs(), time.Now())
		if err != nil {
			return nil, fmt.Errorf("bootstrap: making the cluster identity: %w", err)
		}
		// The record first: it holds the only copy of the sealed CA key, and
		// an identity on disk without it could never be completed.
		if err := identity.SavePendingRecord(dir, rec); err != nil {
			return nil, fmt.Errorf("bootstrap: saving the cluster record: %w", err)
		}
		if err := l.Save(dir); err != nil {
			return nil, fmt.Errorf("bootstrap: saving the cluster identity: %w", err)
		}
		a.pendingRecord = &rec
		if err := a.announceBootstrap(rec, l); err != nil {
			return nil, err
		}
	case a.cfg.Token != "":
		if l, err = a.join(); err != nil {
			return nil, err
		}
	case hasState:
		return nil, fmt.Errorf("this data dir holds Raft state but no identity (DATA_DIR/%s): it was made by an agent without security; start it with --insecure (loopback only) or with an empty --data-dir", identity.CACertFile)
	default:
		return nil, errNoCredentials
	}
	h, err := l.Holder()
	if err != nil {
		return nil, fmt.Errorf("identity in %s: %w", filepath.Join(dir, identity.TLSDir), err)
	}
	if p := h.Peer(); p.Node != a.cfg.NodeName {
		return nil, fmt.Errorf("node-name: %q, but the certificate in %s is node %q's: keep the name, or use another --data-dir", a.cfg.NodeName, filepath.Join(dir, identity.NodeCertFile), p.Node)
	}
	if a.gossipKey == nil {
		a.gossipKey = l.GossipKey
		a.gossipKeys = l.Keys()
	}
	a.kek = l.KEK
	return h, nil
}

// join obtains a certificate with Config.Token from the agents at
// joinAPIs, and saves the identity.
func (a *Agent) join() (*identity.Local, error) {
	tok, err := pki.ParseJoinToken(a.cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if tok.Bootstrap() {
		return nil, errors.New("token: a bootstrap token is for the initial agents of a new cluster (with --bootstrap-expect); this data dir holds Raft state: join with a token from `shoal token show`")
	}
	addrs := a.joinAPIs()
	if len(addrs) == 0 {
		return nil, errors.New("token: no agent to ask for a certificate: pass --join (or --join-api)")
	}
	timeout := a.cfg.JoinTimeout
	if timeout == 0 {
		timeout = DefaultJoinTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a.log.Info("joining with a token: asking for a certificate", "from", strings.Join(addrs, ","))
	l, err := identity.Join(ctx, addrs, tok, a.cfg.NodeName, a.cfg.certIPs())
	if err != nil {
		return nil, fmt.Errorf("token: joining through %s: %w", strings.Join(addrs, ","), err)
	}
	if err := l.Save(a.cfg.DataDir); err != nil {
		return nil, fmt.Errorf("saving the identity: %w", err)
	}
	p, _ := l.Peer()
	a.log.Info("joined: certificate obtained", "role", p.Role, "not_after", p.NotAfter)
	return l, nil
}

// joinAPIs are the API addresses asked for a certificate: --join-api, else
// each --join host with this agent's API port.
func (a *Agent) joinAPIs() []string {
	if len(a.cfg.JoinAPI) > 0 {
		return a.cfg.JoinAPI
	}
	_, port, _ := net.SplitHostPort(a.cfg.HTTPAddr)
	var out []string
	for _, j := range a.cfg.Join {
		if host, _, err := net.SplitHostPort(j); err == nil {
			out = append(out, net.JoinHostPort(host, port))
		}
	}
	return out
}

// announceBootstrap logs what a new cluster's operator needs, and prints it
// on Config.Out (stdout of `shoal agent`): where the admin token is (-dev:
// the token itself), the join tokens and the CA fingerprint.
func (a *Agent) announceBootstrap(rec identity.Record, l *identity.Local) error {
	o, err := rec.Open(l.KEK)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	voter, worker := o.Tokens()
	fp := o.CA.Fingerprint()
	tokenPath := filepath.Join(a.cfg.DataDir, identity.AdminTokenFile)
	a.log.Info("bootstrap: made the cluster identity", "ca_fingerprint", fp,
		"admin_token_file", tokenPath, "voter_join_token", voter.String(), "worker_join_token", worker.String())
	if a.cfg.Out == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Shoal: a new cluster was bootstrapped.\n")
	fmt.Fprintf(&b, "  CA fingerprint:    %s\n", fp)
	fmt.Fprintf(&b, "  admin API token:   in %s (0600; the shoal CLI on this host reads it as root)\n", tokenPath)
	if a.cfg.Dev {
		fmt.Fprintf(&b, "                     %s\n", l.AdminToken)
	}
	fmt.Fprintf(&b, "  voter join token:  %s\n", voter)
	fmt.Fprintf(&b, "  worker join token: %s\n", worker)
	fmt.Fprintf(&b, "Add a host: shoal agent --join THIS_HOST:%s --token VOTER_OR_WORKER_TOKEN\n", gossipPort(a.cfg.GossipAddr))
	_, err = io.WriteString(a.cfg.Out, b.String())
	return err
}

func gossipPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return "7946"
	}
	return port
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

// identityOnDisk reports whether dataDir holds an identity (its CA
// certificate).
func identityOnDisk(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, identity.CACertFile))
	return err == nil
}
