package agent

// The agent's side of agent/identity: the store behind the join, renewal
// and token endpoints (identityCluster), their routing to the leader, the
// cluster record a bootstrap made, and the renewal of this agent's
// certificate.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
	"github.com/shoal-dev/shoal/consensus/store"
)

// clientAddrHeader carries, from an agent that relays a join to the
// leader, the address of the client that sent it: failed joins are counted
// against that client, not the relay. The API drops X-Shoal-* headers from
// anyone but an agent.
const clientAddrHeader = "X-Shoal-Client-Addr"

// identityPaths are the endpoints of agent/identity; they run on the
// leader (the others relay them).
var identityPaths = []string{identity.PathJoinCA, identity.PathJoin, identity.PathCertificate,
	identity.PathTokens, identity.PathTokensRotate, identity.PathTokensAPI, identity.PathRevoke,
	identity.PathGossip, identity.PathGossipRotate}

// identityCluster is identity.Cluster on this agent's store and Raft node.
type identityCluster struct{ a *Agent }

var recordKey = store.Key{Kind: "Secret", Namespace: identity.RecordNamespace, Name: identity.RecordName}

func (c identityCluster) Record(ctx context.Context) (identity.Record, error) {
	obj, err := c.a.Store().Get(recordKey)
	if err != nil {
		return identity.Record{}, err
	}
	s, ok := obj.(*api.Secret)
	if !ok {
		return identity.Record{}, fmt.Errorf("%s/%s is a %T", recordKey.Namespace, recordKey.Name, obj)
	}
	return identity.DecodeRecord(s)
}

func (c identityCluster) Update(ctx context.Context, old, new identity.Record) error {
	n := c.a.Node()
	if n == nil {
		return c.a.notVoter()
	}
	new.ResourceVersion = old.ResourceVersion
	res, err := n.Propose(ctx, []store.Op{{Type: store.OpUpdate, Object: identity.EncodeRecord(new)}})
	if err != nil {
		return err
	}
	return res[0].Err
}

func (c identityCluster) KEK() []byte { return c.a.kek }

func (c identityCluster) IsLeader() bool { return agentRoute{c.a}.IsLeader() }

// newIdentityServer builds the server of the identity endpoints.
func (a *Agent) newIdentityServer() (*identity.Server, error) {
	return identity.NewServer(identity.ServerConfig{
		Cluster: identityCluster{a},
		CertTTL: a.cfg.CertTTL,
		Logger:  a.log,
		Members: a.gossipMembers,
		SourceOf: func(r *http.Request) string {
			if v := r.Header.Get(clientAddrHeader); v != "" {
				return v
			}
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				return r.RemoteAddr
			}
			return host
		},
	})
}

// serveIdentity runs an identity endpoint on the leader, or relays it
// there (the client's credentials go along: the bearer token in its
// header, the join token in its body; a renewal must be sent to the leader
// directly, as it is authenticated by the TLS client certificate).
func (a *Agent) serveIdentity(w http.ResponseWriter, r *http.Request) {
	if a.idServer == nil {
		a.server.WriteError(w, r, api.NewServiceUnavailable("this agent runs without security (--insecure): it has no cluster identity"))
		return
	}
	route := agentRoute{a}
	if route.IsLeader() {
		a.idServer.ServeHTTP(w, r)
		return
	}
	leader := route.LeaderAPI()
	if leader == "" {
		a.server.WriteError(w, r, api.NewServiceUnavailable("no leader known at the moment; retry shortly"))
		return
	}
	client := r.Header.Get(clientAddrHeader)
	if client == "" {
		client, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: a.scheme(), Host: leader})
			pr.Out.Header.Set(clientAddrHeader, client)
		},
		Transport: a.peerTr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.server.WriteError(w, r, api.NewServiceUnavailable(fmt.Sprintf("the leader (%s) cannot be reached: %v", leader, err)))
		},
	}
	proxy.ServeHTTP(w, r)
}

// writePendingRecord has the leader store the cluster record a bootstrap
// made, unless the store holds one already.
func (a *Agent) writePendingRecord(ctx context.Context, n interface {
	Propose(context.Context, []store.Op) ([]store.Result, error)
}) {
	a.mu.Lock()
	rec := a.pendingRecord
	a.mu.Unlock()
	if rec == nil {
		return
	}
	for ctx.Err() == nil {
		s := identity.EncodeRecord(*rec)
		s.ResourceVersion = ""
		s.UID = api.NewUID()
		s.CreationTimestamp = api.NewTime(a.cfg.Clock.Now())
		res, err := n.Propose(ctx, []store.Op{{Type: store.OpCreate, Object: s}})
		if err == nil {
			err = res[0].Err
		}
		if err == nil || errors.Is(err, store.ErrAlreadyExists) {
			a.log.Info("bootstrap: the cluster identity record is in the store")
			if err := identity.RemovePendingRecord(a.cfg.DataDir); err != nil {
				a.log.Warn("bootstrap: removing the stored cluster record's copy", "err", err)
			}
			a.mu.Lock()
			a.pendingRecord = nil
			a.mu.Unlock()
			return
		}
		a.log.Warn("bootstrap: writing the cluster identity record", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// runRenewer renews this agent's certificate before it expires, asking the
// leader (itself, when it leads); the holder takes the new certificate for
// later handshakes and the files are updated.
func (a *Agent) runRenewer(ctx context.Context, h *pki.Holder) {
	r, err := identity.NewRenewer(identity.RenewerConfig{
		Holder:  h,
		IPs:     a.cfg.certIPs(),
		DataDir: a.cfg.DataDir,
		Logger:  a.log.With("loop", "renewal"),
		Request: func(ctx context.Context, req identity.CertificateRequest) (*identity.JoinResponse, error) {
			route := agentRoute{a}
			addr := route.LeaderAPI()
			if route.IsLeader() {
				addr = a.ln.Addr().String()
			}
			if addr == "" {
				return nil, errors.New("no leader known")
			}
			return identity.RequestCertificate(ctx, &http.Client{Transport: a.peerTr}, addr, req)
		},
		OnRenew: func(resp *identity.JoinResponse) {
			a.log.Info("renewal: new certificate in use", "not_after", h.NotAfter())
		},
	})
	if err != nil {
		a.log.Error("renewal: not started", "err", err)
		return
	}
	r.Run(ctx)
}
