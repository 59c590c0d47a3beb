// Package identity is the cluster's identity room (issue 10): the
// material an agent keeps on disk, the cluster record in the replicated
// store, joining with a token, the server side of joins, certificate
// renewal and join-token administration. The crypto is consensus/pki's;
// this package never imports Raft: it reaches the store through the
// Cluster interface it declares, implemented by the agent.
//
// # On disk (Load, Save, SaveNodeCert, SaveGossipKeys)
//
//	DATA_DIR/tls/ca.crt      0644  the cluster CA certificate
//	DATA_DIR/tls/node.crt    0644  this node's certificate (CN = node, role voter|worker)
//	DATA_DIR/tls/node.key    0600  its key
//	DATA_DIR/tls/gossip.key  0600  the gossip keys, one base64 key a line, primary first
//	                               (a one-line file, as agents before rotations wrote, reads too)
//	DATA_DIR/tls/kek         0600  base64 of the KEK, only on agents whose certificate may vote
//	DATA_DIR/admin.token     0600  the first admin API token, only on the agent that bootstrapped
//
// Every write is atomic (temporary file, fsync, rename, fsync of the
// directory). Load refuses a secret file readable by group or others and
// wraps ErrNoIdentity when there is no tls/ca.crt (first start).
//
// # The cluster record (Record, EncodeRecord, DecodeRecord, Bootstrap)
//
// Secret shoal-system/shoal-cluster-identity, type
// shoal.dev/cluster-identity, data: ca.crt, ca.key.sealed,
// join.voter.sealed, join.worker.sealed, gossip.key.sealed (each sealed
// with the KEK, pki.Seal, additional data "shoal/cluster-identity/" + key),
// gossip.keys.sealed (optional: the JSON list of gossip keys, primary
// first, at most MaxGossipKeys; without it gossip.key.sealed is the only
// key, as in records before rotations), gossip.rotation (optional JSON
// {"phase","since"}: the rotation in progress, see gossipkeys.go; an
// unknown phase is refused by DecodeRecord),
// bootstrap ("true" when the voter secret is a bootstrap token's) and
// revoked (JSON: node name to RFC 3339 time). A node's certificates issued
// at or before its revocation time are revoked ((*Record).Revoked: issue
// time = NotBefore + pki.ClockSkew); a node that joins again with a token
// afterwards gets a usable one. Voters should check Revoked on the peers of
// Raft and forwarding connections; renewal refuses a revoked node.
//
// # Endpoints (Server, NewServer)
//
// Server.ServeHTTP answers, and only these (shapes in protocol.go):
//
//	GET  /v1/join/ca[?nonce=HEX]       public; CAResponse
//	POST /v1/join                      public, token-authenticated; JoinRequest -> JoinResponse
//	POST /v1/cluster/certificate       TLS client certificate (ServerConfig.PeerOf); CertificateRequest -> JoinResponse
//	GET  /v1/cluster/tokens            admin bearer token; TokensResponse
//	POST /v1/cluster/tokens/rotate     admin bearer token; RotateRequest -> TokensResponse
//	POST /v1/cluster/tokens/api        admin bearer token; APITokenRequest -> APITokenResponse
//	POST /v1/cluster/revoke            admin bearer token; RevokeRequest -> RevokeResponse
//	GET  /v1/cluster/gossip            admin bearer token; GossipStatus
//	POST /v1/cluster/gossip/rotate     admin bearer token; GossipStatus (409 during a rotation or at MaxGossipKeys keys)
//	POST /v1/cluster/gossip/keys       TLS client certificate of the node named; GossipKeysRequest -> GossipKeysResponse
//
// POST /v1/cluster/gossip/keys is served by any agent holding the KEK
// and a replica (a voter), from its own copy of the record, and must not
// be relayed: the keys go to the certificate presented, which must name
// the node asked for and not be revoked. The leader calls
// Server.AdvanceRotation periodically to move a rotation through its
// phases (gossipkeys.go).
//
// Every other request except GET /v1/join/ca without a nonce must be served by
// the leader (it opens the record with the KEK, and a follower's record may
// be stale, e.g. still know a rotated token). Elsewhere the answer is 503
// (api Status, reason ServiceUnavailable, Retry-After: 1): route these
// paths to the leader with the apiserver's forwarder. GET /v1/join/ca
// without a nonce is served by any agent whose Cluster can read the record.
//
// Errors are api.Status JSON: 400 (the message names the field), 401
// Unauthorized (no, wrong or rotated token; no client certificate), 403
// Forbidden (renewing another node's certificate, a revoked node, a
// non-admin API token), 413 (body over MaxBodyBytes), 429 (a source
// address with ServerConfig.FailureLimit failed joins in a
// FailureWindow; the source is ServerConfig.SourceOf, by default the
// peer address), 503. Join secrets are compared in constant time and
// failed joins are logged with their source.
//
// Admin endpoints check the bearer token themselves (pki.VerifyToken
// against the record's CA, role admin), so they are safe behind or beside
// the apiserver's authentication. Renewal identifies the agent by its TLS
// client certificate; a request forwarded by another agent carries that
// agent's certificate and is refused (403, node mismatch) unless the
// wiring sets ServerConfig.PeerOf to read the identity the forwarder
// vouches for.
//
// # Client side
//
// Join obtains a Local from a running cluster with a join token (pinned:
// the CA fingerprint must match; bootstrap: the server must prove it knows
// the secret); it retries across addresses until its context ends but
// returns a *PermanentError at once. Renewer renews the node certificate at
// two thirds of its life (jittered, retried with back-off), updates the
// pki.Holder so later handshakes use it, and saves it;
// RequestCertificate is the usual RenewerConfig.Request. It schedules each
// next renewal on its own clock from the moment it got the certificate, so
// a clock that differs from the leader's neither renews in a loop nor too
// late. An agent whose certificate expired (down longer than its life)
// cannot renew (the TLS handshake fails): it must join again with a token.
package identity
