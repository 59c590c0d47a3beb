package streams

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// The HTTP upgrade to SPDY/3.1, shared by port-forward and the remote
// commands (exec, attach) of clients older than WebSocket support (kubectl
// < 1.30, client-go's SPDY executor): the client names the protocols it
// speaks in X-Stream-Protocol-Version (one header each, or comma-separated),
// the server answers 101 with the one it chose.
const (
	spdyUpgrade          = "SPDY/3.1"
	headerStreamProtocol = "X-Stream-Protocol-Version"
)

// isSPDY reports whether r asks for an upgrade to SPDY/3.1.
func isSPDY(r *http.Request) bool { return strings.EqualFold(r.Header.Get("Upgrade"), spdyUpgrade) }

// spdyOffered is the protocols r offers in X-Stream-Protocol-Version; nil
// unless r asks for an upgrade to SPDY/3.1.
func spdyOffered(r *http.Request) []string {
	if !isSPDY(r) {
		return nil
	}
	var out []string
	for _, v := range r.Header.Values(headerStreamProtocol) {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// negotiateSPDY is the first of served (preferred first) that r offers,
// "" when none.
func negotiateSPDY(r *http.Request, served []string) string {
	offered := spdyOffered(r)
	for _, p := range served {
		if slices.Contains(offered, p) {
			return p
		}
	}
	return ""
}

// upgradeSPDY answers r with 101 Switching Protocols to SPDY/3.1 and
// protocol, and returns the hijacked connection for the SPDY framing. On
// error the client has been answered (or the connection dropped).
func upgradeSPDY(w http.ResponseWriter, r *http.Request, protocol string) (net.Conn, error) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeStatus(w, api.NewBadRequest("the upgrade to %s needs HTTP/1.1: %v", spdyUpgrade, err).Status())
		return nil, err
	}
	_ = c.SetDeadline(time.Time{}) // the HTTP server's, if any
	if brw.Reader.Buffered() > 0 {
		c.Close() // the client spoke before the upgrade: not SPDY
		return nil, errors.New("bytes sent before the SPDY upgrade was answered")
	}
	_, err = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+spdyUpgrade+
		"\r\n"+headerStreamProtocol+": "+protocol+"\r\n\r\n")
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
