package identity

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/gossip"
	"github.com/shoal-dev/shoal/consensus/pki"
)

func gkey(b byte) []byte { return bytes.Repeat([]byte{b}, KeyBytes) }

// The phase logic, pure: a phase ends only when every alive member that is
// not revoked shows the record's keyring; down members are not waited for,
// revoked ones are reported apart; each phase's successor and keys.
func TestRotationPhases(t *testing.T) {
	old, fresh := gkey(1), gkey(2)
	t0 := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	rot, keys, err := StartRotation(Rotation{}, [][]byte{old}, fresh, t0)
	if err != nil || rot.Phase != PhaseInstall || !rot.Since.Equal(t0) || len(keys) != 2 || !bytes.Equal(keys[0], old) {
		t.Fatalf("StartRotation: %+v %d keys %v", rot, len(keys), err)
	}
	if _, _, err := StartRotation(rot, keys, gkey(3), t0); err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("a second rotation during the first: %v", err)
	}
	four := [][]byte{gkey(1), gkey(2), gkey(3), gkey(4)}
	if _, _, err := StartRotation(Rotation{}, four, gkey(5), t0); err == nil || !strings.Contains(err.Error(), "4 is the most") {
		t.Fatalf("a fifth key: %v", err)
	}
	revoked := map[string]time.Time{"gone": t0}
	state := gossip.KeyringState
	members := func(kr map[string]string, down ...string) []MemberKeys {
		var ms []MemberKeys
		for _, n := range []string{"a", "b", "gone", "c"} {
			alive := true
			for _, d := range down {
				alive = alive && d != n
			}
			ms = append(ms, MemberKeys{Name: n, Alive: alive, Keyring: kr[n]})
		}
		return ms
	}
	before := state([][]byte{old})
	// install: b has not installed yet; c is down.
	p := CheckPhase(PhaseInstall, keys, members(map[string]string{"a": state(keys), "b": before, "gone": before}, "c"), revoked)
	if p.Done() || len(p.Waiting) != 1 || p.Waiting[0] != "b" || len(p.Revoked) != 1 || p.Revoked[0] != "gone" {
		t.Fatalf("install, b behind: %+v", p)
	}
	p = CheckPhase(PhaseInstall, keys, members(map[string]string{"a": state(keys), "b": state(keys), "gone": before}, "c"), revoked)
	if !p.Done() {
		t.Fatalf("install, all alive confirmed: %+v", p)
	}
	phase, useKeys, ok := NextPhase(PhaseInstall, keys)
	if !ok || phase != PhaseUse || !bytes.Equal(useKeys[0], fresh) || !bytes.Equal(useKeys[1], old) {
		t.Fatalf("after install: %s %d", phase, len(useKeys))
	}
	// use: a member that still encrypts with the old key holds it up.
	p = CheckPhase(PhaseUse, useKeys, members(map[string]string{"a": state(useKeys), "b": state(keys), "c": state(useKeys)}), revoked)
	if p.Done() || len(p.Waiting) != 1 {
		t.Fatalf("use, b still on the old primary: %+v", p)
	}
	phase, rmKeys, _ := NextPhase(PhaseUse, useKeys)
	if phase != PhaseRemove || len(rmKeys) != 1 || !bytes.Equal(rmKeys[0], fresh) {
		t.Fatalf("after use: %s %d", phase, len(rmKeys))
	}
	if phase, _, _ := NextPhase(PhaseRemove, rmKeys); phase != PhaseNone {
		t.Fatalf("after remove: %s", phase)
	}
	if _, _, ok := NextPhase(PhaseNone, rmKeys); ok {
		t.Fatal("a phase after none")
	}
	// Nobody alive confirms nothing: never done.
	if CheckPhase(PhaseRemove, rmKeys, nil, nil).Done() {
		t.Fatal("done with no members")
	}
	if err := Phase("bogus").Validate(); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown phase: %v", err)
	}
}

// A record written before rotations (one sealed key, no list) opens as
// one key; sealing a list keeps the single key readable for older
// readers; an unknown phase and a list over the limit are refused with the
// field named.
func TestRecordGossipKeysUpgrade(t *testing.T) {
	local, rec, _, err := Bootstrap("c1", nil, "boot", testIPs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old := rec.Clone()
	old.GossipKeysSealed = nil // as an older agent wrote it
	got, err := DecodeRecord(EncodeRecord(old))
	if err != nil {
		t.Fatal(err)
	}
	o, err := got.Open(local.KEK)
	if err != nil || len(o.GossipKeys) != 1 || !bytes.Equal(o.GossipKey, local.GossipKey) {
		t.Fatalf("old record: %v keys, %v", len(o.GossipKeys), err)
	}
	if err := got.SealGossipKeys(local.KEK, [][]byte{local.GossipKey, gkey(9)}); err != nil {
		t.Fatal(err)
	}
	got.Rotation = Rotation{Phase: PhaseInstall, Since: time.Now()}
	again, err := DecodeRecord(EncodeRecord(got))
	if err != nil {
		t.Fatal(err)
	}
	if again.Rotation.Phase != PhaseInstall {
		t.Fatalf("phase %q after a round trip", again.Rotation.Phase)
	}
	o, err = again.Open(local.KEK)
	if err != nil || len(o.GossipKeys) != 2 || !bytes.Equal(o.GossipKeys[1], gkey(9)) {
		t.Fatalf("two keys: %v", err)
	}
	legacy := again.Clone()
	legacy.GossipKeysSealed = nil
	if o, err := legacy.Open(local.KEK); err != nil || !bytes.Equal(o.GossipKey, local.GossipKey) {
		t.Fatalf("the primary alone, as an older reader sees it: %v", err)
	}

	bad := EncodeRecord(again)
	bad.Data[keyGossipRotate] = []byte(`{"phase":"shuffle"}`)
	if _, err := DecodeRecord(bad); err == nil || !strings.Contains(err.Error(), "data.gossip.rotation") || !strings.Contains(err.Error(), "shuffle") {
		t.Fatalf("unknown phase: %v", err)
	}
	if err := again.SealGossipKeys(local.KEK, [][]byte{gkey(1), gkey(2), gkey(3), gkey(4), gkey(5)}); err == nil || !strings.Contains(err.Error(), "more than the 4") {
		t.Fatalf("five keys: %v", err)
	}
}

// gossip.key: the one-key file of before is read; a list is written one
// key a line and read back in order; a file with too many keys is refused.
func TestGossipKeyFile(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	dir := t.TempDir()
	if err := tc.local.Save(dir); err != nil {
		t.Fatal(err)
	}
	l, err := Load(dir)
	if err != nil || len(l.Keys()) != 1 || l.GossipKeys != nil || !bytes.Equal(l.GossipKey, tc.local.GossipKey) {
		t.Fatalf("one key: %v", err)
	}
	keys := [][]byte{gkey(7), tc.local.GossipKey}
	if err := SaveGossipKeys(dir, keys); err != nil {
		t.Fatal(err)
	}
	if l, err = Load(dir); err != nil || len(l.Keys()) != 2 || !bytes.Equal(l.GossipKey, gkey(7)) {
		t.Fatalf("two keys: %v", err)
	}
	if err := SaveGossipKeys(dir, [][]byte{gkey(1), gkey(2), gkey(3), gkey(4), gkey(5)}); err == nil {
		t.Fatal("saved five keys")
	}
}

// The endpoints: the keys go to an agent's own, unrevoked certificate
// only; status and rotate need an admin token (401 without, 403 with
// read-only); a second rotation is refused while one is in progress; the
// leader's AdvanceRotation moves the phases as the members confirm.
func TestGossipEndpoints(t *testing.T) {
	var mu sync.Mutex
	var ms []MemberKeys
	tc := newTestCluster(t, clusterOpts{cfg: ServerConfig{Members: func() []MemberKeys {
		mu.Lock()
		defer mu.Unlock()
		return append([]MemberKeys(nil), ms...)
	}}})
	n2 := joinAgent(t, tc, "n2", true)
	fetch := func(a *joinedAgent, node string) (*GossipKeysResponse, error) {
		return FetchGossipKeys(ctxTimeout(t, 10*time.Second), a.client, tc.addr, node)
	}
	resp, err := fetch(n2, "n2")
	if err != nil || len(resp.Keys) != 1 || !bytes.Equal(resp.Keys[0], tc.local.GossipKey) {
		t.Fatalf("n2's keys: %v", err)
	}
	if _, err := fetch(n2, "boot"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("keys for another node: %v", err)
	}
	if _, err := FetchGossipKeys(ctxTimeout(t, 10*time.Second), clientFor(pinnedTLS(mustCA(t, tc))), tc.addr, "n2"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("keys without a certificate: %v", err)
	}

	var ro APITokenResponse
	if code := tc.adminCall(t, http.MethodPost, PathTokensAPI, APITokenRequest{Name: "viewer", Role: RoleReadOnly, TTL: "1h"}, tc.admin, &ro); code != http.StatusOK {
		t.Fatalf("read-only token: %d", code)
	}
	for _, c := range []struct {
		method, path, bearer string
		want                 int
	}{
		{http.MethodPost, PathGossipRotate, "", http.StatusUnauthorized},
		{http.MethodPost, PathGossipRotate, ro.Token, http.StatusForbidden},
		{http.MethodGet, PathGossip, ro.Token, http.StatusForbidden},
		{http.MethodGet, PathGossipRotate, tc.admin, http.StatusMethodNotAllowed},
	} {
		if code := tc.adminCall(t, c.method, c.path, nil, c.bearer, nil); code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.want)
		}
	}
	rec, _ := tc.cluster.Record(context.Background())
	if rec.Rotation.Phase != PhaseNone {
		t.Fatal("a refused request started a rotation")
	}

	var st GossipStatus
	if code := tc.adminCall(t, http.MethodPost, PathGossipRotate, nil, tc.admin, &st); code != http.StatusOK {
		t.Fatalf("rotate: %d", code)
	}
	if st.Phase != PhaseInstall || len(st.Keys) != 2 || !st.Keys[0].Primary || st.Keys[0].ID != gossip.KeyID(tc.local.GossipKey) {
		t.Fatalf("after rotate: %+v", st)
	}
	if code := tc.adminCall(t, http.MethodPost, PathGossipRotate, nil, tc.admin, nil); code != http.StatusConflict {
		t.Fatalf("a second rotation: %d, want 409", code)
	}
	// n2 fetches both keys; no member confirms yet: no move.
	resp, err = fetch(n2, "n2")
	if err != nil || len(resp.Keys) != 2 || resp.Phase != PhaseInstall {
		t.Fatalf("n2's keys during install: %v", err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	if _, moved, err := tc.server.AdvanceRotation(ctx); moved || err != nil {
		t.Fatalf("moved with no member confirming: %v", err)
	}
	// Members confirm each phase as they would after polling.
	for _, want := range []Phase{PhaseUse, PhaseRemove, PhaseNone} {
		resp, err := fetch(n2, "n2")
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		ms = []MemberKeys{{Name: "boot", Alive: true, Keyring: gossip.KeyringState(resp.Keys)}, {Name: "n2", Alive: true, Keyring: gossip.KeyringState(resp.Keys)}, {Name: "off", Alive: false}}
		mu.Unlock()
		p, moved, err := tc.server.AdvanceRotation(ctx)
		if !moved || err != nil {
			t.Fatalf("toward %s: %+v %v", want, p, err)
		}
		rec, _ := tc.cluster.Record(ctx)
		if rec.Rotation.Phase != want {
			t.Fatalf("phase %s, want %s", rec.Rotation.Phase, want)
		}
	}
	resp, _ = fetch(n2, "n2")
	if len(resp.Keys) != 1 || bytes.Equal(resp.Keys[0], tc.local.GossipKey) {
		t.Fatal("after the rotation the record still holds the old key")
	}
	if code := tc.adminCall(t, http.MethodGet, PathGossip, nil, tc.admin, &st); code != http.StatusOK || st.Phase != PhaseNone || len(st.Members) != 3 || st.Members[2].State != "down" {
		t.Fatalf("status after: %d %+v", code, st)
	}

	// A record at MaxGossipKeys keys: a rotation is refused, naming the limit.
	tc.cluster.edit(func(r *Record) {
		if err := r.SealGossipKeys(tc.local.KEK, [][]byte{gkey(1), gkey(2), gkey(3), gkey(4)}); err != nil {
			t.Fatal(err)
		}
	})
	req, _ := http.NewRequest(http.MethodPost, "https://"+tc.addr+PathGossipRotate, nil)
	req.Header.Set("Authorization", "Bearer "+tc.admin)
	full, err := clientFor(pinnedTLS(mustCA(t, tc))).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(full.Body)
	full.Body.Close()
	if full.StatusCode != http.StatusConflict || !strings.Contains(string(body), "4 is the most allowed") {
		t.Fatalf("rotation at 4 keys: %d %s", full.StatusCode, body)
	}

	// A revoked node gets no keys.
	tc.cluster.edit(func(r *Record) { r.Revoke("n2", time.Now()) })
	if _, err := fetch(n2, "n2"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("keys for a revoked node: %v", err)
	}
	// Only an agent with the KEK answers.
	noKEK, err := NewServer(ServerConfig{Cluster: newFakeCluster(rec, nil), Logger: discardLogger(),
		PeerOf: func(*http.Request) (pki.Peer, bool) { return tc.local.mustPeer(t), true }})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	noKEK.ServeHTTP(w, httptest.NewRequest(http.MethodPost, PathGossipKeys, strings.NewReader(`{"node":"boot"}`)))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("keys from an agent without the KEK: %d %s", w.Code, w.Body)
	}
	// Bad bodies name the problem.
	w = httptest.NewRecorder()
	tc.server.ServeHTTP(w, httptest.NewRequest(http.MethodPost, PathGossipKeys, strings.NewReader(`{"node":"boot","extra":1}`)))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("no certificate: %d", w.Code)
	}
	w = httptest.NewRecorder()
	noKEK.ServeHTTP(w, httptest.NewRequest(http.MethodPost, PathGossipKeys, strings.NewReader(`{"node":"boot","extra":1}`)))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "extra") {
		t.Fatalf("unknown field: %d %s", w.Code, w.Body)
	}
}

func mustCA(t *testing.T, tc *testCluster) *x509.Certificate {
	t.Helper()
	ca, err := pki.ParseCertPEM(tc.local.CACert)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func (l *Local) mustPeer(t *testing.T) pki.Peer {
	t.Helper()
	p, err := l.Peer()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
