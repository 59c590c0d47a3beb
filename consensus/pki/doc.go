// Package pki holds the cryptography of a Shoal cluster's identity: the
// cluster CA, node certificates, join tokens, sealing at rest, API bearer
// tokens and the TLS configurations every agent link uses.
//
// It is pure: apart from crypto/rand it does no I/O, keeps no global state
// and imports no other Shoal package. Time is always an input (now), so the
// callers decide what "expired" means and tests need no clock tricks.
//
// # Model
//
// A cluster has one CA: an ECDSA P-256 key with a self-signed certificate
// valid for ten years, made by the agent that bootstraps the cluster. Its
// private key lives in the replicated store sealed with a key-encryption key
// (KEK, AES-256-GCM via Seal/Open) that only agents allowed to vote hold.
//
// Every agent holds a node certificate issued by that CA (Issue). The
// certificate's Common Name is the node name (a DNS-1123 label) and its
// Subject carries exactly one Organizational Unit "shoal:voter" or
// "shoal:worker": the role is part of the signed certificate, so it cannot be
// claimed by a peer. PeerOf reads back what Issue wrote and refuses anything
// else (no role, two roles, a CA certificate, a bad name). Node certificates
// are valid for both server and client authentication and name the node's
// IPs; peers are pinned by the CA and addressed by IP, so no host-name check
// is done.
//
// # Join tokens
//
// Following Docker Swarm, a join token pins the CA: "SHOAL-1-<fp>-<secret>",
// where fp is the CA certificate's SHA-256 fingerprint (52 base32 characters)
// and secret is 128 random bits (26 base32 characters). A joining agent
// fetches the CA certificate over an unauthenticated channel and accepts it
// only if its fingerprint matches the token, so an impostor cannot hand it a
// CA of its own; it then sends the secret to obtain a certificate. The store
// keeps only HashSecret(secret); Matches compares in constant time.
//
// A bootstrap token ("SHOAL-1-<secret>", for --bootstrap-expect) is made
// before any CA exists, so it cannot pin one. Instead the server that answers
// proves it knows the secret: BootstrapProof is an HMAC over the joiner's
// nonce and the CA certificate it hands out. GossipKeyFromSecret derives the
// gossip key used until the cluster exists.
//
// # API tokens
//
// API bearer tokens are "shoal." + base64url(claims JSON) + "." +
// base64url(ECDSA signature), signed with the CA key, so any agent holding the
// CA certificate verifies them offline. VerifyToken reports expired,
// not-yet-valid, bad signature and signed-by-another-CA as distinct errors.
// ECDSA signatures are not unique (each signing is randomised, and (r, s)
// and (r, n-s) both verify), so a token is revoked by its Claims.ID, never by
// its text.
//
// # TLS
//
// A Holder keeps the CA pool and the current node certificate. Its configs
// read the certificate on every handshake, so Update rotates it without a
// restart. ServerConfig and ClientConfig verify the peer's chain against the
// cluster CA only (TLS 1.3); RaftConfig also requires the peer's certificate
// to carry the voter role, in both directions: a worker can neither dial a
// voter's Raft port nor pose as one (the hole behind Nomad's CVE-2021-37218).
// SetPeerCheck adds the caller's own verdict (a removed node, a revoked
// serial) to every handshake.
//
// A Verifier is VerifyToken with a bounded memory of tokens already checked,
// for the API's per-request path.
//
// # Limits
//
// MaxCSRBytes, MaxCertBytes, MaxTokenBytes, MaxIPs, MinCertTTL, MaxCertTTL
// and the node-name rule (MaxNodeNameLen) are checked on every input path,
// and every refusal names the field at fault.
package pki
