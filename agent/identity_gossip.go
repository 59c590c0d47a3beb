package agent

// Gossip key rotation, the agent's side (issue 10; the record and the
// phases are agent/identity's gossipkeys.go). Every agent whose gossip key
// came with its identity polls the record's key list (a voter reads its
// own replica, any other agent asks a voter over mutual TLS with its
// certificate), installs it in memberlist's keyring, saves it in
// DATA_DIR/tls/gossip.key and advertises the keyring in its gossip
// metadata; the leader moves a rotation on when every alive member shows
// the keyring of the current phase. An agent that was down during a
// rotation fetches the list before it joins gossip, and again whenever a
// join fails the way a wrong key makes it fail. A revoked agent's
// certificate is refused, so it never receives a key made after its
// revocation: once the rotation removes the old key it can no longer read
// or join gossip.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// Bounds of the key refresh.
const (
	// minGossipKeyPoll and maxGossipKeyPoll clamp the poll period, a third
	// of gossip's PushPullInterval (5 s with the default 15 s).
	minGossipKeyPoll = 200 * time.Millisecond
	maxGossipKeyPoll = 30 * time.Second
	// gossipKeyFetchTimeout bounds one fetch from one agent.
	gossipKeyFetchTimeout = 5 * time.Second
	// maxGossipKeySources bounds the agents one refresh asks.
	maxGossipKeySources = 8
	// gossipKeyRejoinFor bounds how long a join refused for its key is
	// retried with fresh keys before the agent gives up.
	gossipKeyRejoinFor = 2 * time.Minute
)

// gossipKeyPoll is how often keys are refreshed and the leader checks a
// rotation.
func (a *Agent) gossipKeyPoll() time.Duration {
	gc := gossip.DefaultConfig()
	if a.cfg.Gossip != nil {
		gc = *a.cfg.Gossip
	}
	return min(max(gc.PushPullInterval/3, minGossipKeyPoll), maxGossipKeyPoll)
}

// managedGossipKeys reports whether this agent's gossip keys come from the
// cluster identity (not --gossip-key, not insecure) and so follow
// rotations.
func (a *Agent) managedGossipKeys() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.gossipKeys) > 0
}

// gossipKeyring is the primary key and the others, for gossip.Config's
// GossipKey and GossipKeys: the identity's current keys when they follow
// rotations, else gossipKey alone.
func (a *Agent) gossipKeyring() (primary []byte, more [][]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.gossipKeys) == 0 {
		return a.gossipKey, nil
	}
	return a.gossipKeys[0], slices.Clone(a.gossipKeys[1:])
}

// keyringStateLocked is gossip.Meta.Keyring; the caller holds a.mu.
func (a *Agent) keyringStateLocked() string {
	return gossip.KeyringState(a.gossipKeys)
}

// runGossipKeys refreshes the keys, and on the leader moves a rotation
// on, every gossipKeyPoll until ctx ends.
func (a *Agent) runGossipKeys(ctx context.Context) {
	t := time.NewTicker(a.gossipKeyPoll())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.managedGossipKeys() {
			if _, err := a.refreshGossipKeys(ctx); err != nil && ctx.Err() == nil {
				a.log.Debug("gossip keys: refresh", "err", err)
			}
		}
		if a.idServer != nil && (agentRoute{a}).IsLeader() {
			if _, _, err := a.idServer.AdvanceRotation(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("gossip keys: moving the rotation on", "err", err)
			}
		}
	}
}

// gossipMembers is identity.ServerConfig.Members: the gossip members and
// their advertised keyrings; a leaving member is not waited for.
func (a *Agent) gossipMembers() []identity.MemberKeys {
	if a.gossip == nil {
		return nil
	}
	var out []identity.MemberKeys
	for _, m := range a.gossip.Members() {
		out = append(out, identity.MemberKeys{Name: m.Name, Alive: m.State == gossip.Alive && !m.Meta.Leaving, Keyring: m.Meta.Keyring})
	}
	return out
}

// refreshGossipKeys fetches the key list and, when it differs from the
// installed one, installs it, saves it and advertises it.
func (a *Agent) refreshGossipKeys(ctx context.Context) (bool, error) {
	keys, err := a.fetchGossipKeys(ctx)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	same := slices.EqualFunc(keys, a.gossipKeys, bytes.Equal)
	a.mu.Unlock()
	if same {
		return false, nil
	}
	if err := a.gossip.SetKeys(keys); err != nil {
		return false, err
	}
	a.mu.Lock()
	a.gossipKeys = keys
	a.mu.Unlock()
	if err := identity.SaveGossipKeys(a.cfg.DataDir, keys); err != nil {
		a.log.Warn("gossip keys: installed but not saved", "err", err)
	}
	a.log.Info("gossip keys: keyring updated", "keyring", gossip.KeyringState(keys), "primary", gossip.KeyID(keys[0]), "keys", len(keys))
	a.publishMeta()
	return true, nil
}

// fetchGossipKeys reads the record's key list: from this agent's replica
// when it is a voter holding the KEK, else from the voters it knows of
// (the leader first), then the --join agents.
func (a *Agent) fetchGossipKeys(ctx context.Context) ([][]byte, error) {
	if len(a.kek) > 0 && a.Node() != nil {
		rec, err := identityCluster{a}.Record(ctx)
		if err == nil {
			o, err := rec.Open(a.kek)
			if err != nil {
				return nil, err
			}
			return o.GossipKeys, nil
		}
		// No record in the replica yet (a voter still catching up): ask
		// the others.
	}
	own := a.Addr()
	var addrs []string
	for _, s := range append(append([]string{agentRoute{a}.LeaderAPI()}, a.voterAPIs()...), a.joinAPIs()...) {
		if s != "" && s != own && s != a.apiAdv && !slices.Contains(addrs, s) && len(addrs) < maxGossipKeySources {
			addrs = append(addrs, s)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("no voter known to ask for the gossip keys")
	}
	client := &http.Client{Transport: a.peerTr}
	var errs []error
	for _, addr := range addrs {
		fctx, cancel := context.WithTimeout(ctx, gossipKeyFetchTimeout)
		resp, err := identity.FetchGossipKeys(fctx, client, addr, a.cfg.NodeName)
		cancel()
		if err == nil {
			return resp.Keys, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// joinGossip is gossip.Join with the keys refreshed first, and, when the
// join fails the way a wrong key makes it fail, refreshed again and
// retried for up to gossipKeyRejoinFor: an agent that was down while the
// cluster rotated its key holds only the removed one.
func (a *Agent) joinGossip(ctx context.Context) error {
	if !a.managedGossipKeys() || len(a.cfg.Join) == 0 {
		return a.gossip.Join(ctx)
	}
	if _, err := a.refreshGossipKeys(ctx); err != nil && ctx.Err() == nil {
		a.log.Info("gossip keys: not refreshed before joining; joining with the saved ones", "err", err)
	}
	deadline := time.Now().Add(gossipKeyRejoinFor)
	for {
		err := a.gossip.Join(ctx)
		if err == nil || !errors.Is(err, gossip.ErrGossipKey) || time.Now().After(deadline) {
			return err
		}
		a.log.Warn("gossip: the cluster refused this agent's gossip key; fetching the current keys", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(a.gossipKeyPoll()):
		}
		if _, ferr := a.refreshGossipKeys(ctx); ferr != nil && ctx.Err() == nil {
			a.log.Warn("gossip keys: refresh", "err", ferr)
		}
	}
}

// serveGossipKeys answers POST /v1/cluster/gossip/keys here, never relayed:
// the answer goes to the certificate the request came with, so it must
// be the asking agent's own. An agent without the KEK answers 503 (the
// asker tries another).
func (a *Agent) serveGossipKeys(w http.ResponseWriter, r *http.Request) {
	if a.idServer == nil {
		a.server.WriteError(w, r, api.NewServiceUnavailable("this agent runs without a cluster identity: it has no gossip keys to give"))
		return
	}
	a.idServer.ServeHTTP(w, r)
}
