package consensus

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// streamLayer is raft's StreamLayer over TCP, optionally wrapped in TLS. The
// same type serves both: with a nil *tls.Config connections are plain TCP;
// with one, the listener terminates TLS and Dial runs a TLS handshake (mutual
// when the config asks for client certificates). Turning TLS on is a
// configuration change only.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// newStreamLayer listens on bind. advertise may be empty, and then the
// listener's own address is advertised; it must be a specific IP.
func newStreamLayer(bind, advertise string, tlsConfig *tls.Config) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("consensus: raft listener: %w", err)
	}
	var adv net.Addr = ln.Addr()
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("consensus: AdvertiseAddr: %w", err)
		}
		adv = a
	}
	if err := checkAdvertise(adv.String()); err != nil {
		ln.Close()
		return nil, fmt.Errorf("consensus: advertised raft address %s: %w (set AdvertiseAddr)", adv, err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	return &streamLayer{Listener: ln, advertise: adv, tls: tlsConfig}, nil
}

// Addr is the advertised address: raft gives it to peers as ours.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a peer's raft listener.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(address))
	}
	cfg := s.tls
	if cfg.ServerName == "" {
		// Peers are addressed by IP; verify the certificate against it
		// unless the configuration names the server itself.
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	return tls.DialWithDialer(d, "tcp", string(address), cfg)
}

// newTCPTransport builds raft's network transport on our stream layer.
func newTCPTransport(cfg Config, logger hclog.Logger) (*raft.NetworkTransport, error) {
	sl, err := newStreamLayer(cfg.BindAddr, cfg.AdvertiseAddr, cfg.TLS)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  sl,
		MaxPool: 3,
		// Bounds one RPC's I/O; InstallSnapshot scales it by size itself.
		Timeout: 10 * time.Second,
		Logger:  logger.Named("transport"),
	}), nil
}
