package identity

// The gossip key endpoints (issue 10): an agent fetches the key list with
// its certificate, an admin starts a rotation and reads its state, and the
// leader moves it through its phases (AdvanceRotation). See gossipkeys.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// Paths of the gossip key endpoints.
const (
	PathGossip       = "/v1/cluster/gossip"        // GET, admin: GossipStatus
	PathGossipRotate = "/v1/cluster/gossip/rotate" // POST, admin: starts a rotation; GossipStatus
	PathGossipKeys   = "/v1/cluster/gossip/keys"   // POST, agent certificate: GossipKeysRequest -> GossipKeysResponse
)

// GossipKeysRequest is the body of POST /v1/cluster/gossip/keys.
type GossipKeysRequest struct {
	// Node must be the node of the certificate presented: a relayed
	// request, which carries the relaying agent's, is refused.
	Node string `json:"node"`
}

// GossipKeysResponse is the record's gossip keys, primary first.
type GossipKeysResponse struct {
	Keys  [][]byte `json:"keys"` // base64 in JSON
	Phase Phase    `json:"phase,omitempty"`
}

// GossipKeyInfo names one key of the record, never showing it.
type GossipKeyInfo struct {
	ID      string `json:"id"` // gossip.KeyID
	Primary bool   `json:"primary,omitempty"`
}

// GossipMemberStatus is one member's keyring as the leader sees it.
type GossipMemberStatus struct {
	Name  string `json:"name"`
	Alive bool   `json:"alive"`
	// Keyring is the member's gossip.KeyringState ("" if it shows none).
	Keyring string `json:"keyring,omitempty"`
	// State: "current" (shows the keyring the record lists), "waiting"
	// (alive, not yet), "revoked" (alive, named in the revocations, not
	// waited for) or "down".
	State string `json:"state"`
}

// GossipStatus answers GET /v1/cluster/gossip and POST .../rotate.
type GossipStatus struct {
	Phase   Phase                `json:"phase"`
	Since   time.Time            `json:"since,omitzero"`
	Keys    []GossipKeyInfo      `json:"keys"`
	Expect  string               `json:"expect"` // the keyring state members should show
	Members []GossipMemberStatus `json:"members"`
}

// localRecord reads and opens the record on any agent holding the KEK and
// a replica (a voter), not only the leader: a follower's copy may lag a
// little, which a key fetch tolerates (agents poll again).
func (s *Server) localRecord(ctx context.Context) (Record, *Opened, *api.StatusError) {
	if len(s.cluster.KEK()) == 0 {
		return Record{}, nil, api.NewServiceUnavailable("this agent holds no cluster key (only voters do): ask a voter")
	}
	rec, err := s.cluster.Record(ctx)
	if err != nil {
		return Record{}, nil, api.NewServiceUnavailable(fmt.Sprintf("reading the cluster identity: %v", err))
	}
	o, err := rec.Open(s.cluster.KEK())
	if err != nil {
		return Record{}, nil, api.NewInternalError(err)
	}
	return rec, o, nil
}

// serveGossipKeys answers POST /v1/cluster/gossip/keys: the gossip keys,
// to an agent presenting its own, unrevoked certificate.
func (s *Server) serveGossipKeys(w http.ResponseWriter, r *http.Request) {
	peer, ok := s.peerOf(r)
	if !ok {
		writeStatus(w, unauthorized("the gossip keys are given only to an agent's certificate (TLS client certificate)"))
		return
	}
	var req GossipKeysRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeStatus(w, badRequest(err))
		return
	}
	if req.Node != peer.Node {
		writeStatus(w, forbidden("node: %q, but the certificate presented is node %q's: an agent fetches keys for itself, directly from a voter", truncate(req.Node), peer.Node))
		return
	}
	rec, o, se := s.localRecord(r.Context())
	if se != nil {
		writeStatus(w, se)
		return
	}
	if rec.Revoked(peer) {
		s.log.Warn("identity: refused gossip keys to a revoked node", "node", peer.Node, "serial", peer.Serial)
		writeStatus(w, forbidden("node %q was revoked at %s: join again with a token", peer.Node, rec.RevokedNodes[peer.Node].Format(time.RFC3339)))
		return
	}
	writeJSON(w, http.StatusOK, GossipKeysResponse{Keys: o.GossipKeys, Phase: rec.Rotation.Phase})
}

// serveGossipStatus answers GET /v1/cluster/gossip (admin).
func (s *Server) serveGossipStatus(w http.ResponseWriter, r *http.Request) {
	rec, _, se := s.opened(r.Context())
	if se == nil {
		se = s.admin(r, rec)
	}
	if se != nil {
		writeStatus(w, se)
		return
	}
	st, err := s.gossipStatus(r.Context())
	if err != nil {
		writeStatus(w, api.NewServiceUnavailable(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// serveGossipRotate answers POST /v1/cluster/gossip/rotate (admin): a new
// random key enters the record (phase install); the leader's
// AdvanceRotation takes it from there. 409 while a rotation is in
// progress or when the record holds MaxGossipKeys keys already.
func (s *Server) serveGossipRotate(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.adminRequest(w, r, nil); !ok {
		return
	}
	var err error
	for range maxRotateAttempts {
		rec, o, se := s.opened(r.Context())
		if se != nil {
			writeStatus(w, se)
			return
		}
		key := make([]byte, KeyBytes)
		rand.Read(key)
		rot, keys, serr := StartRotation(rec.Rotation, o.GossipKeys, key, s.now())
		if serr != nil {
			writeStatus(w, api.NewStatusError(http.StatusConflict, api.ReasonConflict, nil, "%v", serr))
			return
		}
		next := rec.Clone()
		if err := next.SealGossipKeys(s.cluster.KEK(), keys); err != nil {
			writeStatus(w, api.NewInternalError(err))
			return
		}
		next.Rotation = rot
		if err = s.cluster.Update(r.Context(), rec, next); err == nil {
			s.log.Info("identity: gossip key rotation started", "new_key", gossip.KeyID(key), "keys", len(keys))
			st, err := s.gossipStatus(r.Context())
			if err != nil {
				writeStatus(w, api.NewServiceUnavailable(err.Error()))
				return
			}
			writeJSON(w, http.StatusOK, st)
			return
		}
		if r.Context().Err() != nil {
			break
		}
	}
	writeStatus(w, api.NewServiceUnavailable(fmt.Sprintf("starting the gossip key rotation: %v; retry", err)))
}

// members are the gossip members, for the rotation's progress.
func (s *Server) members() []MemberKeys {
	if s.membersOf == nil {
		return nil
	}
	return s.membersOf()
}

// gossipStatus is the rotation's state on the leader.
func (s *Server) gossipStatus(ctx context.Context) (GossipStatus, error) {
	rec, o, se := s.opened(ctx)
	if se != nil {
		return GossipStatus{}, se
	}
	ms := s.members()
	p := CheckPhase(rec.Rotation.Phase, o.GossipKeys, ms, rec.RevokedNodes)
	st := GossipStatus{Phase: rec.Rotation.Phase, Since: rec.Rotation.Since, Expect: p.Expect}
	for i, k := range o.GossipKeys {
		st.Keys = append(st.Keys, GossipKeyInfo{ID: gossip.KeyID(k), Primary: i == 0})
	}
	for _, m := range ms {
		ms := GossipMemberStatus{Name: m.Name, Alive: m.Alive, Keyring: m.Keyring, State: "down"}
		switch {
		case slices.Contains(p.Confirmed, m.Name):
			ms.State = "current"
		case slices.Contains(p.Waiting, m.Name):
			ms.State = "waiting"
		case slices.Contains(p.Revoked, m.Name):
			ms.State = "revoked"
		}
		st.Members = append(st.Members, ms)
	}
	return st, nil
}

// AdvanceRotation is one step of the leader's rotation loop: when the
// current phase is done (every alive, unrevoked member shows the keyring
// the record lists), it writes the next phase and its keys (compare and
// swap). It returns the progress seen and whether it moved on; on an agent
// that does not lead it returns an error and does nothing.
func (s *Server) AdvanceRotation(ctx context.Context) (Progress, bool, error) {
	rec, o, se := s.opened(ctx)
	if se != nil {
		return Progress{}, false, se
	}
	if rec.Rotation.Phase == PhaseNone {
		return Progress{Phase: PhaseNone}, false, nil
	}
	p := CheckPhase(rec.Rotation.Phase, o.GossipKeys, s.members(), rec.RevokedNodes)
	if !p.Done() {
		return p, false, nil
	}
	phase, keys, _ := NextPhase(rec.Rotation.Phase, o.GossipKeys)
	next := rec.Clone()
	if err := next.SealGossipKeys(s.cluster.KEK(), keys); err != nil {
		return p, false, err
	}
	next.Rotation = Rotation{Phase: phase, Since: s.now().UTC()}
	if err := s.cluster.Update(ctx, rec, next); err != nil {
		return p, false, err
	}
	s.log.Info("identity: gossip key rotation moved on", "from", rec.Rotation.Phase.String(), "to", phase.String(),
		"primary", gossip.KeyID(keys[0]), "keys", len(keys), "confirmed", len(p.Confirmed), "revoked_skipped", p.Revoked)
	return p, true, nil
}

// FetchGossipKeys asks the agent at apiAddr (a voter) for the gossip keys
// with client, which must present node's certificate.
func FetchGossipKeys(ctx context.Context, client *http.Client, apiAddr, node string) (*GossipKeysResponse, error) {
	body, err := json.Marshal(GossipKeysRequest{Node: node})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, joinRequestTimeout)
	defer cancel()
	var resp GossipKeysResponse
	if err := call(ctx, client, http.MethodPost, baseURL(apiAddr)+PathGossipKeys, bytes.Clone(body), &resp); err != nil {
		return nil, err
	}
	if err := checkGossipKeys(resp.Keys); err != nil {
		return nil, fmt.Errorf("the answer's gossip keys: %w", err)
	}
	return &resp, nil
}
