package dns

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// Size limits of the request path; see the package documentation.
const (
	// MaxQuerySize is the largest query accepted over UDP or TCP.
	MaxQuerySize = 4096
	// MaxPlainUDPQuery is the largest UDP query accepted without an EDNS0
	// OPT record (RFC 1035's 512-byte limit).
	MaxPlainUDPQuery = 512
	// MaxUDPAnswer is the largest UDP answer sent, whatever larger buffer
	// a client advertises (the size that avoids IP fragmentation on
	// common paths, as chosen by DNS flag day 2020).
	MaxUDPAnswer = 1232
	// MaxTCPAnswer is the largest answer over TCP (the 16-bit length prefix).
	MaxTCPAnswer = 65535
)

// Errors returned by this package.
var (
	// ErrServerClosed is returned by Serve after Shutdown.
	ErrServerClosed = errors.New("dns: server closed")
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Domain is the cluster domain the server is authoritative for
	// ("cluster.local"). Queries under it are never forwarded.
	Domain string

	// TTL is the TTL of every record served from the index.
	TTL time.Duration
	// NegativeTTL is how long a client may cache NXDOMAIN and NODATA:
	// the TTL and the MINIMUM field of the SOA sent with them.
	NegativeTTL time.Duration

	// Upstreams are the resolvers for names outside Domain, as "IP" or
	// "IP:port" ("[IPv6]:port"), tried in order. When empty, they are read
	// from ResolvConfPath; when that is empty too (or has no nameserver),
	// such names get SERVFAIL.
	Upstreams []string
	// ResolvConfPath is the resolv.conf whose nameservers become the
	// upstreams when Upstreams is empty. Read once, by New.
	ResolvConfPath string
	// ForwardTimeout bounds one forwarded query over all upstreams
	// together; when it runs out the client gets SERVFAIL.
	ForwardTimeout time.Duration
	// MaxForwards bounds the forwarded queries in flight; one more gets
	// SERVFAIL at once.
	MaxForwards int

	// UDPReaders is the number of goroutines reading each UDP socket. On
	// Linux one reader takes queries in batches and is the most efficient;
	// to use more cores, serve several sockets bound with SO_REUSEPORT
	// (Listen).
	UDPReaders int
	// MaxTCPConns bounds the open TCP connections; more are closed as
	// soon as they are accepted.
	MaxTCPConns int
	// TCPIdleTimeout closes a TCP connection that sends no complete query
	// for that long.
	TCPIdleTimeout time.Duration

	// Logf, when set, receives the rare events worth a line (skipped
	// objects, socket errors). It must not block.
	Logf func(format string, args ...any)
}

// DefaultConfig returns the configuration an agent uses: cluster.local,
// 5 s TTLs, upstreams from /etc/resolv.conf, 2 s to answer a forwarded
// query.
func DefaultConfig() Config {
	return Config{
		Domain:         "cluster.local",
		TTL:            5 * time.Second,
		NegativeTTL:    5 * time.Second,
		ResolvConfPath: "/etc/resolv.conf",
		ForwardTimeout: 2 * time.Second,
		MaxForwards:    256,
		UDPReaders:     1,
		MaxTCPConns:    128,
		TCPIdleTimeout: 10 * time.Second,
	}
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	d := strings.TrimSuffix(c.Domain, ".")
	if d == "" {
		return errors.New("dns: Domain is empty")
	}
	if _, ok := mdns.IsDomainName(d); !ok {
		return fmt.Errorf("dns: Domain %q is not a domain name", c.Domain)
	}
	for _, l := range strings.Split(d, ".") {
		if !validLabel(strings.ToLower(l)) {
			return fmt.Errorf("dns: Domain %q: label %q is not a DNS label", c.Domain, l)
		}
	}
	if c.TTL < 0 || c.TTL > 24*time.Hour {
		return fmt.Errorf("dns: TTL %v is outside 0..24h", c.TTL)
	}
	if c.NegativeTTL < 0 || c.NegativeTTL > 24*time.Hour {
		return fmt.Errorf("dns: NegativeTTL %v is outside 0..24h", c.NegativeTTL)
	}
	for _, u := range c.Upstreams {
		if _, err := upstreamAddr(u); err != nil {
			return err
		}
	}
	if c.ForwardTimeout <= 0 {
		return fmt.Errorf("dns: ForwardTimeout %v must be positive", c.ForwardTimeout)
	}
	if c.MaxForwards < 1 {
		return fmt.Errorf("dns: MaxForwards %d must be at least 1", c.MaxForwards)
	}
	if c.UDPReaders < 1 || c.UDPReaders > 64 {
		return fmt.Errorf("dns: UDPReaders %d is outside 1..64", c.UDPReaders)
	}
	if c.MaxTCPConns < 1 {
		return fmt.Errorf("dns: MaxTCPConns %d must be at least 1", c.MaxTCPConns)
	}
	if c.TCPIdleTimeout <= 0 {
		return fmt.Errorf("dns: TCPIdleTimeout %v must be positive", c.TCPIdleTimeout)
	}
	return nil
}

// upstreamAddr turns "IP" or "IP:port" into a netip.AddrPort (port 53 by
// default).
func upstreamAddr(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dns: upstream %q is neither IP nor IP:port", s)
	}
	return netip.AddrPortFrom(a, 53), nil
}

// validLabel reports whether l is a label this package puts in names it
// builds: 1..63 of [a-z0-9-_]. Object names are DNS-1123 already; this
// keeps a malformed one from producing a name with more labels than meant.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
