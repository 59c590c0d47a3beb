package identity

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

func TestBootstrapMakesAConsistentIdentity(t *testing.T) {
	now := time.Now()
	local, rec, admin, err := Bootstrap("c1", nil, "boot", testIPs, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := local.Validate(); err != nil {
		t.Fatalf("Local.Validate: %v", err)
	}
	if p, _ := local.Peer(); p.Node != "boot" || p.Role != pki.RoleVoter {
		t.Errorf("peer %+v, want boot voter", p)
	}
	if local.AdminToken != admin || local.KEK == nil || rec.Bootstrap {
		t.Errorf("admin token kept %v, KEK %v, bootstrap %v", local.AdminToken == admin, local.KEK != nil, rec.Bootstrap)
	}
	caCert, _ := pki.ParseCertPEM(local.CACert)
	c, err := pki.VerifyToken(caCert, admin, now)
	if err != nil || c.Role != RoleAdmin || c.Name != "bootstrap-admin" {
		t.Errorf("admin token: %+v, %v", c, err)
	}
	o, err := rec.Open(local.KEK)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if string(o.GossipKey) != string(local.GossipKey) || o.VoterSecret == o.WorkerSecret {
		t.Errorf("opened record disagrees with the local identity")
	}
	if _, err := rec.Open(make([]byte, KeyBytes)); err == nil {
		t.Errorf("Open with another KEK succeeded")
	}
	// A bootstrap token must not pin a CA.
	pinned, _ := pki.NewJoinToken(o.CA.Fingerprint())
	if _, _, _, err := Bootstrap("c1", &pinned, "boot", nil, now); err == nil {
		t.Errorf("Bootstrap with a pinned token succeeded")
	}
	if _, _, _, err := Bootstrap("c1", nil, "Bad_Name", nil, now); err == nil || !strings.Contains(err.Error(), "node") {
		t.Errorf("Bootstrap with a bad node name: %v", err)
	}
}

func TestRecordRoundTripsThroughTheSecret(t *testing.T) {
	_, rec, _, err := Bootstrap("c1", nil, "boot", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec.ResourceVersion = "7"
	rec.Revoke("n2", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	s := EncodeRecord(rec)
	if s.Namespace != RecordNamespace || s.Name != RecordName || s.Type != RecordType {
		t.Fatalf("secret %s/%s type %s", s.Namespace, s.Name, s.Type)
	}
	for _, k := range []string{"ca.crt", "ca.key.sealed", "join.voter.sealed", "join.worker.sealed", "gossip.key.sealed", "bootstrap", "revoked"} {
		if len(s.Data[k]) == 0 {
			t.Errorf("data.%s missing", k)
		}
	}
	api.SetDefaults(s)
	if errs := api.Validate(s); len(errs) > 0 {
		t.Errorf("the record's Secret does not pass the API's validation: %v", errs)
	}
	got, err := DecodeRecord(s)
	if err != nil {
		t.Fatalf("DecodeRecord: %v", err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rec)
	}
	for key, mutate := range map[string]func(){
		"data.ca.key.sealed": func() { delete(s.Data, "ca.key.sealed") },
		"data.bootstrap":     func() { s.Data["bootstrap"] = []byte("yes") },
		"data.revoked":       func() { s.Data["revoked"] = []byte("{") },
		"data.ca.crt":        func() { s.Data["ca.crt"] = []byte("junk") },
		"type":               func() { s.Type = "Opaque" },
	} {
		s = EncodeRecord(rec)
		mutate()
		if _, err := DecodeRecord(s); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s broken: DecodeRecord = %v; want an error naming it", key, err)
		}
	}
}

func TestSaveLoadRoundTripAndModes(t *testing.T) {
	local, _, _, err := Bootstrap("c1", nil, "boot", testIPs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("Load of an empty dir: %v; want ErrNoIdentity", err)
	}
	if err := local.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	modes := map[string]os.FileMode{CACertFile: 0o644, NodeCertFile: 0o644, NodeKeyFile: 0o600, GossipKeyFile: 0o600, KEKFile: 0o600, AdminTokenFile: 0o600}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", name, st.Mode().Perm(), want)
		}
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, local) {
		t.Errorf("Load after Save differs")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "tls", ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A worker has no kek file; Load leaves KEK nil.
	w := *local
	w.KEK, w.AdminToken = nil, ""
	wdir := t.TempDir()
	if err := w.Save(wdir); err != nil {
		t.Fatal(err)
	}
	if l, err := Load(wdir); err != nil || l.KEK != nil || l.AdminToken != "" {
		t.Errorf("worker Load: KEK %v admin %q err %v", l.KEK != nil, l.AdminToken, err)
	}
	// A secret readable by others is refused, naming the file.
	os.Chmod(filepath.Join(dir, NodeKeyFile), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "node.key") {
		t.Errorf("Load with node.key 0644: %v; want a refusal naming it", err)
	}
	os.Chmod(filepath.Join(dir, NodeKeyFile), 0o600)
	// A certificate others may replace is refused too.
	os.Chmod(filepath.Join(dir, CACertFile), 0o666)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Errorf("Load with ca.crt 0666: %v; want a refusal naming it", err)
	}
	os.Chmod(filepath.Join(dir, CACertFile), 0o644)
	// A key that does not match the certificate is refused.
	other, _, _, _ := Bootstrap("c1", nil, "boot", nil, time.Now())
	if err := SaveNodeCert(dir, local.NodeCert, other.NodeKey); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Errorf("Load with a key that does not match the certificate succeeded")
	}
}

func TestRevokedAtSecondBoundaries(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 500e6, time.UTC)
	var rec Record
	rec.Revoke("n1", at)
	// Certificates carry whole seconds; Issue backdates NotBefore by ClockSkew.
	certAt := func(issued time.Time) pki.Peer {
		return pki.Peer{Node: "n1", NotBefore: issued.Add(-pki.ClockSkew).Truncate(time.Second)}
	}
	if !rec.Revoked(certAt(at.Add(-300 * time.Millisecond))) {
		t.Errorf("a certificate issued in the same second before the revocation is not revoked")
	}
	if !rec.Revoked(certAt(at.Add(-time.Hour))) {
		t.Errorf("an older certificate is not revoked")
	}
	issued := rec.issueTime("n1", at.Add(200*time.Millisecond))
	if rec.Revoked(certAt(issued)) {
		t.Errorf("a certificate issued after the revocation, in the same second, counts as revoked (issued at %v)", issued)
	}
	if later := at.Add(time.Hour); !rec.issueTime("n1", later).Equal(later) || !rec.issueTime("n2", at).Equal(at) {
		t.Errorf("issueTime moved a time it need not move")
	}
}
