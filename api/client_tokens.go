package api

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// The cluster's credentials through the API: the CA an agent presents,
// join tokens and API tokens (admin role).

// ClusterCA returns the cluster CA certificate (PEM) the agent serves at
// GET /v1/join/ca. The endpoint is public: use it with a client that does
// not verify the agent, and trust the answer only once its fingerprint
// matches one obtained out of band.
func (c *Client) ClusterCA(ctx context.Context) ([]byte, error) {
	var body struct {
		CA string `json:"ca"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/join/ca", nil, nil, &body); err != nil {
		return nil, err
	}
	if body.CA == "" {
		return nil, errors.New("GET /v1/join/ca: the answer has no ca")
	}
	return []byte(body.CA), nil
}

// JoinTokens are the cluster's current join tokens (secrets: print them
// only where asked) and its CA fingerprint.
type JoinTokens struct {
	Voter         string `json:"voter"`
	Worker        string `json:"worker"`
	CAFingerprint string `json:"caFingerprint"`
}

// JoinTokens reads the current join tokens (GET /v1/cluster/tokens).
func (c *Client) JoinTokens(ctx context.Context) (JoinTokens, error) {
	var t JoinTokens
	err := c.do(ctx, http.MethodGet, "/v1/cluster/tokens", nil, nil, &t)
	return t, err
}

// RotateJoinToken replaces the join token of role ("voter" or "worker"):
// the old one stops working at once; agents that already joined are not
// affected. It returns the tokens afterwards.
func (c *Client) RotateJoinToken(ctx context.Context, role string) (JoinTokens, error) {
	var t JoinTokens
	body := map[string]string{"role": role}
	err := c.do(ctx, http.MethodPost, "/v1/cluster/tokens/rotate", nil, body, &t)
	return t, err
}

// APITokenRequest asks for a new API bearer token.
type APITokenRequest struct {
	Name       string   `json:"name"`
	Role       string   `json:"role"` // admin, read-only or write
	Namespaces []string `json:"namespaces,omitempty"`
	TTL        string   `json:"ttl,omitempty"` // a Go duration, e.g. "720h"
}

// CreateAPIToken asks the cluster to sign a new API token
// (POST /v1/cluster/tokens/api) and returns it.
func (c *Client) CreateAPIToken(ctx context.Context, req APITokenRequest) (string, error) {
	var body struct {
		Token string `json:"token"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/cluster/tokens/api", nil, req, &body); err != nil {
		return "", err
	}
	if body.Token == "" {
		return "", errors.New("POST /v1/cluster/tokens/api: the answer has no token")
	}
	return body.Token, nil
}

// RevokeNode revokes a node's certificates (POST /v1/cluster/revoke, admin
// role): the voters refuse them in new connections and the node cannot
// renew; it may join again with a join token. It returns when the
// revocation took effect in the store.
func (c *Client) RevokeNode(ctx context.Context, node string) (time.Time, error) {
	var out struct {
		RevokedAt time.Time `json:"revokedAt"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/cluster/revoke", nil, map[string]string{"node": node}, &out)
	return out.RevokedAt, err
}
