package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// Clock is the time the Renewer sees; tests pass a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RenewerConfig configures NewRenewer.
type RenewerConfig struct {
	// Holder carries the node certificate in use; the Renewer updates it.
	// Required.
	Holder *pki.Holder
	// Request posts a certificate request to /v1/cluster/certificate (see
	// RequestCertificate). Required.
	Request func(ctx context.Context, req CertificateRequest) (*JoinResponse, error)
	// IPs are the addresses the renewed certificate names.
	IPs []net.IP
	// DataDir, if set, receives the new key and certificate (SaveNodeCert).
	DataDir string
	// OnRenew, if set, is called with each successful answer after the
	// Holder and the files were updated (e.g. to take a new gossip key).
	OnRenew func(*JoinResponse)
	// Clock: nil means the real one.
	Clock Clock
	// Logger: nil means slog.Default().
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the waits between failed renewals;
	// 0 means DefaultRenewMinBackoff and DefaultRenewMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// Defaults of RenewerConfig.
const (
	DefaultRenewMinBackoff = time.Second
	DefaultRenewMaxBackoff = time.Minute
	// renewJitter: a renewal is due at 2/3 of the certificate's life, less
	// up to this fraction of the life at random, so that agents that
	// joined together do not renew together.
	renewJitter = 0.05
)

// Validate reports the first configuration error, naming the field.
func (c RenewerConfig) Validate() error {
	switch {
	case c.Holder == nil:
		return errors.New("RenewerConfig.Holder: must not be nil")
	case c.Request == nil:
		return errors.New("RenewerConfig.Request: must not be nil")
	case len(c.IPs) > MaxIPs:
		return fmt.Errorf("RenewerConfig.IPs: %d addresses, more than the %d allowed", len(c.IPs), MaxIPs)
	case c.MinBackoff < 0 || c.MaxBackoff < 0:
		return errors.New("RenewerConfig.MinBackoff, MaxBackoff: must not be negative")
	case c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff:
		return fmt.Errorf("RenewerConfig.MinBackoff: %v is more than MaxBackoff %v", c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// Renewer renews the node certificate before it expires.
type Renewer struct {
	cfg RenewerConfig
}

// NewRenewer checks cfg and fills its defaults.
func NewRenewer(cfg RenewerConfig) (*Renewer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultRenewMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = max(DefaultRenewMaxBackoff, cfg.MinBackoff)
	}
	return &Renewer{cfg: cfg}, nil
}

// RenewAt is when a certificate valid from notBefore to notAfter is due
// for renewal: at two thirds of its life, less jitter (a fraction of the
// life, 0 to 1).
func RenewAt(notBefore, notAfter time.Time, jitter float64) time.Time {
	life := notAfter.Sub(notBefore)
	return notBefore.Add(life*2/3 - time.Duration(jitter*float64(life)))
}

// Run renews the certificate each time it is due, retrying failures with
// back-off, until ctx ends.
func (r *Renewer) Run(ctx context.Context) {
	backoff := r.cfg.MinBackoff
	p := r.cfg.Holder.Peer()
	due := RenewAt(p.NotBefore, p.NotAfter, rand.Float64()*renewJitter)
	for {
		if !r.wait(ctx, due.Sub(r.cfg.Clock.Now())) {
			return
		}
		for {
			err := r.Renew(ctx)
			if err == nil {
				backoff = r.cfg.MinBackoff
				// The next one is due two thirds of the new life from now
				// on this agent's clock, not from the certificate's
				// NotBefore on the leader's: a skewed clock must neither
				// renew in a loop nor too late.
				p := r.cfg.Holder.Peer()
				now := r.cfg.Clock.Now()
				due = RenewAt(now, now.Add(p.NotAfter.Sub(p.NotBefore)), rand.Float64()*renewJitter)
				break
			}
			if ctx.Err() != nil {
				return
			}
			left := r.cfg.Holder.NotAfter().Sub(r.cfg.Clock.Now())
			r.cfg.Logger.Warn("identity: renewing the node certificate failed; retrying", "err", err, "retry", backoff, "expiresIn", left.Round(time.Second))
			if !r.wait(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, r.cfg.MaxBackoff)
		}
	}
}

func (r *Renewer) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-r.cfg.Clock.After(d):
		return true
	}
}

// Renew renews the certificate now, with a new key: it asks for a
// certificate, checks that it is for this node, role and key, then updates
// the Holder (later TLS handshakes use it), the files and calls OnRenew.
func (r *Renewer) Renew(ctx context.Context) error {
	p := r.cfg.Holder.Peer()
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	keyPEM, err := pki.MarshalKeyPEM(key)
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, p.Node, r.cfg.IPs)
	if err != nil {
		return err
	}
	resp, err := r.cfg.Request(ctx, CertificateRequest{Node: p.Node, CSR: string(csr), IPs: ipStrings(r.cfg.IPs)})
	if err != nil {
		return err
	}
	if err := checkRenewed(resp, p, key); err != nil {
		return err
	}
	if err := r.cfg.Holder.Update([]byte(resp.Cert), keyPEM); err != nil {
		return fmt.Errorf("renewal: %w", err)
	}
	if r.cfg.DataDir != "" {
		if err := SaveNodeCert(r.cfg.DataDir, []byte(resp.Cert), keyPEM); err != nil {
			return fmt.Errorf("renewal: the new certificate is in use but not saved: %w", err)
		}
	}
	np := r.cfg.Holder.Peer()
	r.cfg.Logger.Info("identity: node certificate renewed", "node", np.Node, "serial", np.Serial, "notAfter", np.NotAfter)
	if r.cfg.OnRenew != nil {
		r.cfg.OnRenew(resp)
	}
	return nil
}

// checkRenewed checks that the answer is a certificate for the same node
// and role, and for key.
func checkRenewed(resp *JoinResponse, was pki.Peer, key *ecdsa.PrivateKey) error {
	c, err := pki.ParseCertPEM([]byte(resp.Cert))
	if err != nil {
		return fmt.Errorf("renewal: the answer's certificate: %w", err)
	}
	p, err := pki.PeerOf(c)
	if err != nil {
		return fmt.Errorf("renewal: the answer's certificate: %w", err)
	}
	if p.Node != was.Node || p.Role != was.Role {
		return fmt.Errorf("renewal: got a certificate for %s %q, had %s %q", p.Role, p.Node, was.Role, was.Node)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return errors.New("renewal: the answer's certificate is not for the key this agent sent")
	}
	return nil
}

// RequestCertificate posts req to the agent at apiAddr (host:port or a
// URL) with client, which must present this agent's certificate (e.g.
// Holder.ClientConfig()); for RenewerConfig.Request.
func RequestCertificate(ctx context.Context, client *http.Client, apiAddr string, req CertificateRequest) (*JoinResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var resp JoinResponse
	ctx, cancel := context.WithTimeout(ctx, joinRequestTimeout)
	defer cancel()
	if err := call(ctx, client, http.MethodPost, baseURL(apiAddr)+PathCertificate, bytes.Clone(body), &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
