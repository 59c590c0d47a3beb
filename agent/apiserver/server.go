package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Backend is what the API server needs from the control plane: a way to
// commit store operations and a way to make a following read linearizable.
type Backend interface {
	// Propose commits ops as one entry and returns one Result per op. The
	// error is for the proposal as a whole (not leader, no quorum, timeout).
	Propose(ctx context.Context, ops []store.Op) ([]store.Result, error)
	// ReadBarrier returns once the local store reflects every write
	// committed before the call.
	ReadBarrier(ctx context.Context) error
}

// Reader is the local replica of the store; *store.Store satisfies it.
type Reader interface {
	Get(key store.Key) (api.Object, error)
	List(kind, namespace string, sel store.Selector) ([]api.Object, int64, error)
	Watch(kind, namespace string, fromRevision int64, sel store.Selector) (*store.Watcher, error)
}

// Limits and defaults of the API server.
const (
	// DefaultMaxBodyBytes is the largest request body accepted (3 MiB, the
	// same bound as api.MaxManifestBytes).
	DefaultMaxBodyBytes = 3 << 20
	// DefaultMaxWatchTimeout is the longest a watch stream stays open, and
	// the largest timeoutSeconds a client may ask for.
	DefaultMaxWatchTimeout = time.Hour
	// DefaultRequestTimeout bounds the read barrier and the proposal of one
	// request.
	DefaultRequestTimeout = 30 * time.Second
)

// ServerConfig configures the HTTP API server.
type ServerConfig struct {
	// Backend commits writes and provides read barriers. Required.
	Backend Backend
	// Reader is the local store. Required.
	Reader Reader
	// Clock stamps creationTimestamp; nil means time.Now.
	Clock func() time.Time
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxWatchTimeout caps watch streams; 0 means DefaultMaxWatchTimeout.
	MaxWatchTimeout time.Duration
	// RequestTimeout bounds barrier and proposal; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Status, if set, is served as JSON at /v1/cluster/raft.
	Status func() any
	// Members, if set, is served as JSON at /v1/cluster/members (the
	// gossip view; see MembersView).
	Members func() any
	// Voters, if set, serves /v1/cluster/raft/voters (manual voter changes).
	Voters VoterAdmin
	// Version is served at /version; empty means "dev".
	Version string
	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
	// HostPathAllow lists the host directories pods may mount (hostPath
	// volumes below an entry; see api.CheckHostPath). Empty: every
	// hostPath is refused.
	HostPathAllow []string
	// ClusterCIDR is the range Nodes' pod CIDRs must lie in; empty means
	// only their form, default routes and overlaps are checked.
	ClusterCIDR string
}

// Validate reports the first configuration error, naming the field.
func (c ServerConfig) Validate() error {
	switch {
	case c.Backend == nil:
		return errors.New("ServerConfig.Backend: must not be nil")
	case c.Reader == nil:
		return errors.New("ServerConfig.Reader: must not be nil")
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("ServerConfig.MaxBodyBytes: %d must not be negative", c.MaxBodyBytes)
	case c.MaxWatchTimeout < 0:
		return fmt.Errorf("ServerConfig.MaxWatchTimeout: %v must not be negative", c.MaxWatchTimeout)
	case c.RequestTimeout < 0:
		return fmt.Errorf("ServerConfig.RequestTimeout: %v must not be negative", c.RequestTimeout)
	}
	if err := api.CheckHostPathAllow(c.HostPathAllow); err != nil {
		return fmt.Errorf("ServerConfig.HostPathAllow: %v", err)
	}
	if c.ClusterCIDR != "" {
		if _, err := netip.ParsePrefix(c.ClusterCIDR); err != nil {
			return fmt.Errorf("ServerConfig.ClusterCIDR: %v", err)
		}
	}
	return nil
}

// Server serves the HTTP API.
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	prop    *proposer
	mux     *http.ServeMux
	closing chan struct{}
	once    sync.Once
	lines   watchLines // watch event lines shared among watches
}

// NewServer checks cfg, fills its defaults and builds a server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxWatchTimeout == 0 {
		cfg.MaxWatchTimeout = DefaultMaxWatchTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		prop:    &proposer{backend: cfg.Backend, reader: cfg.Reader, now: cfg.Clock},
		mux:     http.NewServeMux(),
		closing: make(chan struct{}),
	}
	s.prop.hostPathAllow, s.prop.clusterCIDR = cfg.HostPathAllow, cfg.ClusterCIDR
	s.mux.HandleFunc("/api/v1/{path...}", func(w http.ResponseWriter, r *http.Request) {
		s.serveResource(w, r, "", "v1", r.PathValue("path"))
	})
	s.mux.HandleFunc("/apis/{group}/{version}/{path...}", func(w http.ResponseWriter, r *http.Request) {
		s.serveResource(w, r, r.PathValue("group"), r.PathValue("version"), r.PathValue("path"))
	})
	s.mux.HandleFunc("/api", s.serveAPIVersions)
	s.mux.HandleFunc("/api/{version}", func(w http.ResponseWriter, r *http.Request) {
		s.serveResourceList(w, r, "", r.PathValue("version"))
	})
	s.mux.HandleFunc("/apis", s.serveAPIGroupList)
	s.mux.HandleFunc("/apis/{group}", s.serveAPIGroup)
	s.mux.HandleFunc("/apis/{group}/{version}", func(w http.ResponseWriter, r *http.Request) {
		s.serveResourceList(w, r, r.PathValue("group"), r.PathValue("version"))
	})
	s.mux.HandleFunc("/openapi/v2", s.serveOpenAPIV2)
	s.mux.HandleFunc("/openapi/v3", s.serveOpenAPIV3Index)
	s.mux.HandleFunc("/openapi/v3/{path...}", s.serveOpenAPIV3)
	s.mux.HandleFunc("/healthz", s.serveHealthz)
	s.mux.HandleFunc("/version", s.serveVersion)
	s.mux.HandleFunc("/v1/cluster/raft", s.serveRaft)
	s.mux.HandleFunc("/v1/cluster/members", s.serveMembers)
	s.mux.HandleFunc("/v1/cluster/raft/voters", s.serveVoters)
	s.mux.HandleFunc("/v1/cluster/raft/voters/", s.serveVoters)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"the server could not find the requested resource %q", r.URL.Path))
	})
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Close ends every open watch stream, so that http.Server.Shutdown does not
// wait for them (register it with http.Server.RegisterOnShutdown). Other
// requests are unaffected.
func (s *Server) Close() { s.once.Do(func() { close(s.closing) }) }

// target is what a resource URL names.
type target struct {
	info      api.KindInfo
	namespace string // "" for cluster-scoped kinds, or a list across namespaces
	name      string // "" for a collection
	status    bool   // the /status subresource
}

func (t target) key() store.Key {
	return store.Key{Kind: t.info.Kind, Namespace: t.namespace, Name: t.name}
}

// resolve maps the part of a URL after /api/v1/ or /apis/{group}/{version}/
// to a target.
func resolve(group, version, rest string) (target, *api.StatusError) {
	notFound := func() (target, *api.StatusError) {
		return target{}, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"the server could not find the requested resource %q", strings.TrimSuffix(apiPrefix(group, version)+rest, "/"))
	}
	if version != "v1" || rest == "" {
		return notFound()
	}
	segs := strings.Split(rest, "/")
	for _, s := range segs {
		if s == "" {
			return notFound()
		}
	}
	var t target
	namespaced := len(segs) >= 3 && segs[0] == "namespaces" && !(len(segs) == 3 && segs[2] == "status")
	if namespaced {
		t.namespace = segs[1]
		segs = segs[2:]
	}
	info, ok := api.LookupGroupResource(group, segs[0])
	if !ok {
		g := group
		if g == "" {
			g = "core"
		}
		return target{}, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, &api.StatusDetails{Kind: segs[0], Group: group},
			"the server could not find the requested resource: resource %q is not served in API group %q", segs[0], g)
	}
	t.info = info
	rest2 := segs[1:]
	switch {
	case namespaced && !info.Namespaced:
		return notFound() // /namespaces/x/nodes
	case !namespaced && info.Namespaced && len(rest2) > 0:
		// /api/v1/pods/web: a namespaced object needs its namespace.
		return target{}, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"%s are namespaced: use %snamespaces/{namespace}/%s", info.Resource, apiPrefix(group, version), strings.Join(segs, "/"))
	}
	switch len(rest2) {
	case 0:
	case 1:
		t.name = rest2[0]
	case 2:
		if rest2[1] != "status" || !hasStatus(info) {
			return notFound()
		}
		t.name, t.status = rest2[0], true
	default:
		return notFound()
	}
	return t, nil
}

// hasStatus reports whether a kind has a status to serve at /status.
func hasStatus(info api.KindInfo) bool {
	_, ok := reflect.TypeOf(info.New()).Elem().FieldByName("Status")
	return ok
}

func apiPrefix(group, version string) string {
	if group == "" {
		return "/api/" + version + "/"
	}
	return "/apis/" + group + "/" + version + "/"
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, group, version, rest string) {
	if t, ok := resolveScale(group, version, rest); ok {
		s.serveScale(w, r, t)
		return
	}
	t, serr := resolve(group, version, rest)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	switch {
	case t.name == "": // collection
		switch r.Method {
		case http.MethodGet:
			s.handleList(w, r, t)
			return
		case http.MethodPost:
			if t.info.Namespaced && t.namespace == "" {
				s.MethodNotAllowed(w, r, "GET")
				return
			}
			s.handleCreate(w, r, t)
			return
		}
		allow := "GET, POST"
		if t.info.Namespaced && t.namespace == "" {
			allow = "GET"
		}
		s.MethodNotAllowed(w, r, allow)
	case t.status:
		switch r.Method {
		case http.MethodGet:
			s.handleGet(w, r, t)
		case http.MethodPut:
			s.handleUpdate(w, r, t)
		case http.MethodPatch:
			s.handlePatch(w, r, t)
		default:
			s.MethodNotAllowed(w, r, "GET, PUT, PATCH")
		}
	default:
		switch r.Method {
		case http.MethodGet:
			s.handleGet(w, r, t)
		case http.MethodPut:
			s.handleUpdate(w, r, t)
		case http.MethodPatch:
			s.handlePatch(w, r, t)
		case http.MethodDelete:
			s.handleDelete(w, r, t)
		default:
			s.MethodNotAllowed(w, r, "GET, PUT, PATCH, DELETE")
		}
	}
}

// MethodNotAllowed answers 405 with the methods the path allows.
func (s *Server) MethodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	s.WriteError(w, r, api.NewStatusError(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, nil,
		"method %s is not supported on %s (allowed: %s)", r.Method, r.URL.Path, allow))
}

// requestContext bounds the control-plane work of one request.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

// queryBool reads a boolean query parameter; absent is false.
func queryBool(r *http.Request, name string) (bool, *api.StatusError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, api.NewBadRequest("%s: %q is not a boolean (use true or false)", name, v)
	}
	return b, nil
}

// barrier makes the following read linearizable unless the client asked
// for a stale read.
func (s *Server) barrier(r *http.Request) error {
	stale, serr := queryBool(r, "stale")
	if serr != nil {
		return serr
	}
	if stale {
		return nil
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	return s.cfg.Backend.ReadBarrier(ctx)
}

func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.MethodNotAllowed(w, r, "GET")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok")
}

func (s *Server) serveRaft(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.MethodNotAllowed(w, r, "GET")
		return
	}
	if s.cfg.Status == nil {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"raft status is not available on this agent"))
		return
	}
	s.WriteJSON(w, r, http.StatusOK, s.cfg.Status())
}

// withTypeMeta makes sure an object leaves with apiVersion and kind,
// copying it rather than touching a shared store object.
func withTypeMeta(obj api.Object) api.Object {
	if tm := obj.GetTypeMeta(); tm.Kind == "" || tm.APIVersion == "" {
		obj = obj.DeepCopyObject()
		api.SetTypeMeta(obj)
	}
	return obj
}

func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, obj api.Object) {
	s.WriteJSON(w, r, code, withTypeMeta(obj))
}

// WriteJSON sends v as JSON with the given status code.
func (s *Server) WriteJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("api: encoding response", "path", r.URL.Path, "err", err)
		code = http.StatusInternalServerError
		b, _ = json.Marshal(api.NewInternalError(err).Status())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
