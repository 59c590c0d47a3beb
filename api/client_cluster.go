package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Shoal's own endpoints, outside the Kubernetes REST API: the Raft and
// gossip views of the cluster, voter changes, health.

// ClusterRaft returns the agent's view of the Raft cluster, as JSON.
func (c *Client) ClusterRaft(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/v1/cluster/raft", nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// AddVoter asks the leader to add the agent id, whose Raft listens at addr,
// as a voter. It returns the Raft status afterwards.
func (c *Client) AddVoter(ctx context.Context, id, addr string) (json.RawMessage, error) {
	var raw json.RawMessage
	body := map[string]string{"id": id, "address": addr}
	if err := c.do(ctx, http.MethodPost, "/v1/cluster/raft/voters", nil, body, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// RemoveServer asks the leader to remove id from the Raft configuration.
func (c *Client) RemoveServer(ctx context.Context, id string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodDelete, "/v1/cluster/raft/voters/"+url.PathEscape(id), nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Healthz returns nil if the agent answers its health check.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// MemberInfo is one agent of the gossip membership as an agent sees it
// (/v1/cluster/members).
type MemberInfo struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"` // gossip host:port
	APIAddr   string    `json:"apiAddr,omitempty"`
	RaftAddr  string    `json:"raftAddr,omitempty"`
	Zone      string    `json:"zone,omitempty"`
	Status    string    `json:"status"` // alive, dead, left
	Role      string    `json:"role,omitempty"`
	ClusterID string    `json:"clusterID,omitempty"`
	Version   string    `json:"version,omitempty"`
	Leaving   bool      `json:"leaving,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	MetaError string    `json:"metaError,omitempty"`
}

// Members returns the agent's view of the gossip membership, sorted by
// name.
func (c *Client) Members(ctx context.Context) ([]MemberInfo, error) {
	var body struct {
		Members []MemberInfo `json:"members"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/cluster/members", nil, nil, &body); err != nil {
		return nil, err
	}
	return body.Members, nil
}
