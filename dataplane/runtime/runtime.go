package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Runtime is a connection to one containerd daemon, in one namespace. Its
// methods are safe for concurrent use.
type Runtime struct {
	cfg Config
	oci string // the OCI runtime binary new containers get (resolveOCIRuntime)

	mu     sync.Mutex // guards client and gen
	client *client.Client
	gen    uint64 // bumped at each reconnect (Reconnects reads it)

	hosts    docker.RegistryHosts
	pullMu   sync.Mutex
	pulling  map[string]*sync.Mutex // one pull per reference at a time
	events   *eventHub
	cancel   context.CancelFunc
	watching sync.WaitGroup

	iomu     sync.Mutex
	ios      map[string]*containerIO // by container ID; nil: being resumed
	ioClosed bool
}

// New dials containerd. The gRPC connection is made lazily, so New succeeds
// while containerd is down; the first call reports it. New starts the event
// watcher that records OOM kills and feeds Events.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	oci, err := cfg.resolveOCIRuntime()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg.Socket,
		client.WithDefaultNamespace(cfg.Namespace),
		client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", cfg.Socket, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg:     cfg,
		oci:     oci,
		client:  c,
		hosts:   registryHosts(cfg),
		pulling: map[string]*sync.Mutex{},
		events:  newEventHub(),
		cancel:  cancel,
		ios:     map[string]*containerIO{},
	}
	r.watching.Add(1)
	go r.watchEvents(wctx)
	return r, nil
}

// Close stops the event watcher, stops reading containers' output (the
// next runtime on this node reads it again, see containerio.go) and closes
// the connection. Containers keep running.
func (r *Runtime) Close() error {
	r.closeIO()
	r.cancel()
	r.watching.Wait()
	r.events.closeAll()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.client.Close()
}

// ns returns ctx in the runtime's containerd namespace.
func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// call runs fn with the current client. When fn fails because containerd is
// unavailable (it restarted, so the old connection broke and gRPC is backing
// off before redialling), call makes a fresh connection with
// client.Reconnect and runs fn once more. Every fn is one idempotent step,
// so running it twice is safe.
func (r *Runtime) call(ctx context.Context, fn func(ctx context.Context, c *client.Client) error) error {
	r.mu.Lock()
	c, gen := r.client, r.gen
	r.mu.Unlock()
	ctx = r.ns(ctx)
	err := fn(ctx, c)
	if err == nil || !isUnavailable(err) || ctx.Err() != nil {
		return err
	}
	if rerr := r.reconnect(gen); rerr != nil {
		return fmt.Errorf("%w (reconnect: %v)", err, rerr)
	}
	r.mu.Lock()
	c = r.client
	r.mu.Unlock()
	return fn(ctx, c)
}

// reconnect replaces the connection unless another caller already did since
// generation gen.
func (r *Runtime) reconnect(gen uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen {
		return nil
	}
	if err := r.client.Reconnect(); err != nil {
		return err
	}
	r.gen++
	return nil
}

// Reconnects is how many times the runtime replaced its connection to
// containerd after finding it unavailable.
func (r *Runtime) Reconnects() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

func isUnavailable(err error) bool {
	if errdefs.IsUnavailable(err) {
		return true
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && se.GRPCStatus().Code() == codes.Unavailable {
		return true
	}
	return strings.Contains(err.Error(), "connection refused") && strings.Contains(err.Error(), ".sock")
}

// OCIRuntime is the OCI runtime binary (runc or crun) the containers this
// runtime creates run under.
func (r *Runtime) OCIRuntime() string { return r.oci }

// Ping checks that containerd answers.
func (r *Runtime) Ping(ctx context.Context) error {
	return r.call(ctx, func(ctx context.Context, c *client.Client) error {
		_, err := c.Version(ctx)
		return err
	})
}

// Image is an image present on the node.
type Image struct {
	Ref    string // normalised reference, e.g. docker.io/library/nginx:1.27
	Digest string // manifest (or index) digest
}

// NormalizeRef turns a Docker-style reference into its full form
// ("nginx" → "docker.io/library/nginx:latest").
func NormalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	return named.String(), nil
}

// EnsureImage makes ref present and unpacked according to the pull policy
// (Always, IfNotPresent, Never; "" means IfNotPresent). Failures wrap
// ErrImagePull or ErrImageNeverPull and name the reference and the cause.
// Concurrent calls for one reference pull once. The pull is bounded by ctx.
func (r *Runtime) EnsureImage(ctx context.Context, ref, pullPolicy string) (Image, error) {
	full, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, fmt.Errorf("%w: %v", ErrImagePull, err)
	}
	switch pullPolicy {
	case "", PullIfNotPresent, PullAlways, PullNever:
	default:
		return Image{}, fmt.Errorf("%w: image %s: unknown pull policy %q", ErrImagePull, full, pullPolicy)
	}
	lock := r.refLock(full)
	lock.Lock()
	defer lock.Unlock()

	if pullPolicy != PullAlways {
		img, present, err := r.localImage(ctx, full)
		if err != nil {
			return Image{}, err
		}
		if present {
			return img, nil
		}
		if pullPolicy == PullNever {
			return Image{}, fmt.Errorf("%w: image %s is not present on the node and the pull policy is Never", ErrImageNeverPull, full)
		}
	}
	var out Image
	err = r.call(ctx, func(ctx context.Context, c *client.Client) error {
		resolver := docker.NewResolver(docker.ResolverOptions{Hosts: r.hosts})
		img, err := c.Pull(ctx, full,
			client.WithPullUnpack,
			client.WithPullSnapshotter(r.cfg.Snapshotter),
			client.WithResolver(resolver))
		if err != nil {
			return err
		}
		out = Image{Ref: full, Digest: img.Target().Digest.String()}
		return nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("%w: image %s: %s", ErrImagePull, full, pullCause(ctx, err))
	}
	return out, nil
}

// localImage reports whether full is present and unpacked in our snapshotter.
func (r *Runtime) localImage(ctx context.Context, full string) (Image, bool, error) {
	var img Image
	var present bool
	err := r.call(ctx, func(ctx context.Context, c *client.Client) error {
		i, err := c.GetImage(ctx, full)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		unpacked, err := i.IsUnpacked(ctx, r.cfg.Snapshotter)
		if err != nil {
			return err
		}
		present = unpacked
		img = Image{Ref: full, Digest: i.Target().Digest.String()}
		return nil
	})
	if err != nil {
		return Image{}, false, fmt.Errorf("image %s: look up on the node: %w", full, err)
	}
	return img, present, nil
}

func (r *Runtime) refLock(ref string) *sync.Mutex {
	r.pullMu.Lock()
	defer r.pullMu.Unlock()
	m := r.pulling[ref]
	if m == nil {
		m = &sync.Mutex{}
		r.pulling[ref] = m
	}
	return m
}

// pullCause names why a pull failed in words a pod condition can carry.
func pullCause(ctx context.Context, err error) string {
	var nerr net.Error
	var operr *net.OpError
	switch {
	case errdefs.IsNotFound(err):
		return "not found: " + err.Error()
	case ctx.Err() != nil:
		return "timed out: " + err.Error()
	case errors.As(err, &operr), errors.As(err, &nerr):
		return "registry unreachable: " + err.Error()
	case strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "no such host"):
		return "registry unreachable: " + err.Error()
	case errdefs.IsUnauthorized(err), errdefs.IsPermissionDenied(err):
		return "unauthorized: " + err.Error()
	}
	return err.Error()
}

// registryHosts returns the registry host list for a reference's host:
// its mirrors in order, then the host itself; plain HTTP for loopback and
// configured insecure registries.
func registryHosts(cfg Config) docker.RegistryHosts {
	httpClient := &http.Client{Transport: docker.DefaultHTTPTransport(nil)}
	authorizer := docker.NewDockerAuthorizer(docker.WithAuthClient(httpClient))
	insecure := map[string]bool{}
	for _, h := range cfg.InsecureRegistries {
		insecure[h] = true
	}
	plain := func(host string) bool {
		if insecure[host] {
			return true
		}
		local, _ := docker.MatchLocalhost(host)
		return local
	}
	return func(host string) ([]docker.RegistryHost, error) {
		var hosts []docker.RegistryHost
		for _, m := range cfg.Mirrors[host] {
			scheme := "https"
			switch {
			case strings.HasPrefix(m, "http://"):
				scheme, m = "http", strings.TrimPrefix(m, "http://")
			case strings.HasPrefix(m, "https://"):
				m = strings.TrimPrefix(m, "https://")
			case plain(m):
				scheme = "http"
			}
			hosts = append(hosts, docker.RegistryHost{
				Client: httpClient, Authorizer: authorizer, Host: m, Scheme: scheme, Path: "/v2",
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			})
		}
		upstream := host
		if host == "docker.io" {
			upstream = "registry-1.docker.io"
		}
		scheme := "https"
		if plain(host) {
			scheme = "http"
		}
		hosts = append(hosts, docker.RegistryHost{
			Client: httpClient, Authorizer: authorizer, Host: upstream, Scheme: scheme, Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		})
		return hosts, nil
	}
}
