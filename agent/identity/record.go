package identity

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// The cluster record lives in the replicated store as this Secret.
const (
	RecordNamespace = "shoal-system"
	RecordName      = "shoal-cluster-identity"
	RecordType      = "shoal.dev/cluster-identity"
)

// Keys of the record Secret's data.
const (
	keyCACert       = "ca.crt"
	keyCAKey        = "ca.key.sealed"
	keyJoinVoter    = "join.voter.sealed"
	keyJoinWorker   = "join.worker.sealed"
	keyGossipKey    = "gossip.key.sealed"
	keyGossipKeys   = "gossip.keys.sealed"
	keyGossipRotate = "gossip.rotation"
	keyBootstrap    = "bootstrap"
	keyRevoked      = "revoked"
	sealAADPrefix   = "shoal/cluster-identity/"
	maxRevokedNodes = 10000
)

// Record is the cluster's identity as the replicated store keeps it. The
// CA key, the join secrets and the gossip key are sealed with the KEK
// (pki.Seal, with the data key's name as additional data), so a store
// snapshot alone opens nothing.
type Record struct {
	// ResourceVersion is the Secret's, for compare-and-swap updates.
	ResourceVersion string

	CACert           []byte // PEM
	CAKeySealed      []byte
	JoinVoterSealed  []byte // the voter join secret (26 characters), sealed
	JoinWorkerSealed []byte
	// GossipKeySealed is the primary gossip key alone, sealed (what a
	// record had before rotations; still written, for older readers).
	GossipKeySealed []byte
	// GossipKeysSealed is the list of gossip keys, primary first, as
	// JSON, sealed; nil in a record written before rotations, which then
	// holds GossipKeySealed only. See gossipkeys.go.
	GossipKeysSealed []byte
	// Rotation is where a gossip key rotation stands (none when Phase is
	// PhaseNone).
	Rotation Rotation
	// Bootstrap: the cluster was made from a bootstrap token, whose secret
	// is the voter join secret until that token is rotated.
	Bootstrap bool
	// RevokedNodes maps a node name to when it was revoked: its certificates
	// issued until then are refused (see Revoked).
	RevokedNodes map[string]time.Time
}

// Clone returns a deep copy of r, to change without touching r.
func (r Record) Clone() Record {
	c := r
	c.CACert = clone(r.CACert)
	c.CAKeySealed = clone(r.CAKeySealed)
	c.JoinVoterSealed = clone(r.JoinVoterSealed)
	c.JoinWorkerSealed = clone(r.JoinWorkerSealed)
	c.GossipKeySealed = clone(r.GossipKeySealed)
	c.GossipKeysSealed = clone(r.GossipKeysSealed)
	c.RevokedNodes = maps.Clone(r.RevokedNodes)
	return c
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Revoked reports whether peer's certificate was issued before its node
// was revoked, or at the same time. A node joined again (with a token)
// after its revocation gets a certificate that is not revoked. The issue
// time is NotBefore + pki.ClockSkew, as pki.CA.Issue backdates NotBefore
// by that much.
func (r *Record) Revoked(peer pki.Peer) bool {
	at, ok := r.RevokedNodes[peer.Node]
	return ok && !peer.NotBefore.Add(pki.ClockSkew).After(at)
}

// issueTime is when to date a certificate for node issued at now: now,
// unless the node was revoked within the same second (certificates carry
// whole seconds), then the next second, so that the new certificate is
// not taken for one of those revoked.
func (r *Record) issueTime(node string, now time.Time) time.Time {
	at, ok := r.RevokedNodes[node]
	if floor := at.Truncate(time.Second).Add(time.Second); ok && now.Before(floor) {
		return floor
	}
	return now
}

// Revoke records that node's certificates issued until at are refused.
func (r *Record) Revoke(node string, at time.Time) {
	if r.RevokedNodes == nil {
		r.RevokedNodes = map[string]time.Time{}
	}
	r.RevokedNodes[node] = at.UTC()
}

// EncodeRecord returns the Secret that stores r.
func EncodeRecord(r Record) *api.Secret {
	s := &api.Secret{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: api.ObjectMeta{Namespace: RecordNamespace, Name: RecordName, ResourceVersion: r.ResourceVersion},
		Type:       RecordType,
		Data: map[string][]byte{
			keyCACert:     clone(r.CACert),
			keyCAKey:      clone(r.CAKeySealed),
			keyJoinVoter:  clone(r.JoinVoterSealed),
			keyJoinWorker: clone(r.JoinWorkerSealed),
			keyGossipKey:  clone(r.GossipKeySealed),
			keyBootstrap:  []byte(fmt.Sprint(r.Bootstrap)),
		},
	}
	if len(r.RevokedNodes) > 0 {
		b, _ := json.Marshal(r.RevokedNodes) // a map of string to time always marshals
		s.Data[keyRevoked] = b
	}
	if len(r.GossipKeysSealed) > 0 {
		s.Data[keyGossipKeys] = clone(r.GossipKeysSealed)
	}
	if r.Rotation.Phase != PhaseNone {
		b, _ := json.Marshal(r.Rotation) // strings and a time always marshal
		s.Data[keyGossipRotate] = b
	}
	return s
}

// DecodeRecord reads the record from its Secret; errors name the data key.
func DecodeRecord(s *api.Secret) (Record, error) {
	if s == nil {
		return Record{}, errors.New("cluster identity record: no Secret")
	}
	if s.Namespace != RecordNamespace || s.Name != RecordName {
		return Record{}, fmt.Errorf("cluster identity record: Secret %s/%s, want %s/%s", s.Namespace, s.Name, RecordNamespace, RecordName)
	}
	if s.Type != RecordType {
		return Record{}, fmt.Errorf("cluster identity record: type %q, want %q", s.Type, RecordType)
	}
	r := Record{ResourceVersion: s.ResourceVersion}
	for _, f := range []struct {
		key string
		dst *[]byte
	}{
		{keyCACert, &r.CACert}, {keyCAKey, &r.CAKeySealed}, {keyJoinVoter, &r.JoinVoterSealed},
		{keyJoinWorker, &r.JoinWorkerSealed}, {keyGossipKey, &r.GossipKeySealed},
	} {
		v := s.Data[f.key]
		if len(v) == 0 {
			return Record{}, fmt.Errorf("cluster identity record: data.%s: missing", f.key)
		}
		*f.dst = clone(v)
	}
	if _, err := pki.ParseCertPEM(r.CACert); err != nil {
		return Record{}, fmt.Errorf("cluster identity record: data.%s: %w", keyCACert, err)
	}
	switch string(s.Data[keyBootstrap]) {
	case "true":
		r.Bootstrap = true
	case "false", "":
	default:
		return Record{}, fmt.Errorf("cluster identity record: data.%s: %q is neither true nor false", keyBootstrap, s.Data[keyBootstrap])
	}
	if b := s.Data[keyRevoked]; len(b) > 0 {
		if err := json.Unmarshal(b, &r.RevokedNodes); err != nil {
			return Record{}, fmt.Errorf("cluster identity record: data.%s: %w", keyRevoked, err)
		}
		if len(r.RevokedNodes) > maxRevokedNodes {
			return Record{}, fmt.Errorf("cluster identity record: data.%s: %d nodes, more than the %d allowed", keyRevoked, len(r.RevokedNodes), maxRevokedNodes)
		}
	}
	r.GossipKeysSealed = clone(s.Data[keyGossipKeys])
	if b := s.Data[keyGossipRotate]; len(b) > 0 {
		if err := json.Unmarshal(b, &r.Rotation); err != nil {
			return Record{}, fmt.Errorf("cluster identity record: data.%s: %w", keyGossipRotate, err)
		}
		if err := r.Rotation.Phase.Validate(); err != nil {
			return Record{}, fmt.Errorf("cluster identity record: data.%s: %w", keyGossipRotate, err)
		}
	}
	return r, nil
}

func aad(key string) []byte { return []byte(sealAADPrefix + key) }

// Opened is the record's secrets, opened with the KEK.
type Opened struct {
	CA           *pki.CA
	VoterSecret  string
	WorkerSecret string
	GossipKey    []byte   // the primary, GossipKeys[0]
	GossipKeys   [][]byte // every key, primary first
}

// Open opens the sealed parts of r with kek.
func (r *Record) Open(kek []byte) (*Opened, error) {
	if len(kek) == 0 {
		return nil, errors.New("cluster identity record: this agent holds no KEK (only voters do)")
	}
	open := func(key string, sealed []byte) ([]byte, error) {
		b, err := pki.Open(kek, sealed, aad(key))
		if err != nil {
			return nil, fmt.Errorf("cluster identity record: data.%s: cannot open with this agent's KEK: %w", key, err)
		}
		return b, nil
	}
	keyPEM, err := open(keyCAKey, r.CAKeySealed)
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCA(r.CACert, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster identity record: CA: %w", err)
	}
	voter, err := open(keyJoinVoter, r.JoinVoterSealed)
	if err != nil {
		return nil, err
	}
	worker, err := open(keyJoinWorker, r.JoinWorkerSealed)
	if err != nil {
		return nil, err
	}
	gossip, err := r.openGossipKeys(open)
	if err != nil {
		return nil, err
	}
	return &Opened{CA: ca, VoterSecret: string(voter), WorkerSecret: string(worker), GossipKey: gossip[0], GossipKeys: gossip}, nil
}

// SealSecret seals a join secret of role into r with kek.
func (r *Record) SealSecret(kek []byte, role pki.Role, secret string) error {
	key, dst := keyJoinWorker, &r.JoinWorkerSealed
	if role == pki.RoleVoter {
		key, dst = keyJoinVoter, &r.JoinVoterSealed
	}
	b, err := pki.Seal(kek, []byte(secret), aad(key))
	if err != nil {
		return err
	}
	*dst = b
	return nil
}

// SealGossipKey seals key into r with kek as the only gossip key.
func (r *Record) SealGossipKey(kek, key []byte) error {
	return r.SealGossipKeys(kek, [][]byte{key})
}

// Tokens are the join tokens of the record, pinned to its CA.
func (o *Opened) Tokens() (voter, worker pki.JoinToken) {
	fp := o.CA.Fingerprint()
	return pki.JoinToken{Fingerprint: fp, Secret: o.VoterSecret}, pki.JoinToken{Fingerprint: fp, Secret: o.WorkerSecret}
}

// DefaultCertTTL is how long a node certificate lives; agents renew at two
// thirds of it.
const DefaultCertTTL = 24 * time.Hour

// Bootstrap makes a new cluster identity: the CA, the KEK, this node's
// voter certificate (DefaultCertTTL), the gossip key, the voter and worker
// join tokens, and the first admin API token. With a bootstrap token (made
// by `shoal token generate` for --bootstrap-expect) the voter join secret
// is that token's, the record says so (so that /v1/join/ca proves the
// secret to joiners), and the gossip key is GossipKeyFromSecret of it, the
// key the other initial agents already gossip with; else both are random.
// The returned Local holds AdminToken too.
func Bootstrap(clusterID string, bootstrapToken *pki.JoinToken, node string, ips []net.IP, now time.Time) (*Local, Record, string, error) {
	if err := validNodeName(node); err != nil {
		return nil, Record{}, "", fmt.Errorf("node: %w", err)
	}
	if bootstrapToken != nil && bootstrapToken.Fingerprint != "" {
		return nil, Record{}, "", errors.New("bootstrap token: pins a CA, so the cluster exists already: join it instead")
	}
	ca, err := pki.NewCA(clusterID, now)
	if err != nil {
		return nil, Record{}, "", err
	}
	kek, err := pki.NewKEK()
	if err != nil {
		return nil, Record{}, "", err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, Record{}, "", err
	}
	rec := Record{CACert: clone(ca.CertPEM), Bootstrap: bootstrapToken != nil}
	if rec.CAKeySealed, err = pki.Seal(kek, keyPEM, aad(keyCAKey)); err != nil {
		return nil, Record{}, "", err
	}
	voter, err := pki.NewJoinToken(ca.Fingerprint())
	if err != nil {
		return nil, Record{}, "", err
	}
	worker, err := pki.NewJoinToken(ca.Fingerprint())
	if err != nil {
		return nil, Record{}, "", err
	}
	gossip := make([]byte, KeyBytes)
	rand.Read(gossip)
	if bootstrapToken != nil {
		voter.Secret = bootstrapToken.Secret
		gossip = pki.GossipKeyFromSecret(bootstrapToken.Secret)
	}
	if err := rec.SealSecret(kek, pki.RoleVoter, voter.Secret); err != nil {
		return nil, Record{}, "", err
	}
	if err := rec.SealSecret(kek, pki.RoleWorker, worker.Secret); err != nil {
		return nil, Record{}, "", err
	}
	if err := rec.SealGossipKey(kek, gossip); err != nil {
		return nil, Record{}, "", err
	}
	nodeKey, err := pki.NewKey()
	if err != nil {
		return nil, Record{}, "", err
	}
	nodeKeyPEM, err := pki.MarshalKeyPEM(nodeKey)
	if err != nil {
		return nil, Record{}, "", err
	}
	cert, err := ca.Issue(pki.NodeRequest{Node: node, Role: pki.RoleVoter, IPs: ips, PublicKey: nodeKey.Public()}, now, DefaultCertTTL)
	if err != nil {
		return nil, Record{}, "", err
	}
	// "No expiry": the token lives as long as the CA that signs it.
	admin, err := ca.SignToken(pki.Claims{ID: newID(), Name: "bootstrap-admin", Role: RoleAdmin, IssuedAt: now, ExpiresAt: ca.Cert.NotAfter})
	if err != nil {
		return nil, Record{}, "", err
	}
	local := &Local{CACert: clone(ca.CertPEM), NodeCert: cert, NodeKey: nodeKeyPEM, GossipKey: gossip, KEK: kek, AdminToken: admin}
	return local, rec, admin, nil
}

// newID is a random id for an API token.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
