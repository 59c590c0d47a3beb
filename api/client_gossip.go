package api

import (
	"context"
	"net/http"
	"time"
)

// Gossip key rotation through the API (admin role): the agents' gossip
// encryption keys are named by short IDs (a hash prefix), never shown.

// GossipKeyInfo names one gossip key of the cluster record.
type GossipKeyInfo struct {
	ID      string `json:"id"`
	Primary bool   `json:"primary,omitempty"`
}

// GossipMemberKeys is one member's keyring as the leader sees it.
type GossipMemberKeys struct {
	Name  string `json:"name"`
	Alive bool   `json:"alive"`
	// Keyring is PRIMARY_ID.SET_DIGEST of the keys it has installed.
	Keyring string `json:"keyring,omitempty"`
	// State: current, waiting, revoked or down.
	State string `json:"state"`
}

// GossipKeyStatus is the state of the cluster's gossip keys.
type GossipKeyStatus struct {
	// Phase of a rotation in progress: install, use, remove; "" for none.
	Phase   string             `json:"phase"`
	Since   time.Time          `json:"since,omitzero"`
	Keys    []GossipKeyInfo    `json:"keys"`
	Expect  string             `json:"expect"`
	Members []GossipMemberKeys `json:"members"`
}

// GossipKeys reads the gossip keys' state (GET /v1/cluster/gossip).
func (c *Client) GossipKeys(ctx context.Context) (GossipKeyStatus, error) {
	var st GossipKeyStatus
	err := c.do(ctx, http.MethodGet, "/v1/cluster/gossip", nil, nil, &st)
	return st, err
}

// RotateGossipKey starts a gossip key rotation (POST
// /v1/cluster/gossip/rotate): a new key is installed on every agent, then
// used, then the old one removed, each step once every alive member has
// done the previous one. It returns at once with the state; a rotation in
// progress is refused (409).
func (c *Client) RotateGossipKey(ctx context.Context) (GossipKeyStatus, error) {
	var st GossipKeyStatus
	err := c.do(ctx, http.MethodPost, "/v1/cluster/gossip/rotate", nil, nil, &st)
	return st, err
}
