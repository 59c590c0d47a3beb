package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// MaxOutput bounds how much of an HTTP body or of an exec probe's output is
// read and kept in a Result's message.
const MaxOutput = 10 << 10

// maxRedirects is how many same-host redirects an httpGet probe follows.
const maxRedirects = 10

// userAgent is sent by httpGet probes unless the probe sets its own.
const userAgent = "shoal-probe/1"

// Target is the container a probe runs against.
type Target struct {
	PodIP       string
	ContainerID string
	// Ports maps the container's named ports to their numbers; a probe
	// that names its port is resolved through it.
	Ports map[string]int32
}

// PortsOf returns the named ports of c, for Target.Ports.
func PortsOf(c api.Container) map[string]int32 {
	var m map[string]int32
	for _, p := range c.Ports {
		if p.Name == "" {
			continue
		}
		if m == nil {
			m = map[string]int32{}
		}
		m[p.Name] = p.ContainerPort
	}
	return m
}

// Result is what one probe execution found.
type Result struct {
	Success bool
	// Message says why a probe failed, or carries a warning on success
	// (for example a redirect to another host that was not followed).
	Message string
}

// ExecFunc runs cmd inside the container and returns its exit code and its
// combined output. err is for failures to run the command at all; a
// command that ran and exited non-zero returns err == nil. It must honour
// ctx's deadline.
type ExecFunc func(ctx context.Context, containerID string, cmd []string) (exitCode int, output []byte, err error)

// Prober executes probes. The zero value runs httpGet and tcpSocket probes
// with a default client and dialer and fails exec probes.
type Prober struct {
	// HTTPClient sends httpGet probes. When nil, a client that does not
	// keep connections alive and does not verify TLS certificates (as
	// Kubernetes does for HTTPS probes) is used, dialing through Dial.
	// Its CheckRedirect is always replaced by the probe's redirect policy.
	HTTPClient *http.Client
	// Dial opens tcpSocket probe connections (and httpGet ones when
	// HTTPClient is nil). Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Exec runs exec probes. Nil makes every exec probe fail.
	Exec ExecFunc
}

// Run executes pr once against target, within the probe's timeoutSeconds
// (1 s when unset). It never returns an error: every problem is a failed
// Result with a message.
func (p *Prober) Run(ctx context.Context, pr *api.Probe, target Target) Result {
	if pr == nil {
		return Result{Success: false, Message: "no probe"}
	}
	timeout := time.Duration(pr.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = api.DefaultProbeTimeoutSeconds * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case pr.Exec != nil:
		return p.runExec(ctx, pr.Exec, target, timeout)
	case pr.HTTPGet != nil:
		return p.runHTTP(ctx, pr.HTTPGet, target, timeout)
	case pr.TCPSocket != nil:
		return p.runTCP(ctx, pr.TCPSocket, target, timeout)
	}
	return Result{Message: "probe has no handler (exec, httpGet or tcpSocket)"}
}

// resolvePort turns a probe port (a number or a container port name) into a
// port number.
func resolvePort(port api.IntOrString, ports map[string]int32) (int, error) {
	n := port.IntVal
	if port.IsString {
		v, ok := ports[port.StrVal]
		if !ok {
			// A numeric string is accepted as a number, as Kubernetes does.
			if i, err := strconv.Atoi(port.StrVal); err == nil {
				v, ok = int32(i), true
			}
		}
		if !ok {
			return 0, fmt.Errorf("port %q is not a named port of the container", port.StrVal)
		}
		n = v
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port %d: must be between 1 and 65535", n)
	}
	return int(n), nil
}

func (p *Prober) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial
	}
	var d net.Dialer
	return d.DialContext
}

func (p *Prober) runTCP(ctx context.Context, a *api.TCPSocketAction, t Target, timeout time.Duration) Result {
	port, err := resolvePort(a.Port, t.Ports)
	if err != nil {
		return Result{Message: err.Error()}
	}
	host := a.Host
	if host == "" {
		host = t.PodIP
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	conn, err := p.dialer()(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return Result{Message: fmt.Sprintf("dial tcp %s: timeout after %s", addr, timeout)}
		}
		return Result{Message: err.Error()}
	}
	conn.Close()
	return Result{Success: true}
}

func (p *Prober) runExec(ctx context.Context, a *api.ExecAction, t Target, timeout time.Duration) Result {
	if p.Exec == nil {
		return Result{Message: "exec probes are not supported by this prober"}
	}
	if len(a.Command) == 0 {
		return Result{Message: "exec probe has no command"}
	}
	code, out, err := p.Exec(ctx, t.ContainerID, a.Command)
	if ctx.Err() == context.DeadlineExceeded {
		return Result{Message: fmt.Sprintf("command %q timed out after %s", a.Command, timeout)}
	}
	if err != nil {
		return Result{Message: fmt.Sprintf("command %q could not run: %v", a.Command, err)}
	}
	msg := boundText(out)
	if code != 0 {
		if msg == "" {
			return Result{Message: fmt.Sprintf("command %q exited with %d", a.Command, code)}
		}
		return Result{Message: fmt.Sprintf("command %q exited with %d: %s", a.Command, code, msg)}
	}
	return Result{Success: true, Message: msg}
}

func (p *Prober) runHTTP(ctx context.Context, a *api.HTTPGetAction, t Target, timeout time.Duration) Result {
	port, err := resolvePort(a.Port, t.Ports)
	if err != nil {
		return Result{Message: err.Error()}
	}
	scheme := strings.ToLower(a.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return Result{Message: fmt.Sprintf("unsupported scheme %q", a.Scheme)}
	}
	host := a.Host
	if host == "" {
		host = t.PodIP
	}
	path := a.Path
	if path == "" {
		path = "/"
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
	if err != nil {
		return Result{Message: fmt.Sprintf("invalid probe URL: %v", err)}
	}
	ref, err := url.Parse(path)
	if err != nil {
		return Result{Message: fmt.Sprintf("invalid probe path %q: %v", path, err)}
	}
	u = u.ResolveReference(ref)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Result{Message: fmt.Sprintf("invalid probe request: %v", err)}
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range a.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}

	client := p.httpClient()
	var warning string
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if r.URL.Hostname() != via[0].URL.Hostname() {
			// Like Kubernetes: a redirect to another host ends the
			// probe, and the redirect response itself counts (3xx is
			// success), with a warning.
			warning = fmt.Sprintf("probe not following redirect from %s to another host %s", via[0].URL, r.URL)
			return http.ErrUseLastResponse
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return Result{Message: fmt.Sprintf("GET %s: timeout after %s", u, timeout)}
		}
		return Result{Message: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxOutput))
	if err != nil && ctx.Err() != nil {
		return Result{Message: fmt.Sprintf("GET %s: timeout reading the body after %s", u, timeout)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return Result{Success: true, Message: warning}
	}
	return Result{Message: fmt.Sprintf("HTTP probe failed with status %d: %s", resp.StatusCode, boundText(body))}
}

// httpClient returns a fresh client value (so that CheckRedirect can be set
// per probe) sharing the configured transport.
func (p *Prober) httpClient() *http.Client {
	if p.HTTPClient != nil {
		c := *p.HTTPClient
		return &c
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:       p.dialer(),
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, like Kubernetes
		Proxy:             nil,
	}}
}

// boundText keeps at most MaxOutput bytes of b as valid UTF-8, trimmed of
// surrounding white space.
func boundText(b []byte) string {
	if len(b) > MaxOutput {
		b = b[:MaxOutput]
	}
	return strings.ToValidUTF8(string(bytes.TrimSpace(b)), "\uFFFD")
}
