package dns

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf returns the resolv.conf of a pod in namespace, whose resolver
// is the cluster DNS server at nameserver. domain "" means cluster.local.
// With ndots:5 a short name ("db", "db.other") is tried under the search
// list first, as in Kubernetes.
func ResolvConf(nameserver, namespace, domain string) []byte {
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" {
		domain = "cluster.local"
	}
	if namespace == "" {
		namespace = "default"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "search %s.svc.%s svc.%s %s\n", namespace, domain, domain, domain)
	fmt.Fprintf(&b, "nameserver %s\n", nameserver)
	b.WriteString("options ndots:5\n")
	return b.Bytes()
}

// ParseResolvConf returns the nameservers of a resolv.conf as upstream
// addresses ("IP:53", "[IPv6]:53"), in file order. Lines it does not
// understand, and nameserver lines that are not IP addresses, are skipped,
// as the C resolver does.
func ParseResolvConf(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		ap := netip.AddrPortFrom(a, 53)
		out = append(out, ap.String())
	}
	return out
}

// ReadResolvConf reads the nameservers of the resolv.conf at path, as
// ParseResolvConf.
func ReadResolvConf(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseResolvConf(data), nil
}
