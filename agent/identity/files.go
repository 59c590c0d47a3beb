package identity

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// Files of an agent's identity, relative to its data dir (see doc.go for
// their modes).
const (
	TLSDir         = "tls"
	CACertFile     = "tls/ca.crt"
	NodeCertFile   = "tls/node.crt"
	NodeKeyFile    = "tls/node.key"
	GossipKeyFile  = "tls/gossip.key"
	KEKFile        = "tls/kek"
	AdminTokenFile = "admin.token"
)

// File modes. Load refuses a file that group or others may write, and a
// secret one that they may read.
const (
	publicMode     fs.FileMode = 0o644
	secretMode     fs.FileMode = 0o600
	tlsDirMode     fs.FileMode = 0o755
	secretModeMask fs.FileMode = 0o077
	// maxFileBytes bounds every identity file Load reads.
	maxFileBytes = 64 << 10
)

// KeyBytes is the length of a gossip key and of a KEK.
const KeyBytes = 32

// ErrNoIdentity is returned (wrapped) by Load when the data dir holds no
// identity yet (no tls/ca.crt): the agent must bootstrap or join.
var ErrNoIdentity = errors.New("no identity in the data dir (tls/ca.crt is missing): bootstrap or join with --token")

// Local is what one agent keeps on disk: the cluster CA's certificate, its
// own key and certificate, the gossip key, and, on agents whose
// certificate may vote, the KEK that opens the CA key in the store.
type Local struct {
	CACert    []byte // PEM
	NodeCert  []byte // PEM
	NodeKey   []byte // PEM
	GossipKey []byte // KeyBytes raw bytes: the primary gossip key
	// GossipKeys are every gossip key, primary (GossipKey) first, while a
	// rotation is in progress; nil or one key otherwise (see Keys).
	GossipKeys [][]byte
	KEK        []byte // KeyBytes raw bytes; nil on a worker
	AdminToken string // only on the agent that bootstrapped; "" elsewhere
}

// Holder returns a TLS holder for the CA and node certificate of l.
func (l *Local) Holder() (*pki.Holder, error) {
	return pki.NewHolder(l.CACert, l.NodeCert, l.NodeKey)
}

// Peer is the identity the node certificate carries.
func (l *Local) Peer() (pki.Peer, error) {
	c, err := pki.ParseCertPEM(l.NodeCert)
	if err != nil {
		return pki.Peer{}, fmt.Errorf("node certificate: %w", err)
	}
	return pki.PeerOf(c)
}

// Validate checks that every part is present and well formed, and that the
// node certificate belongs to the key and was signed by the CA.
func (l *Local) Validate() error {
	if _, err := pki.ParseCertPEM(l.CACert); err != nil {
		return fmt.Errorf("%s: %w", CACertFile, err)
	}
	if _, err := pki.ParseKeyPEM(l.NodeKey); err != nil {
		return fmt.Errorf("%s: %w", NodeKeyFile, err)
	}
	if _, err := l.Peer(); err != nil {
		return fmt.Errorf("%s: %w", NodeCertFile, err)
	}
	if _, err := l.Holder(); err != nil {
		return fmt.Errorf("%s and %s: %w", NodeCertFile, NodeKeyFile, err)
	}
	if len(l.GossipKey) != KeyBytes {
		return fmt.Errorf("%s: %d bytes, want %d", GossipKeyFile, len(l.GossipKey), KeyBytes)
	}
	if len(l.GossipKeys) > 0 {
		if err := checkGossipKeys(l.GossipKeys); err != nil {
			return fmt.Errorf("%s: %w", GossipKeyFile, err)
		}
		if !bytes.Equal(l.GossipKeys[0], l.GossipKey) {
			return fmt.Errorf("%s: the first key is not the primary (GossipKey)", GossipKeyFile)
		}
	}
	if l.KEK != nil && len(l.KEK) != KeyBytes {
		return fmt.Errorf("%s: %d bytes, want %d", KEKFile, len(l.KEK), KeyBytes)
	}
	return nil
}

// Load reads the identity in dataDir. It wraps ErrNoIdentity when there is
// none yet, and refuses secret files readable by group or others, files
// that do not parse, and a node certificate that does not match its key or
// the CA. kek and admin.token are optional.
func Load(dataDir string) (*Local, error) {
	l := &Local{}
	var err error
	if l.CACert, err = readFile(dataDir, CACertFile, false); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", dataDir, ErrNoIdentity)
		}
		return nil, err
	}
	if l.NodeCert, err = readFile(dataDir, NodeCertFile, false); err != nil {
		return nil, err
	}
	if l.NodeKey, err = readFile(dataDir, NodeKeyFile, true); err != nil {
		return nil, err
	}
	if l.GossipKeys, err = readKeys(dataDir, GossipKeyFile); err != nil {
		return nil, err
	}
	l.GossipKey = l.GossipKeys[0]
	if len(l.GossipKeys) == 1 {
		l.GossipKeys = nil // one key: GossipKey says it all (see Keys)
	}
	if l.KEK, err = readKey(dataDir, KEKFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tok, err := readFile(dataDir, AdminTokenFile, true)
	switch {
	case err == nil:
		l.AdminToken = string(bytes.TrimSpace(tok))
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", dataDir, err)
	}
	return l, nil
}

// Save writes l to dataDir, each file atomically (temporary file, fsync,
// rename, fsync of the directory) with the mode doc.go gives. Empty fields
// (KEK on a worker, AdminToken on all but the bootstrapping agent) leave
// their files alone.
func (l *Local) Save(dataDir string) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("saving the identity: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dataDir, TLSDir), tlsDirMode); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	type file struct {
		name string
		data []byte
		mode fs.FileMode
	}
	files := []file{
		{CACertFile, l.CACert, publicMode},
		{NodeKeyFile, l.NodeKey, secretMode},
		{NodeCertFile, l.NodeCert, publicMode},
		{GossipKeyFile, encodeKeys(l.Keys()), secretMode},
	}
	if l.KEK != nil {
		files = append(files, file{KEKFile, encodeKey(l.KEK), secretMode})
	}
	if l.AdminToken != "" {
		files = append(files, file{AdminTokenFile, []byte(l.AdminToken + "\n"), secretMode})
	}
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dataDir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// SaveNodeCert replaces the node key and certificate in dataDir (after a
// renewal), the key first: Load refuses a pair that does not match, so a
// crash between the two renames is noticed, never used.
func SaveNodeCert(dataDir string, certPEM, keyPEM []byte) error {
	if err := writeAtomic(filepath.Join(dataDir, NodeKeyFile), keyPEM, secretMode); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dataDir, NodeCertFile), certPEM, publicMode)
}

// SaveGossipKey replaces the gossip keys in dataDir by key alone.
func SaveGossipKey(dataDir string, key []byte) error {
	return SaveGossipKeys(dataDir, [][]byte{key})
}

// SaveGossipKeys replaces the gossip keys in dataDir: one base64 key a
// line, primary first (a file of one line is what agents before rotations
// wrote, and still reads).
func SaveGossipKeys(dataDir string, keys [][]byte) error {
	if err := checkGossipKeys(keys); err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	return writeAtomic(filepath.Join(dataDir, GossipKeyFile), encodeKeys(keys), secretMode)
}

// Keys are l's gossip keys, primary first.
func (l *Local) Keys() [][]byte {
	if len(l.GossipKeys) > 0 {
		return l.GossipKeys
	}
	return [][]byte{l.GossipKey}
}

func encodeKeys(keys [][]byte) []byte {
	var b []byte
	for _, k := range keys {
		b = append(b, encodeKey(k)...)
	}
	return b
}

// readKeys reads the gossip key file: one base64 key a line, primary
// first, 1 to MaxGossipKeys keys of KeyBytes.
func readKeys(dataDir, name string) ([][]byte, error) {
	b, err := readFile(dataDir, name, true)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dataDir, name)
	var keys [][]byte
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		k, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(line)))
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: not base64: %w", p, i+1, err)
		}
		keys = append(keys, k)
	}
	if err := checkGossipKeys(keys); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return keys, nil
}

func encodeKey(k []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(k) + "\n")
}

func readKey(dataDir, name string) ([]byte, error) {
	b, err := readFile(dataDir, name, true)
	if err != nil {
		return nil, err
	}
	k, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %w", filepath.Join(dataDir, name), err)
	}
	if len(k) != KeyBytes {
		return nil, fmt.Errorf("%s: %d bytes, want %d", filepath.Join(dataDir, name), len(k), KeyBytes)
	}
	return k, nil
}

// readFile reads one identity file, bounded by maxFileBytes; a secret one
// must not be readable by group or others.
func readFile(dataDir, name string, secret bool) ([]byte, error) {
	p := filepath.Join(dataDir, name)
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets group or others write it; chmod go-w it", p, st.Mode().Perm())
	}
	if secret && st.Mode().Perm()&secretModeMask != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets group or others read a secret; chmod 600 it", p, st.Mode().Perm())
	}
	if st.Size() > maxFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d allowed", p, st.Size(), maxFileBytes)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory: fsync, chmod, rename, then fsync of the directory, so that a
// crash leaves either the old file or the new one.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("data-dir: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("data-dir: syncing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("data-dir: syncing %s: %w", dir, err)
	}
	return nil
}
